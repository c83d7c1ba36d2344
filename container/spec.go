package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Config describes one container.
type Config struct {
	// RootFS is the absolute path of the container's root file system. It is
	// mounted read-only and must already hold the mount points the spec
	// uses: /proc, /dev, /sys and /tmp.
	RootFS string
	Args   []string // the command; Args[0] is looked up in RootFS
	Env    []string // nil: just a PATH
	// Hostname of the container's UTS namespace; "" means DefaultHostname.
	Hostname string
	// MemoryMax and PidsMax are cgroup v2 limits (memory.max, pids.max);
	// 0 means DefaultMemoryMax and DefaultPidsMax.
	MemoryMax int64
	PidsMax   int64
	// CgroupsPath is the container's cgroup, relative to the cgroup v2
	// root; "" means /govmm/<id>.
	CgroupsPath string
}

// Defaults for the zero fields of Config.
const (
	DefaultHostname  = "govmm-container"
	DefaultMemoryMax = 256 << 20
	DefaultPidsMax   = 64
)

// capabilities are the few runc's own `runc spec` template grants; the
// container's root holds nothing else (no CAP_SYS_ADMIN, CAP_SYS_MODULE,
// CAP_SYS_RAWIO, CAP_SYS_PTRACE, CAP_MKNOD...).
var capabilities = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// maskedPaths hide kernel interfaces that leak host information or give
// control over it; readonlyPaths are the ones a container may read but not
// change (the set container runtimes agree on).
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// Spec returns the OCI runtime configuration for c, for the container id:
// new PID, network (loopback only), IPC, UTS, mount and cgroup namespaces;
// cgroup v2 memory and PID limits; a read-only root; no new privileges; a
// minimal capability set.
func Spec(c Config, id string) (*specs.Spec, error) {
	if !filepath.IsAbs(c.RootFS) {
		return nil, fmt.Errorf("container root %q: need an absolute path", c.RootFS)
	}
	if len(c.Args) == 0 || c.Args[0] == "" {
		return nil, errors.New("container: no command")
	}
	if id == "" {
		return nil, errors.New("container: no id")
	}
	env := c.Env
	if env == nil {
		env = []string{"PATH=/:/bin:/sbin:/usr/bin:/usr/sbin"}
	}
	hostname := c.Hostname
	if hostname == "" {
		hostname = DefaultHostname
	}
	memoryMax, pidsMax := c.MemoryMax, c.PidsMax
	if memoryMax == 0 {
		memoryMax = DefaultMemoryMax
	}
	if pidsMax == 0 {
		pidsMax = DefaultPidsMax
	}
	cgroupsPath := c.CgroupsPath
	if cgroupsPath == "" {
		cgroupsPath = "/govmm/" + id
	}
	nofile := uint64(1024)
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: c.Args,
			Env:  env,
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  capabilities,
				Effective: capabilities,
				Permitted: capabilities,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: nofile, Soft: nofile}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: c.RootFS, Readonly: true},
		Hostname: hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
			// A writable scratch directory on a read-only root.
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=16m"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
			},
			CgroupsPath: cgroupsPath,
			Resources: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: &memoryMax},
				Pids:   &specs.LinuxPids{Limit: pidsMax},
			},
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
		},
	}, nil
}

// WriteBundle writes an OCI bundle for c into dir (created if missing): its
// config.json. The root file system stays where c.RootFS names it.
func WriteBundle(dir string, c Config, id string) error {
	spec, err := Spec(c, id)
	if err != nil {
		return err
	}
	raw, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode container config: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create bundle %s: %w", dir, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
		return fmt.Errorf("write bundle %s: %w", dir, err)
	}
	return nil
}

// MountPoints are the directories the root file system must hold for
// Spec's mounts, since a read-only root cannot have them made.
var MountPoints = []string{"proc", "dev", "sys", "tmp"}
