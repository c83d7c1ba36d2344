package container

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
)

// ErrNoRunc means runc is not installed.
var ErrNoRunc = errors.New("runc not found in PATH (install it: apt-get install runc)")

// FindRunc returns the path of runc.
func FindRunc() (string, error) {
	for _, p := range []string{"runc", "/usr/sbin/runc", "/usr/bin/runc"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	return "", ErrNoRunc
}

// Runtime is one runc installation.
type Runtime struct {
	Runc string // the runc binary
	// StateDir is runc's --root, where it keeps container state; "" is
	// runc's default (/run/runc).
	StateDir string
	// NoPivot makes runc enter the root with MS_MOVE and chroot instead of
	// pivot_root(2), which fails when the caller's own root is the initial
	// ramfs (a VM's initramfs): pivot_root needs a root that is a mount
	// with a parent.
	NoPivot bool
}

// Command returns the command that runs the bundle in dir as container id,
// in the foreground, and exits with the container process's status (runc
// run reports 128+N when signal N ended it). The caller sets its stdio.
func (r Runtime) Command(ctx context.Context, bundle, id string) *exec.Cmd {
	var args []string
	if r.StateDir != "" {
		args = append(args, "--root", r.StateDir)
	}
	args = append(args, "run", "--bundle", bundle)
	if r.NoPivot {
		args = append(args, "--no-pivot")
	}
	args = append(args, id)
	return exec.CommandContext(ctx, r.Runc, args...)
}

// PivotRootFailed says whether runc failed because pivot_root(2) refused
// to leave the caller's root (a ramfs, or a root that is not a mount with
// a parent, as in some CI sandboxes): the run may be retried with NoPivot.
func PivotRootFailed(err error) bool {
	return err != nil && strings.Contains(err.Error(), "pivot_root")
}

// ExitStatus turns the error of a finished runc run into the container's
// exit status, as a shell would report it.
func ExitStatus(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	return 0, fmt.Errorf("runc: %w", err)
}
