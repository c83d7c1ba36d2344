package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/govmm/govmm/harness/job"
	"github.com/govmm/govmm/images"
)

// Command is something to run where KVM works.
type Command struct {
	Args []string // Args[0] is looked up in the host's PATH
	Env  []string // nil means this process's environment
	Dir  string   // "" means this process's working directory
	// ShareDir makes Dir writable through to the host: files the command
	// writes there survive the outer guest. Elsewhere writes go to the
	// outer guest's in-memory overlay and are lost. Never for "/".
	ShareDir bool
	Stdout   io.Writer
	Stderr   io.Writer
}

// Outer describes the outer guest of the nested harness.
type Outer struct {
	Kernel    string        // bzImage of the outer guest
	Initramfs string        // the outer-guest initramfs (images.Builder.OuterInitramfs)
	QEMU      string        // QEMU binary; "" means qemu-system-x86_64 from PATH
	MemoryMiB int           // outer guest RAM; 0 means 6144
	CPUs      int           // outer guest vCPUs; 0 means defaultOuterCPUs(runtime.NumCPU())
	Timeout   time.Duration // one boot and run of the job; 0 means 10 minutes

	// BootTimeout is how long the outer guest may take to start the job
	// before it counts as stalled and is restarted; 0 means 2 minutes (a
	// boot takes about 7 s). BootAttempts bounds the restarts; 0 means 3.
	BootTimeout  time.Duration
	BootAttempts int
	// HangTimeout is how long the outer init's heartbeat may stay
	// silent during the job before the outer kernel counts as hung; 0
	// means 90 seconds (it beats every 5).
	HangTimeout time.Duration
	// PowerOffGrace is how long the outer guest may take, from writing
	// the job's status, to end (sync, unmount, power off: well under a
	// second, usually) before the harness stops it and returns that
	// status; 0 means 30 seconds. Without it, an outer kernel that hangs
	// on its way down keeps the init's heartbeat going and holds the
	// caller until the whole Timeout (once 14 minutes of a 60-minute one,
	// after a benchmark had finished).
	PowerOffGrace time.Duration
	// RetryHungJob reruns the job from the start in a new outer guest
	// when the outer kernel locks up while it runs (within BootAttempts).
	// Only for jobs that may run twice, such as tests.
	RetryHungJob bool
}

// DefaultOuter is the outer guest built by `make images` into the default
// cache directory.
func DefaultOuter() (*Outer, error) {
	dir, err := images.DefaultCacheDir()
	if err != nil {
		return nil, err
	}
	m, err := images.LoadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("nested KVM harness: %w", err)
	}
	o := &Outer{Kernel: m.OuterKernel, Initramfs: m.OuterInitramfs}
	if n, err := strconv.Atoi(os.Getenv(CPUsEnv)); err == nil && n > 0 {
		o.CPUs = n
	}
	return o, nil
}

// CPUsEnv overrides the outer guest's vCPU count (default: the host's CPUs,
// at most 4).
const CPUsEnv = "GOVMM_HARNESS_CPUS"

const qemuInstallHint = "the nested KVM harness needs QEMU: install it with `apt-get install qemu-system-x86`"

