package isolation

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Marker lines on stdout, so a report can be fished out of a guest console
// full of other text.
const (
	// StartedLine is the probe's first output, printed before any work:
	// its arrival times the start of the process.
	StartedLine = "govmm-probe: started"
	// ReportPrefix starts the line that carries the report as compact JSON.
	ReportPrefix = "govmm-probe-report: "
)

// Options is what the caller tells the probe about the host, so it can
// check what it can see or reach.
type Options struct {
	HostPID  int    `json:"host_pid"`  // a process on the host (the caller's PID); 0 skips those checks
	HostFile string `json:"host_file"` // a file on the host that only the host can see; "" skips
	HostAddr string `json:"host_addr"` // host:port of a TCP listener on the host; "" skips
}

// Report is what the probe saw where it ran. A fact that could not be read
// keeps its zero value and has its error text in Errors, under the fact's
// JSON path (e.g. "kernel.boot_id"); the Err* constants name those keys.
type Report struct {
	Options      Options           `json:"options"`
	Kernel       Kernel            `json:"kernel"`
	Hostname     string            `json:"hostname"`
	Identity     Identity          `json:"identity"`
	Processes    Processes         `json:"processes"`
	Resources    Resources         `json:"resources"`
	Devices      Devices           `json:"devices"`
	Mounts       Mounts            `json:"mounts"`
	Interfaces   []string          `json:"interfaces"`
	Visibility   Visibility        `json:"visibility"`
	Privileged   Privileged        `json:"privileged"`
	PeakRSSBytes uint64            `json:"peak_rss_bytes"` // VmHWM of the probe, at the end of Collect
	Errors       map[string]string `json:"errors,omitempty"`
}

// Kernel identifies the running kernel.
type Kernel struct {
	Release string `json:"release"` // uname -r
	Version string `json:"version"` // uname -v
	Machine string `json:"machine"` // uname -m
	BootID  string `json:"boot_id"` // random per boot: tells two boots of one build apart
	Cmdline string `json:"cmdline"` // /proc/cmdline, truncated to CmdlineMax bytes
}

// CmdlineMax bounds Kernel.Cmdline: enough to recognise a command line,
// short enough to keep the report line printable on a console.
const CmdlineMax = 200

// Identity is who the probe runs as, and what confines it.
type Identity struct {
	UID         int    `json:"uid"`
	GID         int    `json:"gid"`
	CapEff      string `json:"cap_eff"`       // CapEff of /proc/self/status, hex as the kernel prints it
	CapEffCount int    `json:"cap_eff_count"` // capabilities set in CapEff
	NoNewPrivs  bool   `json:"no_new_privs"`
	Seccomp     int    `json:"seccomp"` // 0 disabled, 1 strict, 2 filter
}

// Processes is what the probe sees of the PID namespace it runs in.
type Processes struct {
	PID          int    `json:"pid"`           // the probe's own PID
	PID1Cmdline  string `json:"pid1_cmdline"`  // arguments of PID 1, joined by spaces
	VisibleCount int    `json:"visible_count"` // numeric entries in /proc
}

// Resources are the CPUs and memory the probe may use.
type Resources struct {
	CPUsOnline    int    `json:"cpus_online"`   // /sys/devices/system/cpu/online
	CPUsAffinity  int    `json:"cpus_affinity"` // sched_getaffinity
	MemTotalBytes uint64 `json:"mem_total_bytes"`
	// CgroupPath is the probe's cgroup as /proc/self/cgroup names it: the
	// cgroup v2 path, or the v1 memory controller's when the limit came
	// from there.
	CgroupPath string `json:"cgroup_path"`
	// CgroupMemoryMax is the cgroup's memory limit: "max" or bytes.
	CgroupMemoryMax string `json:"cgroup_memory_max"`
	// CgroupMemoryFile is the file CgroupMemoryMax was read from:
	// memory.max (v2), or memory.limit_in_bytes on a v1 or hybrid host.
	CgroupMemoryFile string `json:"cgroup_memory_file,omitempty"`
}

// Devices are the entries at the top of /dev.
type Devices struct {
	Count int      `json:"count"`
	Names []string `json:"names"` // sorted
}

