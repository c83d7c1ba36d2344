package vcpu

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/kvm"
)

// PIO receives the guest's port I/O. Reads fill data; neither may fail: a
// guest mistake is the device's to count, never the loop's to stop on.
type PIO interface {
	ReadPIO(port uint16, data []byte)
	WritePIO(port uint16, data []byte)
}

// MMIO receives the guest's memory-mapped I/O, like PIO.
type MMIO interface {
	ReadMMIO(addr uint64, data []byte)
	WriteMMIO(addr uint64, data []byte)
}

// CPU is the part of *kvm.VCPU the loop uses; tests drive the loop with
// scripted exits through it.
type CPU interface {
	ID() int
	Run() (kvm.Exit, error)
	SetImmediateExit(bool)
	GetRegs() (kvm.Regs, error)
	GetSregs() (kvm.Sregs, error)
}

// Stop says why a vCPU stopped running guest code.
type Stop int

const (
	StopKicked   Stop = iota // the VMM asked (Kick)
	StopHalted               // HLT reached userspace (only without an in-kernel LAPIC)
	StopReset                // a reset system event
	StopPowerOff             // a shutdown system event (e.g. PSCI-style power off)
	StopCrash                // a crash system event
	// StopTripleFault is KVM_EXIT_SHUTDOWN: a reset, as on hardware.
	// Linux triple-faults on purpose with reboot=t, and as the last
	// fallback of its other reboot methods; otherwise it is a guest
	// crashing too hard to print anything.
	StopTripleFault
)

func (s Stop) String() string {
	switch s {
	case StopKicked:
		return "kicked"
	case StopHalted:
		return "halted"
	case StopReset:
		return "reset"
	case StopPowerOff:
		return "power off"
	case StopCrash:
		return "crash"
	case StopTripleFault:
		return "triple fault"
	}
	return fmt.Sprintf("Stop(%d)", int(s))
}

// kickSignal interrupts a vCPU thread blocked in KVM_RUN. The Go runtime
// already handles SIGURG (it preempts goroutines with it), so sending it
// needs no handler of ours and can never kill the process; KVM_RUN returns
// EINTR when any signal is pending.
const kickSignal = unix.SIGURG

// Runner runs one vCPU.
type Runner struct {
	cpu  CPU
	pio  PIO
	mmio MMIO

	stop atomic.Bool  // set by Kick; read by the loop before each KVM_RUN
	tid  atomic.Int32 // the OS thread running the loop, 0 when none

	exits ExitCounts // written only by the loop
}

// ExitCounts counts the exits a vCPU took, by kind: each is a round trip
// through govmm, the cost that matters most when the VMM itself runs on a
// software CPU.
type ExitCounts struct {
	IO, MMIO, Interrupted, Other uint64
}

// NewRunner returns a runner that sends cpu's I/O exits to pio and mmio.
func NewRunner(cpu CPU, pio PIO, mmio MMIO) *Runner {
	return &Runner{cpu: cpu, pio: pio, mmio: mmio}
}

// Run runs guest code until the vCPU stops; call it on its own goroutine.
// It returns why it stopped, or an error for exits that mean KVM or the
// guest state is broken (failed entry, internal error, unknown exit), with
// a register dump.
func (r *Runner) Run() (Stop, error) {
	// Pinned, so that the thread Kick signals is the one blocked in KVM_RUN
	// for this vCPU (and KVM keeps its per-thread state warm).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	r.tid.Store(int32(unix.Gettid()))
	defer r.tid.Store(0)
	for {
		if r.stop.Load() {
			return StopKicked, nil
		}
		exit, err := r.cpu.Run()
		if err != nil {
			return 0, fmt.Errorf("vcpu %d: %w", r.cpu.ID(), err)
		}
		if stop, done, err := r.dispatch(exit); done || err != nil {
			return stop, err
		}
	}
}

// Exits returns the exits the vCPU took; call it only once Run has
// returned.
func (r *Runner) Exits() ExitCounts { return r.exits }

