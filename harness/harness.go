package harness

import (
	"errors"
	"fmt"
	"os"

	"github.com/govmm/govmm/harness/job"
	"github.com/govmm/govmm/kvm"
)

// Mode says where KVM work runs.
type Mode string

const (
	Direct Mode = "direct" // on this host's /dev/kvm
	Nested Mode = "nested" // inside the outer guest
	Skip   Mode = "skip"   // not at all (only when asked for)
)

// ModeEnv names the environment variable that forces a mode: auto (the
// default), direct, nested or skip.
const ModeEnv = "GOVMM_HARNESS"

// Plan is the mode chosen for this host and why.
type Plan struct {
	Mode   Mode
	Reason string
}

func (p Plan) String() string { return fmt.Sprintf("%s (%s)", p.Mode, p.Reason) }

// Inside reports whether this process runs inside the outer guest.
func Inside() bool { return os.Getenv(job.InsideEnv) != "" }

// Detect decides where KVM work runs: $GOVMM_HARNESS when set, else directly
// when /dev/kvm is usable, else nested.
func Detect() (Plan, error) {
	return decide(os.Getenv(ModeEnv), probeKVM)
}

func decide(env string, probe func() error) (Plan, error) {
	switch env {
	case "", "auto":
		if err := probe(); err != nil {
			return Plan{Mode: Nested, Reason: "no usable /dev/kvm here: " + firstLine(err.Error())}, nil
		}
		return Plan{Mode: Direct, Reason: "/dev/kvm is usable"}, nil
	case string(Direct):
		if err := probe(); err != nil {
			return Plan{}, fmt.Errorf("%s=direct, but KVM is not usable here: %w", ModeEnv, err)
		}
		return Plan{Mode: Direct, Reason: ModeEnv + "=direct"}, nil
	case string(Nested):
		return Plan{Mode: Nested, Reason: ModeEnv + "=nested"}, nil
	case string(Skip):
		return Plan{Mode: Skip, Reason: ModeEnv + "=skip"}, nil
	default:
		return Plan{}, fmt.Errorf("%s=%q: want auto, direct, nested or skip", ModeEnv, env)
	}
}

// probeKVM opens /dev/kvm and checks its API version, as govmm itself will,
// and that it can boot stock kernels (PVM-backed KVM cannot).
func probeKVM() error {
	sys, err := kvm.Open(kvm.DevicePath)
	if err != nil {
		return err
	}
	if err := sys.Close(); err != nil {
		return err
	}
	return kvm.CheckStockGuests(kvm.DevicePath, kvm.GatherHostFacts(os.DirFS("/")))
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

var errNoStatus = errors.New("outer guest ended without reporting a status")
