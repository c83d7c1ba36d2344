package vmmproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/console"
	"github.com/govmm/govmm/internal/threadsched"
	"github.com/govmm/govmm/vmm"
)

// ExecutableName is the VMM executable's file name, looked for beside govmm.
const ExecutableName = "govmm-vmm"

// PathEnv, when set, is the VMM executable to use instead.
const PathEnv = "GOVMM_VMM"

// specEnv carries the Spec, as JSON, across exec.
const specEnv = "GOVMM_VMM_SPEC"

// Exit statuses of a VM run beyond the guest command's own (documented in
// `govmm run --help`).
const (
	ExitFailure    = 1   // govmm failed (KVM, images, I/O)
	ExitGuestPanic = 3   // the guest kernel panicked
	ExitStopped    = 130 // the user stopped the VM (Ctrl-A x, a signal), as a shell reports Ctrl-C
)

// Spec is everything the VMM process needs: the VM and how to report on it.
type Spec struct {
	VM vmm.Config
	// Verbose turns on debug logs.
	Verbose bool
	// PrintBootTime prints the time from launch to the guest's init.
	PrintBootTime bool
	// HasCommand says the guest runs a command whose status is the
	// process's exit status.
	HasCommand bool
	// RemoveOnExit are files or directories the VM used that nobody else
	// will remove (a container rootfs image govmm made): govmm run is gone
	// once it has exec'd.
	RemoveOnExit []string
}

// ErrNoExecutable means there is no govmm-vmm beside the running
// executable and $GOVMM_VMM is not set.
var ErrNoExecutable = errors.New(ExecutableName + " not found")

// Executable finds the VMM executable: $GOVMM_VMM, else govmm-vmm in the
// running executable's directory. An explicit $GOVMM_VMM that is not an
// executable file is an error, not a reason to look elsewhere.
func Executable() (string, error) {
	if p := os.Getenv(PathEnv); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("$%s: %w", PathEnv, err)
		}
		return p, nil
	}
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find %s: %w", ExecutableName, err)
	}
	p := filepath.Join(filepath.Dir(self), ExecutableName)
	if err := checkExecutable(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w beside %s", ErrNoExecutable, self)
		}
		return "", err
	}
	return p, nil
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", p)
	}
	return nil
}

// Exec replaces this process with the VMM executable at path, running spec.
// It returns only if the exec failed.
func Exec(path string, spec Spec) error {
	env, err := withSpec(os.Environ(), spec)
	if err != nil {
		return fmt.Errorf("encode the VM for %s: %w", path, err)
	}
	// The open taps go along: the one thing besides stdio that must.
	for _, n := range spec.VM.Nets {
		if n.TapFD > 0 {
			if _, err := unix.FcntlInt(uintptr(n.TapFD), unix.F_SETFD, 0); err != nil {
				return fmt.Errorf("pass tap %s to %s: %w", n.Tap, path, err)
			}
		}
	}
	if err := syscall.Exec(path, []string{ExecutableName}, env); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// withSpec returns env with spec in it, in place of any spec already there.
func withSpec(env []string, spec Spec) ([]string, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, specEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, specEnv+"="+string(b)), nil
}

// SpecFromEnv reads the Spec govmm run left in the environment, and takes
// it out of what children of this process would inherit (the process's
// own initial environment, in /proc/PID/environ, keeps it).
func SpecFromEnv() (Spec, error) {
	var spec Spec
	v, ok := os.LookupEnv(specEnv)
	if !ok {
		return spec, fmt.Errorf("no VM to run: %s is started by 'govmm run', not by hand", ExecutableName)
	}
	os.Unsetenv(specEnv)
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		return spec, fmt.Errorf("decode the VM from govmm run: %w", err)
	}
	return spec, nil
}

// Run runs the VM of spec with its console on this process's terminal and
// returns the exit status the process should end with; an error is a
// failure of govmm itself (status ExitFailure).
func Run(ctx context.Context, spec Spec) (code int, err error) {
	defer func() {
		// A leftover file is worth a warning, not the guest's status.
		for _, p := range spec.RemoveOnExit {
			if e := os.RemoveAll(p); e != nil {
				fmt.Fprintf(os.Stderr, "govmm: remove %s: %v\n", p, e)
			}
		}
	}()
	level := slog.LevelWarn
	if spec.Verbose {
		level = slog.LevelDebug
	}
	cfg := spec.VM
	cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Console = os.Stdout
	if self, err := os.Executable(); err == nil {
		cfg.Log.Debug("VMM process", "executable", self, "pid", os.Getpid())
	}
	// Before the VM's threads exist: they inherit the policy. The vCPU
	// threads set their own (vmm).
	policy, err := threadsched.FromEnv()
	if err != nil {
		return ExitFailure, err
	}
	if err := threadsched.SetAll(policy); err != nil {
		cfg.Log.Warn("the VMM's threads keep their scheduling policy", "want", policy, "err", err)
	}
	m, err := vmm.New(cfg)
	if err != nil {
		return ExitFailure, err
	}
	defer func() {
		if cerr := m.Close(); cerr != nil && err == nil {
			code, err = ExitFailure, cerr
		}
	}()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, quit := context.WithCancel(ctx)
	defer quit()
	session, err := console.Attach(os.Stdin, m.SendConsoleInput, quit)
	if err != nil {
		return ExitFailure, err
	}
	// Restored right after the run, so messages print on a sane terminal,
	// and deferred for every other way out (a panic included).
	defer session.Restore() //nolint:errcheck // the explicit call below reports failures
	res, runErr := m.Run(ctx)
	if err := session.Restore(); err != nil {
		cfg.Log.Warn("restore terminal", "err", err)
	}
	if spec.PrintBootTime {
		if res.BootTime > 0 {
			fmt.Fprintf(os.Stderr, "govmm: boot time (launch to guest init): %s\n", res.BootTime.Round(time.Microsecond))
		} else {
			fmt.Fprintln(os.Stderr, "govmm: boot time: the guest never reached govmm's agent (no boot marker)")
		}
	}
	if runErr != nil {
		return ExitFailure, runErr
	}
	cfg.Log.Debug("guest ended", "outcome", res.Outcome, "status", res.Status, "cause", res.Cause)
	switch res.Outcome {
	case vmm.OutcomeCommandExited:
		return res.Status, nil
	case vmm.OutcomePanic:
		fmt.Fprintln(os.Stderr, "govmm: the guest kernel panicked")
		return ExitGuestPanic, nil
	case vmm.OutcomeStopped:
		fmt.Fprintln(os.Stderr, "govmm: stopped")
		return ExitStopped, nil
	}
	// The guest powered off or rebooted: 0, also when that ended a
	// command (`govmm run -- poweroff`).
	if spec.HasCommand {
		fmt.Fprintf(os.Stderr, "govmm: the guest ended (%s: %s) before its command reported an exit status\n", res.Outcome, res.Cause)
	}
	return 0, nil
}
