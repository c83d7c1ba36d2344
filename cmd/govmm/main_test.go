package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/govmm/govmm/harness"
	"github.com/govmm/govmm/vmmproc"
)

// asGovmmEnv makes the test binary act as the govmm command, so end-to-end
// tests run the real CLI (flags, exit codes) without a separate build, and
// inside the nested harness's outer guest too.
const asGovmmEnv = "GOVMM_TEST_AS_GOVMM"

// TestMain runs this package's tests where KVM works (directly, or inside
// the nested harness's outer guest); the end-to-end tests boot real guests.
func TestMain(m *testing.M) {
	if os.Getenv(asGovmmEnv) == "1" {
		main()
		return
	}
	if os.Getenv(asNetPeerEnv) == "1" {
		netPeerMain()
		return
	}
	// `govmm run` execs govmm-vmm from beside govmm; this test binary has
	// none beside it, so build one and point $GOVMM_VMM at it (inside the
	// nested harness the host's /tmp is visible, and the environment
	// passes on).
	if os.Getenv(vmmproc.PathEnv) == "" && !harness.Inside() && os.Getenv(harness.ModeEnv) != "skip" {
		dir, err := os.MkdirTemp("", "govmm-vmm-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		path := filepath.Join(dir, vmmproc.ExecutableName)
		build := exec.Command("go", "build", "-o", path, "github.com/govmm/govmm/cmd/govmm-vmm")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", vmmproc.ExecutableName, err, out)
			os.Exit(1)
		}
		os.Setenv(vmmproc.PathEnv, path)
		code := harness.TestMain(m)
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(harness.TestMain(m))
}
