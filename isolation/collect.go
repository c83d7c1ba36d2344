package isolation

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// dialTimeout bounds the host TCP check: a filtered port would otherwise
// hold the probe for the kernel's SYN retry time (minutes).
const dialTimeout = time.Second

// Collect gathers the report where the probe runs. It never fails: a fact
// it cannot read keeps its zero value and its error goes to Report.Errors.
func Collect(opts Options) Report {
	c := &collector{r: Report{Options: opts}}
	c.kernel()
	c.identity()
	c.processes()
	mounts := c.mounts()
	c.resources(mounts)
	c.devices()
	c.interfaces()
	c.r.Visibility = checkVisibility(opts)
	c.r.Privileged = checkPrivileged(opts.HostPID)
	// Last, so the peak covers everything the probe did.
	c.peakRSS()
	return c.r
}

// collector fills a Report, recording errors under the facts they cost.
type collector struct {
	r Report
}

func (c *collector) fail(err error, keys ...string) {
	if c.r.Errors == nil {
		c.r.Errors = make(map[string]string)
	}
	for _, k := range keys {
		c.r.Errors[k] = err.Error()
	}
}

func (c *collector) kernel() {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		c.fail(fmt.Errorf("uname: %w", err), ErrRelease, ErrVersion, ErrHostname)
	} else {
		c.r.Kernel.Release = unix.ByteSliceToString(u.Release[:])
		c.r.Kernel.Version = unix.ByteSliceToString(u.Version[:])
		c.r.Kernel.Machine = unix.ByteSliceToString(u.Machine[:])
		c.r.Hostname = unix.ByteSliceToString(u.Nodename[:])
	}
	if id, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err != nil {
		c.fail(err, ErrBootID)
	} else {
		c.r.Kernel.BootID = strings.TrimSpace(string(id))
	}
	if cmdline, err := os.ReadFile("/proc/cmdline"); err != nil {
		c.fail(err, ErrCmdline)
	} else {
		c.r.Kernel.Cmdline = truncate(strings.TrimSpace(string(cmdline)), CmdlineMax)
	}
}

func (c *collector) identity() {
	c.r.Identity.UID = os.Getuid()
	c.r.Identity.GID = os.Getgid()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		c.fail(err, ErrCapEff, ErrNoNewPrivs, ErrSeccomp)
		return
	}
	status := parseStatus(data)
	id := &c.r.Identity
	if id.CapEff, id.CapEffCount, err = statusCaps(status, "CapEff"); err != nil {
		c.fail(fmt.Errorf("/proc/self/status: %w", err), ErrCapEff)
	}
	nnp, err := statusInt(status, "NoNewPrivs")
	if err != nil {
		c.fail(fmt.Errorf("/proc/self/status: %w", err), ErrNoNewPrivs)
	}
	id.NoNewPrivs = nnp == 1
	// A kernel without CONFIG_SECCOMP has no Seccomp line: an error here,
	// not a silent "disabled".
	if id.Seccomp, err = statusInt(status, "Seccomp"); err != nil {
		c.fail(fmt.Errorf("/proc/self/status: %w", err), ErrSeccomp)
	}
}

func (c *collector) processes() {
	c.r.Processes.PID = os.Getpid()
	if cmdline, err := os.ReadFile("/proc/1/cmdline"); err != nil {
		c.fail(err, ErrPID1Cmdline)
	} else {
		c.r.Processes.PID1Cmdline = parseCmdline(cmdline)
	}
	if n, err := countProcesses(); err != nil {
		c.fail(err, ErrVisibleCount)
	} else {
		c.r.Processes.VisibleCount = n
	}
}

// countProcesses counts the numeric entries of /proc: the processes of the
// probe's PID namespace (as far as /proc's hidepid lets it see them).
func countProcesses() (int, error) {
	dir, err := os.Open("/proc")
	if err != nil {
		return 0, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("list /proc: %w", err)
	}
	n := 0
	for _, name := range names {
		if strings.Trim(name, "0123456789") == "" {
			n++
		}
	}
	return n, nil
}