// Run runs c inside a fresh outer guest and returns its exit status. The
// error is non-nil only when the harness itself failed (QEMU missing, the
// outer guest did not come up, timeout); a command that ran and failed is a
// non-zero status with a nil error.
func (o *Outer) Run(ctx context.Context, c Command) (int, error) {
	qemu := o.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	qemuPath, err := exec.LookPath(qemu)
	if err != nil {
		return 0, fmt.Errorf("nested KVM harness: %s not found: %s", qemu, qemuInstallHint)
	}
	for _, p := range []string{o.Kernel, o.Initramfs} {
		if _, err := os.Stat(p); err != nil {
			return 0, fmt.Errorf("nested KVM harness: outer guest image: %w: run `make images`", err)
		}
	}
	j, err := o.job(c)
	if err != nil {
		return 0, err
	}
	runDir, err := os.MkdirTemp("", "govmm-harness-")
	if err != nil {
		return 0, fmt.Errorf("nested KVM harness: %w", err)
	}
	defer os.RemoveAll(runDir)
	raw, err := json.Marshal(j)
	if err != nil {
		return 0, fmt.Errorf("nested KVM harness: %w", err)
	}
	if err := os.WriteFile(filepath.Join(runDir, job.JobFile), raw, 0o644); err != nil {
		return 0, fmt.Errorf("nested KVM harness: %w", err)
	}

	timeout := o.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	bootTimeout := o.BootTimeout
	if bootTimeout == 0 {
		bootTimeout = 2 * time.Minute
	}
	attempts := o.BootAttempts
	if attempts <= 0 {
		attempts = 3
	}
	// Under a software CPU the outer kernel now and then locks up: early in
	// its boot (seen on CI: stuck after the PnP scan for 27 minutes) or
	// later, all its vCPUs spinning in soft lockups (QEMU 7.2's TCG can
	// starve a vCPU of the IPI that live code patching waits for). Rarer,
	// it crashes: an oops in its page-fault path while nested guests run
	// (seen on CI and in benchmark runs), which panic=-1 turns into QEMU's
	// exit. Until the init says it is starting the job nothing of the job
	// has run, so a stalled boot is cut short and retried; a lockup or
	// crash during the job is retried only if the caller allows rerunning
	// the job (RetryHungJob).
	var last string
	for attempt := 1; attempt <= attempts; attempt++ {
		code, err := o.attempt(ctx, qemuPath, runDir, c, timeout, bootTimeout)
		var stall *bootStallError
		var fail *outerKernelError
		switch {
		case errors.As(err, &stall):
			last = stall.console
			if c.Stderr != nil && attempt < attempts {
				fmt.Fprintf(c.Stderr, "govmm harness: the outer guest did not start the job within %s (attempt %d of %d); restarting it\n",
					bootTimeout, attempt, attempts)
			}
		case errors.As(err, &fail) && (!fail.jobStarted || o.RetryHungJob):
			last = fail.console
			if c.Stderr != nil && attempt < attempts {
				fmt.Fprintf(c.Stderr, "govmm harness: the outer guest's kernel %s (%s) (attempt %d of %d); rerunning the job in a new one\n",
					fail.what, fail.marker, attempt, attempts)
			}
		case errors.As(err, &fail):
			return 0, fmt.Errorf("nested KVM harness: the outer guest's kernel %s (%s) while the command ran; "+
				"it was stopped, and is not rerun (it may have had effects)\n--- outer guest console ---\n%s", fail.what, fail.marker, fail.console)
		default:
			return code, err
		}
	}
	return 0, fmt.Errorf("nested KVM harness: the outer guest stalled, locked up or crashed %d times in a row; "+
		"the host may be overloaded (raise Outer.BootTimeout) or the outer kernel fails under QEMU's software CPU"+
		"\n--- outer guest console of the last attempt ---\n%s", attempts, last)
}

// outerKernelError says the outer guest's kernel locked up or crashed:
// a failure of the emulated machine, not of the job.
type outerKernelError struct {
	what       string // "locked up" or "crashed"
	marker     string // what showed it
	jobStarted bool
	console    string
}

func (e *outerKernelError) Error() string { return "outer guest kernel " + e.what + ": " + e.marker }

// bootStallError says the outer guest did not reach the job in time.
type bootStallError struct{ console string }

func (e *bootStallError) Error() string { return "outer guest stalled while booting" }

