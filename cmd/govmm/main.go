// Command govmm is a KVM hypervisor: it boots Linux guests in well under a
// second, gives them virtio disks and networks, and measures what hardware
// isolation costs against containers.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes. A guest command's own status passes through unchanged
// (`govmm run -- CMD`), so govmm's own failures use codes a shell reserves.
const (
	exitOK      = 0
	exitFailure = 1 // govmm failed at run time (KVM, images, I/O)
	exitUsage   = 2 // bad flags or arguments
)

// usageError marks errors in what the user typed, so main can exit with
// exitUsage.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// stopOnSignal returns a context cancelled when govmm is told to stop:
// Ctrl-C (SIGINT), or SIGTERM, which timeout(1), a cancelled CI job and
// service managers send. Without it SIGTERM would end govmm at once,
// leaving what it started (the nested harness's outer QEMU, the
// benchmark's VMs) running on.
func stopOnSignal(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

func main() {
	withoutHeapHugePages(os.Args)
	root := newRootCommand()
	err := root.Execute()
	if err == nil {
		os.Exit(exitOK)
	}
	var ce exitCodeError
	if errors.As(err, &ce) {
		os.Exit(ce.code) // the command's own status, as documented
	}
	fmt.Fprintf(os.Stderr, "govmm: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", root.CommandPath())
		os.Exit(exitUsage)
	}
	os.Exit(exitFailure)
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "govmm",
		Short: "A KVM hypervisor that boots Linux guests in well under a second",
		Long: `govmm boots an unmodified Linux kernel (bzImage) on KVM straight into 64-bit
mode, with a serial console and virtio devices, and measures what that
hardware-level isolation costs next to a container.

Exit status:
  0   success
  1   govmm failed (KVM unusable, images missing, I/O errors)
  2   usage error (bad flags or arguments)
  N   'govmm with-kvm -- CMD': CMD's own exit status`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRunCommand(), newCheckCommand(), newBenchCommand(), newIsolationCommand(), newImagesCommand(), newWithKVMCommand(), newVersionCommand())
	return root
}