// mounts fills the mount table and returns it parsed, for the cgroup lookup.
func (c *collector) mounts() []mountEntry {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		c.fail(err, ErrMounts)
		return nil
	}
	mounts, err := parseMountinfo(data)
	if err != nil {
		c.fail(err, ErrMounts)
	}
	m := &c.r.Mounts
	m.Count = len(mounts)
	m.List = make([]Mount, len(mounts))
	for i, e := range mounts {
		m.List[i] = e.Mount
	}
	if fs, ok := rootFSType(mounts); ok {
		m.RootFSType = fs
	} else if err == nil {
		c.fail(errors.New("no mount on / in /proc/self/mountinfo"), ErrMounts)
	}
	return mounts
}

func (c *collector) resources(mounts []mountEntry) {
	res := &c.r.Resources
	if online, err := os.ReadFile("/sys/devices/system/cpu/online"); err != nil {
		c.fail(err, ErrCPUsOnline)
	} else if res.CPUsOnline, err = parseCPUList(string(online)); err != nil {
		c.fail(err, ErrCPUsOnline)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		c.fail(fmt.Errorf("sched_getaffinity: %w", err), ErrCPUsAffinity)
	} else {
		res.CPUsAffinity = set.Count()
	}
	if meminfo, err := os.ReadFile("/proc/meminfo"); err != nil {
		c.fail(err, ErrMemTotal)
	} else if res.MemTotalBytes, err = statusBytes(parseStatus(meminfo), "MemTotal"); err != nil {
		c.fail(fmt.Errorf("/proc/meminfo: %w", err), ErrMemTotal)
	}
	c.cgroup(mounts)
}

// cgroup finds the probe's cgroup and its memory limit: memory.max in the
// cgroup v2 hierarchy or, on a v1 or hybrid host where the memory
// controller sits in a v1 hierarchy, its memory.limit_in_bytes.
func (c *collector) cgroup(mounts []mountEntry) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		c.fail(err, ErrCgroupPath, ErrCgroupMemory)
		return
	}
	cg, err := parseProcCgroup(data)
	if err != nil {
		c.fail(fmt.Errorf("/proc/self/cgroup: %w", err), ErrCgroupPath, ErrCgroupMemory)
		return
	}
	res := &c.r.Resources
	v1Path, hasV1 := cg.v1["memory"]
	switch {
	case cg.hasV2:
		res.CgroupPath = cg.v2
	case hasV1:
		res.CgroupPath = v1Path
	default:
		err := errors.New("/proc/self/cgroup has neither a cgroup v2 entry nor a v1 memory controller")
		c.fail(err, ErrCgroupPath, ErrCgroupMemory)
		return
	}
	var errs []string
	if cg.hasV2 {
		limit, file, err := readCgroupLimit(mounts, cg.v2, isCgroup2, "memory.max", parseMemoryMax)
		if err == nil {
			res.CgroupMemoryMax, res.CgroupMemoryFile = limit, file
			return
		}
		// The root cgroup has no memory.max: nothing above it limits it
		// (cgroup-v2.rst, "Memory Interface Files": non-root only).
		if cg.v2 == "/" && errors.Is(err, fs.ErrNotExist) {
			res.CgroupMemoryMax = "max"
			return
		}
		errs = append(errs, "cgroup v2: "+err.Error())
	}
	if hasV1 {
		limit, file, err := readCgroupLimit(mounts, v1Path, isV1Memory, "memory.limit_in_bytes", parseV1Limit)
		if err == nil {
			res.CgroupPath, res.CgroupMemoryMax, res.CgroupMemoryFile = v1Path, limit, file
			return
		}
		errs = append(errs, "cgroup v1: "+err.Error())
	}
	c.fail(errors.New(strings.Join(errs, "; ")), ErrCgroupMemory)
}

func isCgroup2(m mountEntry) bool { return m.FSType == "cgroup2" }

func isV1Memory(m mountEntry) bool {
	return m.FSType == "cgroup" && hasOption(m.superOptions, "memory")
}

