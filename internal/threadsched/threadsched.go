// Package threadsched sets the Linux scheduling policy of the VMM's threads
// (sched(7)): the vCPU threads run as SCHED_NORMAL and, by default, every
// other thread of the VMM process (device workers, the Go runtime's) as
// SCHED_BATCH.
//
// Why: the fair scheduler lets a task that wakes up preempt the task
// running on the CPU it lands on, and a device worker wakes for every
// notification and every frame the tap has ready. When it lands on the CPU
// of a running vCPU, the guest is thrown out of guest mode for a context
// switch and back, which under nested virtualization costs far more than
// the worker's own work. A SCHED_BATCH task never preempts on wakeup
// (kernel/sched/fair.c, check_preempt_wakeup): it runs on an idle CPU at
// once, and on a busy one when the running task's slice ends. Measured in
// the nested harness (README, "Disk and network"), TCP through virtio-net
// moved 27% more data a second into the guest and 83% more out of it, and
// the guest's steal time during uploads fell from a quarter to a sixth.
//
// The cost: on a host whose CPUs are all busy, a device worker can wait up
// to a scheduler tick before it runs. GOVMM_VMM_SCHED=normal keeps every
// thread SCHED_NORMAL.
package threadsched

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Policy is a Linux scheduling policy.
type Policy uint32

const (
	Normal Policy = unix.SCHED_NORMAL // SCHED_NORMAL (SCHED_OTHER)
	Batch  Policy = unix.SCHED_BATCH  // SCHED_BATCH: no preemption on wakeup
)

func (p Policy) String() string {
	switch p {
	case Normal:
		return "SCHED_NORMAL"
	case Batch:
		return "SCHED_BATCH"
	}
	return fmt.Sprintf("policy %d", uint32(p))
}

// Env chooses the policy of the VMM's threads other than the vCPUs':
// "batch" (the default) or "normal".
const Env = "GOVMM_VMM_SCHED"

// FromEnv returns the policy $GOVMM_VMM_SCHED names: Batch when it is unset
// or empty.
func FromEnv() (Policy, error) {
	switch v := os.Getenv(Env); v {
	case "", "batch":
		return Batch, nil
	case "normal":
		return Normal, nil
	default:
		return 0, fmt.Errorf("$%s=%q: want batch or normal", Env, v)
	}
}

// Get returns the policy of thread tid (0: the calling thread).
func Get(tid int) (Policy, error) {
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return 0, fmt.Errorf("sched_getattr thread %d: %w", tid, err)
	}
	return Policy(a.Policy), nil
}

// Set gives thread tid (0: the calling thread) policy p, at its present
// nice value. Moving between SCHED_NORMAL and SCHED_BATCH needs no
// privilege.
func Set(tid int, p Policy) error {
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return fmt.Errorf("sched_getattr thread %d: %w", tid, err)
	}
	a.Size = unix.SizeofSchedAttr
	a.Policy = uint32(p)
	if err := unix.SchedSetAttr(tid, a, 0); err != nil {
		return fmt.Errorf("set thread %d to %s: %w", tid, p, err)
	}
	return nil
}

// SetAll gives every thread of this process policy p. Threads started later
// inherit the policy of the thread that starts them (the Go runtime starts
// threads for locked ones, such as the vCPUs', from a thread of its own).
func SetAll(p Policy) error {
	return EachThread(func(tid int) error { return Set(tid, p) })
}

// EachThread calls apply once for every thread of this process, and again
// for threads started meanwhile, until a pass over /proc/self/task finds
// none it has not seen: for settings a new thread inherits from the one
// that starts it (scheduling policy, CPU affinity), that is every thread.
// An error for a thread that has exited meanwhile is no error.
func EachThread(apply func(tid int) error) error {
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		found := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			found, done[tid] = true, true
			if err := apply(tid); err != nil {
				if _, statErr := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); os.IsNotExist(statErr) {
					continue
				}
				return err
			}
		}
		if !found {
			return nil
		}
	}
}
