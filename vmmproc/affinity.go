package vmmproc

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/internal/threadsched"
)

// CPUsEnv, when set, is a list of host CPUs ("1", "0,2", "0-3") the VMM
// process runs on, all its threads, as under taskset(1). Inside the nested
// harness, a VMM whose threads spread over several of the outer guest's
// CPUs now and then loses its guest to a triple fault or a hang, and kept
// on one CPU it has not (README, "No /dev/kvm?").
const CPUsEnv = "GOVMM_VMM_CPUS"

// parseCPUList parses a CPU list such as "0-2,5".
func parseCPUList(s string) (unix.CPUSet, error) {
	var set unix.CPUSet
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			return set, fmt.Errorf("CPU list %q: %q is not a CPU number", s, lo)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return set, fmt.Errorf("CPU list %q: bad range %q", s, part)
			}
		}
		if last >= len(set)*64 {
			return set, fmt.Errorf("CPU list %q: CPU %d is beyond the %d this can name", s, last, len(set)*64)
		}
		for c := first; c <= last; c++ {
			set.Set(c)
		}
	}
	return set, nil
}

// PinFromEnv confines this process, every thread of it, to the CPUs of
// $GOVMM_VMM_CPUS, if set. It locks the calling goroutine to its thread and
// pins that thread first: threads started later inherit the affinity of
// the thread that starts them, and a process exec'd from here that of the
// exec'ing thread, so call Exec from the same goroutine. The other threads
// are pinned as threadsched.EachThread finds them (one may start from an
// unpinned thread meanwhile).
func PinFromEnv() error {
	list := os.Getenv(CPUsEnv)
	if list == "" {
		return nil
	}
	set, err := parseCPUList(list)
	if err != nil {
		return fmt.Errorf("$%s: %w", CPUsEnv, err)
	}
	runtime.LockOSThread()
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("$%s=%s: %w", CPUsEnv, list, err)
	}
	err = threadsched.EachThread(func(tid int) error { return unix.SchedSetaffinity(tid, &set) })
	if err != nil {
		return fmt.Errorf("$%s=%s: %w", CPUsEnv, list, err)
	}
	return nil
}
