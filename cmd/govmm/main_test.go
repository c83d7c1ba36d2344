package main

import (
	"os"
	"testing"

	"github.com/govmm/govmm/harness"
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
	os.Exit(harness.TestMain(m))
}