// attempt boots one outer guest and runs the job in it.
func (o *Outer) attempt(ctx context.Context, qemuPath, runDir string, c Command, timeout, bootTimeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var verdict watchVerdict

	// The command's stdout and stderr each get a serial port of their own,
	// reaching QEMU as inherited pipes (fds 3 and 4), so they stay apart from
	// each other and from the kernel's console.
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("nested KVM harness: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, fmt.Errorf("nested KVM harness: %w", err)
	}
	// Nothing of an earlier, stalled attempt may be mistaken for this one's.
	consolePath := filepath.Join(runDir, "console.log")
	for _, stale := range []string{consolePath, filepath.Join(runDir, job.StatusFile), filepath.Join(runDir, job.HeartbeatFile)} {
		if err := os.Remove(stale); err != nil && !errors.Is(err, os.ErrNotExist) {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return 0, fmt.Errorf("nested KVM harness: %w", err)
		}
	}
	j, err := o.job(c)
	if err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		return 0, err
	}
	var qemuLog bytes.Buffer
	cmd := exec.CommandContext(ctx, qemuPath, o.qemuArgs(runDir, consolePath, j)...)
	cmd.ExtraFiles = []*os.File{outW, errW}
	cmd.Stdout, cmd.Stderr = &qemuLog, &qemuLog
	// The outer guest must not outlive its harness, however the harness
	// ends: cancelling ctx kills QEMU, but a harness killed outright
	// (SIGKILL, an OOM kill, a test binary's timeout panic) cancels
	// nothing, and an orphaned QEMU would go on using every CPU it
	// emulates. The kernel delivers the signal when the thread that
	// started QEMU ends, which for a Go program is when the process does
	// (the runtime ends threads only under LockOSThread, not used here).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	var copiers sync.WaitGroup
	for _, p := range []struct {
		r *os.File
		w io.Writer
	}{{outR, c.Stdout}, {errR, c.Stderr}} {
		copiers.Add(1)
		go func() {
			defer copiers.Done()
			defer p.r.Close()
			w := p.w
			if w == nil {
				w = io.Discard
			}
			io.Copy(w, p.r) //nolint:errcheck // a consumer that stops reading must not stall QEMU
		}()
	}
	start := time.Now()
	runErr := cmd.Start()
	outW.Close() // QEMU holds its own copies now
	errW.Close()
	if runErr == nil {
		watchDone := make(chan struct{})
		verdictCh := make(chan watchVerdict, 1)
		go func() {
			v := watchConsole(ctx, watchPaths{console: consolePath, heartbeat: filepath.Join(runDir, job.HeartbeatFile),
				status: filepath.Join(runDir, job.StatusFile)}, bootTimeout, o.hangTimeout(), o.powerOffGrace(), watchDone)
			if v.stalled || v.lockup != "" || v.stuckAfterJob {
				cancel()
			}
			verdictCh <- v
		}()
		runErr = cmd.Wait()
		close(watchDone)
		verdict = <-verdictCh
	} else {
		outR.Close()
		errR.Close()
	}
	copiers.Wait()

	console, _ := os.ReadFile(consolePath)
	diag := func() string {
		return fmt.Sprintf("\n--- outer guest console (last lines) ---\n%s\n--- qemu output (last lines) ---\n%s",
			lastLines(console, 40), lastLines(withoutTCGWarnings(qemuLog.Bytes()), 10))
	}
	switch {
	case verdict.stalled:
		return 0, &bootStallError{console: lastLines(console, 40)}
	case verdict.lockup != "":
		return 0, &outerKernelError{what: "locked up", marker: verdict.lockup, jobStarted: verdict.started, console: lastLines(console, 40)}
	}
	if verdict.stuckAfterJob && c.Stderr != nil {
		fmt.Fprintf(c.Stderr, "govmm harness: the outer guest did not power off within %s of the job's end; stopped it (the job's status stands)\n",
			o.powerOffGrace())
	}
	if ctx.Err() != nil && !verdict.stuckAfterJob {
		return 0, fmt.Errorf("nested KVM harness: the outer guest did not finish within %s (stopped it); "+
			"if it was still working, raise the timeout; if it hung, the console below says where%s", timeout, diag())
	}
	st, statusErr := readStatus(filepath.Join(runDir, job.StatusFile))
	if statusErr != nil {
		if oops, excerpt, ok := kernelCrash(console); ok {
			return 0, &outerKernelError{what: "crashed", marker: oops, jobStarted: verdict.started, console: excerpt}
		}
		if runErr != nil {
			return 0, fmt.Errorf("nested KVM harness: qemu failed after %s: %w%s", time.Since(start).Round(time.Millisecond), runErr, diag())
		}
		return 0, fmt.Errorf("nested KVM harness: %w (%v); the outer kernel or its init failed to come up%s", errNoStatus, statusErr, diag())
	}
	if st.Error != "" {
		return 0, fmt.Errorf("nested KVM harness: outer guest could not run the command: %s%s", st.Error, diag())
	}
	if !st.KVM {
		return st.ExitCode, fmt.Errorf("nested KVM harness: /dev/kvm did not appear in the outer guest "+
			"(kvm-amd did not load; QEMU must emulate an AMD CPU with SVM: -cpu EPYC,+svm)%s", diag())
	}
	return st.ExitCode, nil
}

func (o *Outer) hangTimeout() time.Duration {
	if o.HangTimeout > 0 {
		return o.HangTimeout
	}
	return 90 * time.Second
}