// readCgroupLimit reads file of the cgroup at path, in the first mounted
// hierarchy that matches and holds that cgroup; it returns the parsed limit
// and the file's path.
func readCgroupLimit(mounts []mountEntry, path string, match func(mountEntry) bool,
	file string, parse func(string) (string, error)) (limit, filePath string, err error) {
	dir, err := findCgroupDir(mounts, path, match)
	if err != nil {
		return "", "", err
	}
	filePath = filepath.Join(dir, file)
	data, err := os.ReadFile(filePath)
	if err != nil {
		return "", "", err
	}
	if limit, err = parse(string(data)); err != nil {
		return "", "", err
	}
	return limit, filePath, nil
}

// findCgroupDir returns the directory of the cgroup at path in the first
// mounted hierarchy that matches and holds it.
func findCgroupDir(mounts []mountEntry, path string, match func(mountEntry) bool) (string, error) {
	err := errors.New("hierarchy not mounted")
	for _, m := range mounts {
		if !match(m) {
			continue
		}
		var dir string
		if dir, err = cgroupDir(m, path); err == nil {
			return dir, nil
		}
	}
	return "", err
}

func (c *collector) devices() {
	// ReadDir returns what it read before an error: keep it.
	entries, err := os.ReadDir("/dev")
	if err != nil {
		c.fail(err, ErrDevices)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	c.r.Devices = Devices{Count: len(names), Names: names}
}

func (c *collector) interfaces() {
	ifaces, err := net.Interfaces()
	if err != nil {
		c.fail(fmt.Errorf("list network interfaces: %w", err), ErrInterfaces)
		return
	}
	names := make([]string, len(ifaces))
	for i, iface := range ifaces {
		names[i] = iface.Name
	}
	sort.Strings(names)
	c.r.Interfaces = names
}

func (c *collector) peakRSS() {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		c.fail(err, ErrPeakRSS)
		return
	}
	if c.r.PeakRSSBytes, err = statusBytes(parseStatus(data), "VmHWM"); err != nil {
		c.fail(fmt.Errorf("/proc/self/status: %w", err), ErrPeakRSS)
	}
}

// checkVisibility runs the checks of what the probe sees of the host.
func checkVisibility(opts Options) Visibility {
	var v Visibility
	v.HostPID, v.HostFile, v.HostTCP = skipped(""), skipped(""), skipped("")
	if opts.HostPID != 0 {
		// Signal 0 only checks: EPERM means the process exists but the
		// probe may not signal it, so it is visible all the same.
		err := unix.Kill(opts.HostPID, 0)
		v.HostPID = outcome(err, unix.EPERM)
	}
	if opts.HostFile != "" {
		_, err := os.Stat(opts.HostFile)
		v.HostFile = outcome(err)
	}
	if opts.HostAddr != "" {
		v.HostTCP = outcome(dial(opts.HostAddr))
	}
	return v
}

func dial(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return err
	}
	return conn.Close()
}

// outcome turns a call's error into a Check: allowed when the call
// succeeded or failed with one of passed, errnos the kernel returns only
// once its permission check has let the caller through.
func outcome(err error, passed ...unix.Errno) Check {
	if err == nil {
		return Check{Allowed: true, Result: "ok"}
	}
	var errno unix.Errno
	allowed := false
	if errors.As(err, &errno) {
		for _, p := range passed {
			allowed = allowed || errno == p
		}
	}
	return Check{Allowed: allowed, Result: describe(err)}
}

// skipped is the Check of something not tried.
func skipped(why string) Check {
	if why == "" {
		return Check{Result: "skipped"}
	}
	return Check{Result: "skipped: " + why}
}

// describe names an error by its errno ("EPERM: operation not permitted"),
// which reads the same in every place, where the full text would also carry
// paths and addresses.
func describe(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		name := unix.ErrnoName(errno)
		if name == "" {
			name = fmt.Sprintf("errno %d", int(errno))
		}
		return name + ": " + errno.Error()
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout: " + err.Error()
	}
	return err.Error()
}

// truncate shortens s to at most n bytes, marking the cut with "...".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 3 {
		return s[:n]
	}
	return strings.ToValidUTF8(s[:n-3], "") + "..."
}