// dispatch handles one exit; done says the loop ends.
func (r *Runner) dispatch(exit kvm.Exit) (stop Stop, done bool, err error) {
	switch exit.(type) {
	case *kvm.IOExit:
		r.exits.IO++
	case *kvm.MMIOExit:
		r.exits.MMIO++
	case kvm.IntrExit:
		r.exits.Interrupted++
	default:
		r.exits.Other++
	}
	switch e := exit.(type) {
	case *kvm.IOExit:
		// String I/O (rep ins/outs) arrives as Count items of Size bytes;
		// each goes to the device in turn, as the CPU would issue them.
		size := int(e.Size)
		for i := 0; i < int(e.Count); i++ {
			item := e.Data[i*size : (i+1)*size]
			if e.Direction == kvm.IOIn {
				r.pio.ReadPIO(e.Port, item)
			} else {
				r.pio.WritePIO(e.Port, item)
			}
		}
	case *kvm.MMIOExit:
		if e.IsWrite {
			r.mmio.WriteMMIO(e.Addr, e.Data)
		} else {
			r.mmio.ReadMMIO(e.Addr, e.Data)
		}
	case kvm.IntrExit:
		// A kick, or a signal the Go runtime sent the thread: not an
		// error and not a retry; the loop checks the stop flag first.
	case kvm.HLTExit:
		return StopHalted, true, nil
	case kvm.ShutdownExit:
		return StopTripleFault, true, nil
	case *kvm.SystemEventExit:
		switch e.Type {
		case kvm.SystemEventShutdown:
			return StopPowerOff, true, nil
		case kvm.SystemEventReset:
			return StopReset, true, nil
		case kvm.SystemEventCrash:
			return StopCrash, true, nil
		}
		return 0, true, fmt.Errorf("vcpu %d: unexpected system event %v%s", r.cpu.ID(), e.Type, r.dump())
	case *kvm.FailEntryExit:
		return 0, true, fmt.Errorf("vcpu %d: KVM could not enter the guest (hardware entry failure reason %#x)%s",
			r.cpu.ID(), e.HardwareEntryFailureReason, r.dump())
	case *kvm.InternalErrorExit:
		return 0, true, fmt.Errorf("vcpu %d: KVM internal error %v (data %#x)%s", r.cpu.ID(), e.Suberror, e.Data, r.dump())
	default:
		return 0, true, fmt.Errorf("vcpu %d: unhandled exit %v%s", r.cpu.ID(), exit.ExitReason(), r.dump())
	}
	return 0, false, nil
}

// Kick makes Run return StopKicked soon: at once if the vCPU is in guest
// mode, before entering it otherwise. Safe from any goroutine, any number
// of times.
func (r *Runner) Kick() {
	r.stop.Store(true)
	// immediate_exit covers the window between the loop's flag check and
	// KVM_RUN; the signal covers a vCPU already in guest mode.
	r.cpu.SetImmediateExit(true)
	if tid := r.tid.Load(); tid != 0 {
		// ESRCH: the loop has just ended. Any other failure still leaves
		// immediate_exit to stop the vCPU at its next exit.
		if err := unix.Tgkill(unix.Getpid(), int(tid), kickSignal); err != nil && !errors.Is(err, unix.ESRCH) {
			slog.Warn("kick vcpu", "vcpu", r.cpu.ID(), "err", err)
		}
	}
}

// Registers formats the vCPU's registers, for a report of how the guest
// ended. Call it only once Run has returned. After a triple fault on AMD,
// KVM has already put the vCPU back in its reset state (the VMCB is
// undefined after a SHUTDOWN intercept), so the state at the fault is gone;
// it says so rather than print the reset vector as if it were the culprit.
func (r *Runner) Registers() string {
	regs, rerr := r.cpu.GetRegs()
	sregs, serr := r.cpu.GetSregs()
	if rerr == nil && serr == nil && regs.RIP == resetRIP && sregs.CS.Base == resetCSBase {
		return "unavailable: KVM has already reset the vCPU (as it does on AMD after a triple fault)"
	}
	return strings.TrimPrefix(r.dump(), "\n")
}

// The architectural reset state's instruction pointer: CS base 0xffff0000
// plus IP 0xfff0 (Intel SDM vol. 3, 9.1.4; AMD APM vol. 2, 14.1.3).
const (
	resetRIP    = 0xfff0
	resetCSBase = 0xffff0000
)

// dump formats the vCPU's registers for an error message.
func (r *Runner) dump() string {
	regs, err := r.cpu.GetRegs()
	if err != nil {
		return fmt.Sprintf("\n(registers unavailable: %v)", err)
	}
	sregs, err := r.cpu.GetSregs()
	if err != nil {
		return fmt.Sprintf("\n(special registers unavailable: %v)", err)
	}
	return fmt.Sprintf("\nrip=%#016x rsp=%#016x rflags=%#x\nrax=%#016x rbx=%#016x rcx=%#016x rdx=%#016x\n"+
		"rsi=%#016x rdi=%#016x rbp=%#016x\ncr0=%#x cr2=%#x cr3=%#x cr4=%#x efer=%#x\ncs=%#x (base %#x, l=%d) ss=%#x",
		regs.RIP, regs.RSP, regs.RFLAGS, regs.RAX, regs.RBX, regs.RCX, regs.RDX, regs.RSI, regs.RDI, regs.RBP,
		sregs.CR0, sregs.CR2, sregs.CR3, sregs.CR4, sregs.EFER, sregs.CS.Selector, sregs.CS.Base, sregs.CS.L, sregs.SS.Selector)
}
