// Command agent is govmm's guest agent: u-root's init runs it as uinit in
// every govmm guest. It tells the host the guest is up (boot marker), mounts
// what a guest needs, loads the kernel modules the initramfs carries, runs
// the command the host put on the kernel command line (or a shell), reports
// that command's exit status to the host and powers the guest off.
package main

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest"
	"github.com/govmm/govmm/guest/kmod"
)

// console is the guest's console, opened directly: u-root's init hands
// uinit pipes for stdout and stderr and copies them to the console itself,
// so output written there may still be in flight when the agent reports
// the exit status and the VM ends.
var console = os.Stdout

func main() {
	// First act, so the host's launch-to-init timer stops as early as
	// possible.
	markerErr := writePort(guest.BootMarkerPort, guest.BootMarkerValue)
	log.SetFlags(0)
	log.SetPrefix("govmm-agent: ")
	if c, err := openConsole(); err == nil {
		console = c
		log.SetOutput(c)
	} else {
		// Output now goes through init's pipe, and may still be in flight
		// when the status ends the VM: say so where it cannot be lost.
		kernelLog("govmm-agent: open /dev/console: %v; the command's output may be cut short", err)
	}
	if markerErr != nil {
		log.Printf("boot marker: %v", markerErr)
	}
	// The same moment on the console, for VMMs without a boot-marker port
	// (benchmarks time a peer VMM by it).
	log.Print(guest.StartedLine)
	status := run()
	// The host may end the VM as soon as the status arrives: first let the
	// console's transmit buffer drain (what the command printed may still
	// sit in the tty), and flush file systems.
	drainConsole(10 * time.Second)
	unix.Sync()
	if err := writePort(guest.ExitStatusPort, byte(status)); err != nil {
		log.Printf("report exit status: %v", err)
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		log.Printf("power off: %v", err)
	}
	select {} // init must not exit: the kernel would panic
}

// drainConsole waits until the console has sent what was written to it,
// at most limit. tcdrain(3) (TCSBRK with a non-zero argument) returns
// EINTR when a signal arrives, and the Go runtime signals its threads, so
// it is retried; a console that does not drain within the limit is
// reported in the kernel log, which the kernel writes to the UART itself.
func drainConsole(limit time.Duration) {
	done := make(chan error, 1)
	go func() {
		for {
			err := unix.IoctlSetInt(int(console.Fd()), unix.TCSBRK, 1)
			if !errors.Is(err, unix.EINTR) {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		switch {
		case errors.Is(err, unix.ENOTTY):
			// Init's pipe (no console of our own): nothing to drain, only
			// time for init to copy what is in it.
			time.Sleep(200 * time.Millisecond)
		case err != nil:
			kernelLog("govmm-agent: drain console: %v", err)
		}
	case <-time.After(limit):
		kernelLog("govmm-agent: the console did not drain in %s; the command's output may be cut short", limit)
	}
}

// openConsole opens the console. It retries briefly, in case the open
// fails only for now (EINTR from a signal, EAGAIN, EBUSY while the tty is
// being set up): a console that does not open leaves the agent writing
// through init's pipe.
func openConsole() (*os.File, error) {
	var err error
	for range 20 {
		var c *os.File
		if c, err = os.OpenFile("/dev/console", os.O_RDWR, 0); err == nil {
			return c, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}

// kernelLog writes a line to the kernel's log at KERN_ERR, which reaches the
// console by the kernel's own path even with quiet (u-root's init sets the
// console log level to 5).
func kernelLog(format string, args ...any) {
	f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "<3>"+format+"\n", args...)
}

// run prepares the guest and runs the command; it returns the exit status to
// report: the command's, 128+signal when a signal ended it, and 125/126/127
// (the shell's convention) when the agent itself could not run it.
func run() int {
	mountAll()
	loadModules()
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		log.Printf("read kernel command line: %v", err)
		return 125
	}
	cfg, err := guest.ParseCmdline(string(cmdline))
	if err != nil {
		log.Printf("%v", err)
		return 125
	}
	env := append(os.Environ(), "PATH=/bin:/sbin:/usr/bin:/usr/sbin:/bbin")
	if len(cfg.Nets) > 0 {
		if err := configureNets(cfg.Nets); err != nil {
			log.Printf("network: %v", err)
		}
		if gw := cfg.Nets[0].Gateway; gw.IsValid() {
			env = append(env, guest.HostAddrEnv+"="+gw.String())
		}
	}
	argv := cfg.Command
	if cfg.ContainerDisk != "" {
		return runContainer(cfg.ContainerDisk, argv)
	}
	if len(argv) == 0 {
		argv = []string{"gosh"}
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// u-root's busybox picks the command by the name it was started under,
	// following the symlink it was started through; a bare "sh" names
	// neither, so pass the resolved path.
	if cmd.Err == nil {
		cmd.Args[0] = cmd.Path
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = console, console, console
	cmd.Env = env
	cmd.Dir = "/"
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return exitErr.ExitCode()
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, os.ErrNotExist):
		log.Printf("run %q: %v", argv[0], err)
		return 127
	default:
		log.Printf("run %q: %v", argv[0], err)
		return 126
	}
}

// mountAll mounts the file systems a guest command expects. u-root's init
// mounts most of them already; those are left as they are.
func mountAll() {
	mounted := mountPoints()
	for _, m := range []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
	} {
		if mounted[m.dst] == m.fstype {
			continue
		}
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			log.Printf("mount %s: %v", m.dst, err)
			continue
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			log.Printf("mount %s on %s: %v", m.fstype, m.dst, err)
		}
	}
	mountCgroup2()
}

// mountCgroup2 puts the cgroup v2 hierarchy on /sys/fs/cgroup, where runc
// and systemd-era tools look for it. u-root's init mounts the v1
// hierarchies there; a controller bound to a v1 hierarchy is missing from
// v2 (cgroup-v2.rst, "Mounting"), so they go first: an unmounted v1
// hierarchy without child cgroups gives its controllers back to v2.
func mountCgroup2() {
	const dir = "/sys/fs/cgroup"
	mounted := mountPoints()
	if mounted[dir] == "cgroup2" {
		return
	}
	var under []string
	for p := range mounted {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			under = append(under, p)
		}
	}
	// Deepest first: /sys/fs/cgroup/memory before /sys/fs/cgroup.
	sort.Sort(sort.Reverse(sort.StringSlice(under)))
	for _, p := range under {
		if err := unix.Unmount(p, 0); err != nil {
			log.Printf("unmount %s: %v", p, err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Printf("mount cgroup2: %v", err)
		return
	}
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		log.Printf("mount cgroup2 on %s: %v", dir, err)
	}
}

// mountPoints maps each mount point to the type of the file system
// mounted there last (/proc/self/mounts).
func mountPoints() map[string]string {
	m := map[string]string{}
	raw, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 {
			m[f[1]] = f[2]
		}
	}
	return m
}

// loadModules loads the modules the image build listed, in its order. A
// module that fails is logged and skipped: the command may not need it.
func loadModules() {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		log.Printf("load modules: uname: %v", err)
		return
	}
	release := unix.ByteSliceToString(uts.Release[:])
	err := kmod.LoadOrdered(guest.ModuleOrderFile(release), func(err error) error {
		log.Printf("%v", err)
		return nil
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Printf("%v", err)
	}
}
