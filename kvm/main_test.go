package kvm_test

import (
	"os"
	"testing"

	"github.com/govmm/govmm/harness"
)

// TestMain runs this package's tests where KVM works: on /dev/kvm, or inside
// the nested harness's outer guest when this host has none. It lives in the
// external test package because harness imports kvm.
func TestMain(m *testing.M) { os.Exit(harness.TestMain(m)) }