// Mounts is the probe's mount table.
type Mounts struct {
	RootFSType string  `json:"root_fs_type"` // of the mount that "/" shows
	Count      int     `json:"count"`
	List       []Mount `json:"list"`
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point    string `json:"point"`
	FSType   string `json:"fs_type"`
	Source   string `json:"source"`
	ReadOnly bool   `json:"read_only"` // the mount or its superblock is read-only
}

// Check is the outcome of one visibility check or privileged operation.
// Result is "ok" when the call succeeded, "skipped[: why]" when it was not
// tried, or the errno's name and text ("EPERM: operation not permitted");
// Allowed says what that outcome means (an EBADF can mean allowed).
type Check struct {
	Allowed bool   `json:"allowed"`
	Result  string `json:"result"`
}

// Visibility is what the probe can see or reach of the host (Options).
type Visibility struct {
	HostPID  Check `json:"host_pid"`  // kill(pid, 0)
	HostFile Check `json:"host_file"` // stat
	HostTCP  Check `json:"host_tcp"`  // TCP connect, 1 s timeout
}

// Privileged holds the privileged operations the probe tried, none of which
// leaves a trace (see the package comment).
type Privileged struct {
	LoadModule Check `json:"load_module"` // finit_module(-1): EBADF means allowed
	Kexec      Check `json:"kexec"`       // kexec_file_load(-1, -1): EBADF means allowed
	PtraceRead Check `json:"ptrace_read"` // process_vm_readv of address 0: EFAULT means allowed
	PtracePID  int   `json:"ptrace_pid"`  // the process PtraceRead targeted
	IOPorts    Check `json:"io_ports"`    // ioperm(0x80), dropped at once
	MknodBlock Check `json:"mknod_block"` // a block device node, removed at once
	Mount      Check `json:"mount"`       // a tmpfs, unmounted at once
}

// Keys of Report.Errors.
const (
	ErrRelease      = "kernel.release"
	ErrVersion      = "kernel.version"
	ErrBootID       = "kernel.boot_id"
	ErrCmdline      = "kernel.cmdline"
	ErrHostname     = "hostname"
	ErrCapEff       = "identity.cap_eff"
	ErrNoNewPrivs   = "identity.no_new_privs"
	ErrSeccomp      = "identity.seccomp"
	ErrPID1Cmdline  = "processes.pid1_cmdline"
	ErrVisibleCount = "processes.visible_count"
	ErrCPUsOnline   = "resources.cpus_online"
	ErrCPUsAffinity = "resources.cpus_affinity"
	ErrMemTotal     = "resources.mem_total_bytes"
	ErrCgroupPath   = "resources.cgroup_path"
	ErrCgroupMemory = "resources.cgroup_memory_max"
	ErrDevices      = "devices"
	ErrMounts       = "mounts"
	ErrInterfaces   = "interfaces"
	ErrPeakRSS      = "peak_rss_bytes"
)

// FormatReport returns the line the probe prints: ReportPrefix, the report
// as compact JSON, a newline.
func FormatReport(r Report) ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode probe report: %w", err)
	}
	line := make([]byte, 0, len(ReportPrefix)+len(data)+1)
	line = append(line, ReportPrefix...)
	line = append(line, data...)
	return append(line, '\n'), nil
}

// ParseReport decodes the last report line in output: the last line that
// starts with ReportPrefix. A trailing \r is tolerated, since a guest's
// console turns \n into \r\n.
func ParseReport(output []byte) (Report, error) {
	line, ok := lastReportLine(output)
	if !ok {
		return Report{}, fmt.Errorf("no line starting with %q in the probe's output (%d bytes); it ends with: %q",
			ReportPrefix, len(output), tail(output, 300))
	}
	var r Report
	if err := json.Unmarshal(line, &r); err != nil {
		return Report{}, fmt.Errorf("decode probe report %q: %w", tail(line, 120), err)
	}
	return r, nil
}

// lastReportLine returns the JSON part of the last report line.
func lastReportLine(output []byte) ([]byte, bool) {
	lines := bytes.Split(output, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		line := bytes.TrimSuffix(lines[i], []byte("\r"))
		if rest, ok := bytes.CutPrefix(line, []byte(ReportPrefix)); ok {
			return rest, true
		}
	}
	return nil, false
}

// tail returns the last n bytes of b, for error messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