func (o *Outer) powerOffGrace() time.Duration {
	if o.PowerOffGrace > 0 {
		return o.PowerOffGrace
	}
	return 30 * time.Second
}

// lockupMarkers are what the outer kernel prints when its vCPUs stop
// making progress (kernel/watchdog.c, kernel/rcu/tree_stall.h). A guest
// that prints them under QEMU's software CPU does not recover.
var lockupMarkers = []string{"BUG: soft lockup", "rcu_preempt self-detected stall", "rcu_preempt detected stalls"}

// crashMarkers begin the kernel's reports of its own failures
// (arch/x86/mm/fault.c, kernel/panic.c, lib/bug.c); the first one on the
// console says what went wrong first.
var crashMarkers = []string{"BUG: ", "kernel BUG at", "Oops: ", "general protection fault",
	"double fault", "stack guard page", "Kernel panic - not syncing"}

// kernelCrash reports whether the console shows the kernel panicking; if
// so, it returns the first line of its first report (without the
// timestamp) and the part of the console that explains the crash: the
// start of that report, where the cause and the faulting code are, then
// the console's last lines.
func kernelCrash(console []byte) (marker, excerpt string, ok bool) {
	if !bytes.Contains(console, []byte("Kernel panic - not syncing")) {
		return "", "", false
	}
	lines := strings.Split(strings.TrimRight(string(console), "\n"), "\n")
	first := -1
	for i, line := range lines {
		for _, m := range crashMarkers {
			if j := strings.Index(line, m); j >= 0 {
				first, marker = i, strings.TrimSpace(line[j:])
				break
			}
		}
		if first >= 0 {
			break
		}
	}
	// The panic line itself is a marker, so first is found.
	const head, tail = 30, 10
	if len(lines)-first <= head+tail {
		return marker, strings.Join(lines[max(0, min(first, len(lines)-head-tail)):], "\n"), true
	}
	return marker, strings.Join(lines[first:first+head], "\n") + "\n[...]\n" + strings.Join(lines[len(lines)-tail:], "\n"), true
}

// watchVerdict is what watchConsole saw.
type watchVerdict struct {
	started bool   // the init printed job.StartedLine
	stalled bool   // it did not within the boot timeout
	lockup  string // the lockup marker seen, if any
	// stuckAfterJob: the init wrote the job's status, but the outer guest
	// was still running Outer.PowerOffGrace later.
	stuckAfterJob bool
}

// watchPaths are the files of the job share that watchConsole follows.
type watchPaths struct {
	console   string // the outer guest's console
	heartbeat string // job.HeartbeatFile
	status    string // job.StatusFile
}

