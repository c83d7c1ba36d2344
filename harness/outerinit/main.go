// Command outerinit is the init (PID 1) of the nested harness's outer guest:
// a stock Debian kernel running under QEMU's software CPU with emulated AMD
// SVM. It loads KVM and 9p from the kernel's own modules, mounts the host's
// root file system read-only over 9p with a tmpfs overlay on top, runs the
// job's command chrooted there (so host binaries, test binaries included,
// run unchanged, with a working /dev/kvm), writes the exit status back to
// the host and powers the guest off.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/guest/kmod"
	"github.com/govmm/govmm/harness/job"
)

// moduleOrder is written by the image build: the modules to load, one path
// per line, each after its dependencies.
const moduleOrder = "/modules/order"

func main() {
	log.SetFlags(0)
	log.SetPrefix("govmm-outer: ")
	if console, err := os.OpenFile(job.ConsoleTTY, os.O_WRONLY, 0); err == nil {
		log.SetOutput(console)
	}
	status := run()
	if err := writeStatus(status); err != nil {
		log.Printf("report status: %v", err)
	}
	unix.Sync()
	if err := unix.Unmount("/job", 0); err != nil {
		log.Printf("unmount job share: %v", err)
	}
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		log.Printf("power off: %v", err)
	}
	select {}
}

func run() job.Status {
	fail := func(err error) job.Status {
		log.Printf("%v", err)
		return job.Status{ExitCode: -1, Error: err.Error()}
	}
	for _, m := range []struct{ src, dst, fstype string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
	} {
		if err := mount(m.src, m.dst, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fail(err)
		}
	}
	if err := loadModules(); err != nil {
		return fail(err)
	}
	// msize 512 KiB: test binaries are tens of MiB and every 9p round trip
	// is slow under a software CPU. The host root is read-only and does not
	// change during a run, so the page cache may keep what it read.
	if err := mount(job.HostRootTag, "/host", "9p", unix.MS_RDONLY, "trans=virtio,version=9p2000.L,msize=524288,cache=loose"); err != nil {
		return fail(err)
	}
	if err := mount(job.JobTag, "/job", "9p", 0, "trans=virtio,version=9p2000.L,msize=524288"); err != nil {
		return fail(err)
	}
	raw, err := os.ReadFile(filepath.Join("/job", job.JobFile))
	if err != nil {
		return fail(fmt.Errorf("read job: %w", err))
	}
	var j job.Job
	if err := json.Unmarshal(raw, &j); err != nil {
		return fail(fmt.Errorf("parse job: %w", err))
	}
	if len(j.Args) == 0 {
		return fail(errors.New("job has no command"))
	}
	root, err := writableRoot()
	if err != nil {
		return fail(err)
	}
	// Jobs expect a loopback interface, as on any host (servers on
	// 127.0.0.1, the isolation probe's host listener).
	if err := loopbackUp(); err != nil {
		log.Printf("loopback: %v", err)
	}
	if j.ShareDir {
		// The host's working directory, read-write over the overlay: what
		// the job writes there reaches the host.
		dir := filepath.Join(root, j.Dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fail(err)
		}
		if err := mount(job.WorkDirTag, dir, "9p", 0, "trans=virtio,version=9p2000.L,msize=524288"); err != nil {
			return fail(err)
		}
	}
	_, kvmErr := os.Stat("/dev/kvm")
	if kvmErr != nil {
		log.Printf("no /dev/kvm in the outer guest: %v", kvmErr)
	}
	log.Print(strings.TrimPrefix(job.StartedLine, log.Prefix()))
	go heartbeat()
	code, err := runJob(root, j)
	if err != nil {
		return fail(err)
	}
	return job.Status{ExitCode: code, KVM: kvmErr == nil}
}

// loopbackUp brings up lo, which nothing else configures in the outer
// guest.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("get lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("set lo up: %w", err)
	}
	return nil
}

// writableRoot makes the host's read-only root writable for the job with an
// overlay whose upper layer lives in guest RAM, and mounts fresh /dev, /proc,
// /sys inside it. Writes never reach the host.
func writableRoot() (string, error) {
	if err := mount("tmpfs", "/overlay", "tmpfs", 0, "mode=0755"); err != nil {
		return "", err
	}
	for _, d := range []string{"/overlay/upper", "/overlay/work"} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return "", err
		}
	}
	if err := mount("overlay", "/root", "overlay", 0, "lowerdir=/host,upperdir=/overlay/upper,workdir=/overlay/work"); err != nil {
		return "", err
	}
	for _, m := range []struct{ src, dst, fstype string }{
		{"devtmpfs", "/root/dev", "devtmpfs"},
		{"proc", "/root/proc", "proc"},
		{"sysfs", "/root/sys", "sysfs"},
		// runc, for the container rows of govmm's isolation report and
		// benchmarks, wants the cgroup v2 hierarchy where systemd puts it.
		{"cgroup2", "/root/sys/fs/cgroup", "cgroup2"},
		{"tmpfs", "/root/run", "tmpfs"},
		{"tmpfs", "/root/dev/shm", "tmpfs"},
	} {
		if err := mount(m.src, m.dst, m.fstype, 0, ""); err != nil {
			return "", err
		}
	}
	return "/root", nil
}

func runJob(root string, j job.Job) (int, error) {
	stdout, err := openRawTTY(job.StdoutTTY)
	if err != nil {
		return 0, err
	}
	defer stdout.Close()
	stderr, err := openRawTTY(job.StderrTTY)
	if err != nil {
		return 0, err
	}
	defer stderr.Close()
	cmd := exec.Command(j.Args[0], j.Args[1:]...)
	cmd.Env = append(j.Env, job.InsideEnv+"=1")
	cmd.Dir = j.Dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	// exec.Command resolves a bare name against the init's PATH, not the
	// job's root; the host side always sends an absolute path.
	cmd.Path = j.Args[0]
	err = cmd.Run()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("run %q: %w", j.Args[0], err)
	}
	return 0, nil
}

// openRawTTY opens a serial port with output post-processing off, so "\n"
// reaches the host as "\n", not "\r\n".
func openRawTTY(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get termios of %s: %w", path, err)
	}
	t.Oflag &^= unix.OPOST
	if err := unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t); err != nil {
		f.Close()
		return nil, fmt.Errorf("set termios of %s: %w", path, err)
	}
	return f, nil
}

func loadModules() error {
	return kmod.LoadOrdered(moduleOrder, func(err error) error { return err })
}

func mount(src, dst, fstype string, flags uintptr, data string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", dst, err)
	}
	if err := unix.Mount(src, dst, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) on %s: %w", src, fstype, dst, err)
	}
	return nil
}

func writeStatus(s job.Status) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join("/job", job.StatusFile))
	if err != nil {
		return err
	}
	if _, err := f.Write(raw); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// heartbeat rewrites the job share's heartbeat file with a counter, for as
// long as this kernel runs (see job.HeartbeatFile).
func heartbeat() {
	path := filepath.Join("/job", job.HeartbeatFile)
	for n := 1; ; n++ {
		if err := os.WriteFile(path, []byte(strconv.Itoa(n)), 0o644); err != nil {
			log.Printf("heartbeat: %v", err)
		}
		time.Sleep(job.HeartbeatEvery)
	}
}
