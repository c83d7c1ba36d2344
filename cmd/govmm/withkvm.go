package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/govmm/govmm/harness"
	"github.com/govmm/govmm/vmmproc"
)

// exitCodeError carries the exit status of a command govmm ran for the
// user, so main exits with it unchanged.
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("command exited with status %d", e.code) }

func newWithKVMCommand() *cobra.Command {
	var timeout time.Duration
	var mode string
	cmd := &cobra.Command{
		Use:   "with-kvm [flags] -- COMMAND [ARGS...]",
		Short: "Run a command where KVM works: here, or nested in an outer QEMU guest",
		Long: `Run COMMAND with a usable /dev/kvm and exit with its status.

Where this host's /dev/kvm works, COMMAND runs here. Where it does not (a
cloud VM or CI runner without nested virtualization), govmm boots an "outer
guest": Debian's stock kernel under QEMU's software CPU emulating an AMD CPU
with SVM, whose KVM works. The host's root file system is shared into it
read-only over 9p, with an in-memory overlay for writes, and COMMAND runs
there as root, its stdout and stderr streamed back. The current directory
is shared read-write, so files COMMAND writes there (reports, charts) reach
this host; writes anywhere else stay in the outer guest and are lost. Expect it to be one to
two orders of magnitude slower than hardware: compare timings only with a
peer run the same way.

Ctrl-C or SIGTERM stops COMMAND (nested: the whole outer guest) and
govmm exits 130. The nested path needs qemu-system-x86 and the images of
'govmm images'.`,
		Example: `  govmm with-kvm -- ls -l /dev/kvm
  govmm with-kvm --mode nested -- ./bin/govmm check`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 0 {
				return usageError{errors.New("put the command after --, as in: govmm with-kvm -- COMMAND")}
			}
			if mode != "" {
				os.Setenv(harness.ModeEnv, mode)
			}
			plan, err := harness.Detect()
			if err != nil {
				return usageError{err}
			}
			ctx, stop := stopOnSignal(cmd.Context())
			defer stop()
			fmt.Fprintf(cmd.ErrOrStderr(), "govmm: running %s: %s\n", args[0], plan)
			switch plan.Mode {
			case harness.Skip:
				return usageError{errors.New("with-kvm cannot skip: choose auto, direct or nested")}
			case harness.Direct:
				c := exec.CommandContext(ctx, args[0], args[1:]...)
				c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
				err := c.Run()
				if ctx.Err() != nil && cmd.Context().Err() == nil {
					return exitCodeError{vmmproc.ExitStopped} // stopped by a signal: COMMAND was killed
				}
				var exitErr *exec.ExitError
				if errors.As(err, &exitErr) {
					return exitCodeError{exitErr.ExitCode()}
				}
				return err
			}
			outer, err := harness.DefaultOuter()
			if err != nil {
				return err
			}
			outer.Timeout = timeout
			code, err := outer.Run(ctx, harness.Command{Args: args, ShareDir: true, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
			if ctx.Err() != nil && cmd.Context().Err() == nil {
				return exitCodeError{vmmproc.ExitStopped} // stopped by a signal: the outer guest was killed
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCodeError{code}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "stop the outer guest after this long (nested only)")
	cmd.Flags().StringVar(&mode, "mode", "", "auto, direct or nested (default $GOVMM_HARNESS, else auto)")
	return cmd
}