// watchConsole follows the outer guest's console file until done closes or
// ctx ends, and returns as soon as the boot stalls (no job.StartedLine
// within bootTimeout), the kernel reports a lockup, once the job has
// started, the heartbeat file stops changing for hangTimeout (a kernel too
// stuck to report anything), or the job's status has been written for
// powerOffGrace without the guest ending.
func watchConsole(ctx context.Context, paths watchPaths, bootTimeout, hangTimeout, powerOffGrace time.Duration, done <-chan struct{}) watchVerdict {
	var v watchVerdict
	var beat []byte
	var beatAt, statusAt time.Time
	deadline := time.NewTimer(bootTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	check := func() bool {
		// Once the job's status is written, only the guest's end is
		// awaited: what its kernel does on the way down (a lockup, a
		// silent heartbeat once the share is unmounted) cannot undo the
		// job.
		if statusAt.IsZero() {
			if _, err := readStatus(paths.status); err == nil {
				statusAt = time.Now()
			}
		}
		if !statusAt.IsZero() {
			v.stuckAfterJob = time.Since(statusAt) > powerOffGrace
			return v.stuckAfterJob
		}
		b, err := os.ReadFile(paths.console)
		if err != nil {
			return false
		}
		if !v.started && bytes.Contains(b, []byte(job.StartedLine)) {
			v.started = true
			beatAt = time.Now()
		}
		if v.started {
			if hb, err := os.ReadFile(paths.heartbeat); err == nil && !bytes.Equal(hb, beat) {
				beat, beatAt = hb, time.Now()
			}
			if time.Since(beatAt) > hangTimeout {
				v.lockup = fmt.Sprintf("no heartbeat for %s", hangTimeout)
				return true
			}
		}
		for _, m := range lockupMarkers {
			if bytes.Contains(b, []byte(m)) {
				v.lockup = m
				return true
			}
		}
		return false
	}
	for {
		select {
		case <-ctx.Done():
			return v
		case <-done:
			check()
			v.lockup = "" // it finished anyway
			v.stuckAfterJob = false
			return v
		case <-tick.C:
			if check() {
				return v
			}
		case <-deadline.C:
			if check() {
				return v
			}
			if !v.started && statusAt.IsZero() {
				v.stalled = true
				return v
			}
		}
	}
}

// job resolves c into what the outer init runs: an absolute program path
// (the init looks nothing up), an environment and a working directory.
func (o *Outer) job(c Command) (job.Job, error) {
	if len(c.Args) == 0 {
		return job.Job{}, errors.New("nested KVM harness: empty command")
	}
	prog, err := exec.LookPath(c.Args[0])
	if err != nil {
		return job.Job{}, fmt.Errorf("nested KVM harness: %w", err)
	}
	if prog, err = filepath.Abs(prog); err != nil {
		return job.Job{}, fmt.Errorf("nested KVM harness: %w", err)
	}
	env := c.Env
	if env == nil {
		env = os.Environ()
	}
	dir := c.Dir
	if dir == "" {
		if dir, err = os.Getwd(); err != nil {
			return job.Job{}, fmt.Errorf("nested KVM harness: %w", err)
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return job.Job{}, fmt.Errorf("nested KVM harness: %w", err)
	}
	return job.Job{Args: append([]string{prog}, c.Args[1:]...), Env: env, Dir: dir, ShareDir: c.ShareDir && dir != "/"}, nil
}

// defaultOuterCPUs is the outer guest's vCPU count on a host with hostCPUs:
// one per host CPU, at most 4. Each vCPU is a QEMU thread emulating a CPU
// flat out; with more of them than host CPUs, a descheduled one misses the
// IPIs the others wait on (TLB shootdowns, KVM patching its static keys),
// and the outer kernel reports soft lockups and RCU stalls. On the 2-CPU
// CI kind, 4 vCPUs locked up in most full test runs; 2 in one of five.
func defaultOuterCPUs(hostCPUs int) int { return max(1, min(4, hostCPUs)) }

// qemuArgs is the outer guest's QEMU command line.
func (o *Outer) qemuArgs(runDir, consolePath string, j job.Job) []string {
	mem, cpus := o.MemoryMiB, o.CPUs
	if mem == 0 {
		mem = 6144
	}
	if cpus == 0 {
		cpus = defaultOuterCPUs(runtime.NumCPU())
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
		// Software CPU emulation of an AMD CPU with SVM: its kvm-amd gives
		// the outer guest a /dev/kvm with nested paging.
		"-accel", "tcg,thread=multi", "-cpu", "EPYC,+svm",
		"-machine", "q35", "-smp", fmt.Sprint(cpus), "-m", fmt.Sprintf("%dM", mem),
		"-kernel", o.Kernel, "-initrd", o.Initramfs,
		// panic=-1 and -no-reboot end QEMU on a kernel panic instead of
		// hanging until the timeout.
		"-append", "console=ttyS0 panic=-1 rdinit=/init",
		"-serial", "file:" + consolePath,
		"-chardev", "file,id=stdout,path=/dev/fd/3", "-serial", "chardev:stdout",
		"-chardev", "file,id=stderr,path=/dev/fd/4", "-serial", "chardev:stderr",
		"-virtfs", "local,path=/,mount_tag=" + job.HostRootTag + ",security_model=none,readonly=on,multidevs=remap",
		"-virtfs", "local,path=" + runDir + ",mount_tag=" + job.JobTag + ",security_model=none",
	}
	if j.ShareDir {
		args = append(args, "-virtfs", "local,path="+j.Dir+",mount_tag="+job.WorkDirTag+",security_model=none")
	}
	return args
}

func readStatus(path string) (job.Status, error) {
	var st job.Status
	raw, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, fmt.Errorf("parse %s: %w", path, err)
	}
	return st, nil
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// withoutTCGWarnings drops QEMU's warnings about CPUID features its software
// CPU lacks: harmless, and many.
func withoutTCGWarnings(b []byte) []byte {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if !bytes.Contains(line, []byte("TCG doesn't support requested feature")) {
			out = append(out, line...)
		}
	}
	return out
}
