package harness

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestMain runs a test package that needs KVM where KVM works. Call it from
// the package's own TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(harness.TestMain(m)) }
//
// With a usable /dev/kvm the tests run here; without one the same test
// binary, with the same flags, runs again inside the outer guest, its output
// streamed back. It says on stderr which it did and why (`go test -v` shows
// it). A harness failure fails the package: tests that need KVM never pass
// by skipping, unless GOVMM_HARNESS=skip asks for that.
func TestMain(m *testing.M) int {
	flag.Parse()
	if Inside() {
		fmt.Fprintln(os.Stderr, "govmm harness: KVM tests running inside the outer guest (nested KVM)")
		return m.Run()
	}
	plan, err := Detect()
	if err != nil {
		fmt.Fprintf(os.Stderr, "govmm harness: %v\n", err)
		return 1
	}
	switch plan.Mode {
	case Direct:
		fmt.Fprintf(os.Stderr, "govmm harness: KVM tests running directly on /dev/kvm (%s)\n", plan.Reason)
		return m.Run()
	case Skip:
		fmt.Fprintf(os.Stderr, "govmm harness: KVM tests SKIPPED (%s): nothing that needs KVM was tested\n", plan.Reason)
		return 0
	}
	fmt.Fprintf(os.Stderr, "govmm harness: KVM tests running nested, inside an outer QEMU guest (%s)\n", plan.Reason)
	outer, err := DefaultOuter()
	if err != nil {
		fmt.Fprintf(os.Stderr, "govmm harness: %v\n", err)
		return 1
	}
	// The outer guest gets the test binary's own time limit and a margin
	// for booting; go test's -timeout arrives as -test.timeout.
	outer.Timeout = 10*time.Minute + 2*time.Minute
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, err := time.ParseDuration(f.Value.String()); err == nil && d > 0 {
			outer.Timeout = d + 2*time.Minute
		}
	}
	// A test binary may run twice: rerun it if the outer kernel locks up
	// or crashes (a CI run at 6d21b7d lost cmd/govmm to an oops).
	// The longest package (cmd/govmm, some 30 guest boots, each toggling
	// KVM's static keys, which live-patches the outer kernel) runs about
	// six minutes nested and met two lockups in each of two CI runs: six
	// attempts, within make test's -timeout.
	outer.RetryHungJob = true
	outer.BootAttempts = 6
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(os.Stderr, "govmm harness: %v\n", err)
		return 1
	}
	code, err := outer.Run(context.Background(), Command{
		Args:   append([]string{exe}, os.Args[1:]...),
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "govmm harness: %v\n", err)
		return 1
	}
	return code
}
