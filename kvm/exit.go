package kvm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ExitReason is a KVM_EXIT_* code from <linux/kvm.h>: why KVM_RUN returned
// to user space (api.rst, section 5, "The kvm_run structure").
type ExitReason uint32

// Exit reasons that can occur on x86. Values are the kernel's KVM_EXIT_*
// numbers.
const (
	ExitUnknown       ExitReason = 0  // KVM_EXIT_UNKNOWN
	ExitException     ExitReason = 1  // KVM_EXIT_EXCEPTION
	ExitIO            ExitReason = 2  // KVM_EXIT_IO
	ExitHypercall     ExitReason = 3  // KVM_EXIT_HYPERCALL
	ExitDebug         ExitReason = 4  // KVM_EXIT_DEBUG
	ExitHLT           ExitReason = 5  // KVM_EXIT_HLT
	ExitMMIO          ExitReason = 6  // KVM_EXIT_MMIO
	ExitIRQWindowOpen ExitReason = 7  // KVM_EXIT_IRQ_WINDOW_OPEN
	ExitShutdown      ExitReason = 8  // KVM_EXIT_SHUTDOWN
	ExitFailEntry     ExitReason = 9  // KVM_EXIT_FAIL_ENTRY
	ExitIntr          ExitReason = 10 // KVM_EXIT_INTR
	ExitSetTPR        ExitReason = 11 // KVM_EXIT_SET_TPR
	ExitTPRAccess     ExitReason = 12 // KVM_EXIT_TPR_ACCESS
	ExitNMI           ExitReason = 16 // KVM_EXIT_NMI
	ExitInternalError ExitReason = 17 // KVM_EXIT_INTERNAL_ERROR
	ExitSystemEvent   ExitReason = 24 // KVM_EXIT_SYSTEM_EVENT
	ExitIOAPICEOI     ExitReason = 26 // KVM_EXIT_IOAPIC_EOI
	ExitHyperV        ExitReason = 27 // KVM_EXIT_HYPERV
	ExitX86RDMSR      ExitReason = 29 // KVM_EXIT_X86_RDMSR
	ExitX86WRMSR      ExitReason = 30 // KVM_EXIT_X86_WRMSR
	ExitDirtyRingFull ExitReason = 31 // KVM_EXIT_DIRTY_RING_FULL
	ExitAPResetHold   ExitReason = 32 // KVM_EXIT_AP_RESET_HOLD
	ExitX86BusLock    ExitReason = 33 // KVM_EXIT_X86_BUS_LOCK
	ExitXen           ExitReason = 34 // KVM_EXIT_XEN
	ExitNotify        ExitReason = 37 // KVM_EXIT_NOTIFY
)

var exitReasonNames = map[ExitReason]string{
	ExitUnknown:       "KVM_EXIT_UNKNOWN",
	ExitException:     "KVM_EXIT_EXCEPTION",
	ExitIO:            "KVM_EXIT_IO",
	ExitHypercall:     "KVM_EXIT_HYPERCALL",
	ExitDebug:         "KVM_EXIT_DEBUG",
	ExitHLT:           "KVM_EXIT_HLT",
	ExitMMIO:          "KVM_EXIT_MMIO",
	ExitIRQWindowOpen: "KVM_EXIT_IRQ_WINDOW_OPEN",
	ExitShutdown:      "KVM_EXIT_SHUTDOWN",
	ExitFailEntry:     "KVM_EXIT_FAIL_ENTRY",
	ExitIntr:          "KVM_EXIT_INTR",
	ExitSetTPR:        "KVM_EXIT_SET_TPR",
	ExitTPRAccess:     "KVM_EXIT_TPR_ACCESS",
	ExitNMI:           "KVM_EXIT_NMI",
	ExitInternalError: "KVM_EXIT_INTERNAL_ERROR",
	ExitSystemEvent:   "KVM_EXIT_SYSTEM_EVENT",
	ExitIOAPICEOI:     "KVM_EXIT_IOAPIC_EOI",
	ExitHyperV:        "KVM_EXIT_HYPERV",
	ExitX86RDMSR:      "KVM_EXIT_X86_RDMSR",
	ExitX86WRMSR:      "KVM_EXIT_X86_WRMSR",
	ExitDirtyRingFull: "KVM_EXIT_DIRTY_RING_FULL",
	ExitAPResetHold:   "KVM_EXIT_AP_RESET_HOLD",
	ExitX86BusLock:    "KVM_EXIT_X86_BUS_LOCK",
	ExitXen:           "KVM_EXIT_XEN",
	ExitNotify:        "KVM_EXIT_NOTIFY",
}

// String returns the kernel's name for r, e.g. "KVM_EXIT_IO", or
// "KVM_EXIT(n)" for a code this package has no name for.
func (r ExitReason) String() string {
	if name, ok := exitReasonNames[r]; ok {
		return name
	}
	return fmt.Sprintf("KVM_EXIT(%d)", uint32(r))
}

// ErrMalformedExit is wrapped by the error [VCPU.Run] returns when the
// kvm_run page describes an exit whose sizes or offsets are impossible (for
// example an I/O data_offset pointing outside the mapping). It means the
// page cannot be trusted, so no Exit is returned.
var ErrMalformedExit = errors.New("malformed kvm_run exit")

// Exit is one decoded return from KVM_RUN. The concrete type says what
// happened; switch on it:
//
//	switch e := exit.(type) {
//	case *kvm.IOExit: ...
//	case *kvm.MMIOExit: ...
//	case kvm.HLTExit: ...
//	}
//
// The set of implementations is closed (the interface has an unexported
// method), so a switch with a default case covers every exit.
type Exit interface {
	// ExitReason returns the KVM_EXIT_* code the exit was decoded from.
	ExitReason() ExitReason
	isExit()
}

// IODirection says whether a port I/O exit reads from the device (In) or
// writes to it (Out); the values are KVM_EXIT_IO_IN and KVM_EXIT_IO_OUT.
type IODirection uint8

// Port I/O directions.
const (
	IOIn  IODirection = 0 // KVM_EXIT_IO_IN: the guest executed IN/INS
	IOOut IODirection = 1 // KVM_EXIT_IO_OUT: the guest executed OUT/OUTS
)

// String returns "in" or "out".
func (d IODirection) String() string {
	switch d {
	case IOIn:
		return "in"
	case IOOut:
		return "out"
	default:
		return fmt.Sprintf("IODirection(%d)", uint8(d))
	}
}

// IOExit is a KVM_EXIT_IO exit: the guest accessed an I/O port that no
// in-kernel device handles (api.rst, section 5, KVM_EXIT_IO).
//
// Data aliases the vCPU's kvm_run mapping and holds Size*Count bytes: Count
// consecutive accesses of Size bytes each (Count > 1 for a REP INS/OUTS).
// For Out, read the bytes the guest wrote from Data. For In, fill Data with
// the bytes the guest will read; KVM copies them into the guest on the next
// [VCPU.Run]. Data is only valid until that next Run.
type IOExit struct {
	Direction IODirection
	// Size is the access width in bytes: 1, 2 or 4.
	Size  uint8
	Port  uint16
	Count uint32
	Data  []byte
}

// MMIOExit is a KVM_EXIT_MMIO exit: the guest accessed guest-physical
// memory that no memory slot or in-kernel device backs (api.rst, section 5,
// KVM_EXIT_MMIO).
//
// Data aliases the vCPU's kvm_run mapping and has the access length (1 to 8
// bytes). For a write, it holds the bytes the guest wrote; for a read, fill
// it before the next [VCPU.Run], which completes the guest's load with it.
type MMIOExit struct {
	Addr    uint64
	Data    []byte
	IsWrite bool
}

// HLTExit is a KVM_EXIT_HLT exit: the guest executed HLT. It only happens
// without an in-kernel irqchip; with one, KVM blocks the vCPU in the kernel
// until an interrupt arrives.
type HLTExit struct{}

// ShutdownExit is a KVM_EXIT_SHUTDOWN exit: the guest hit a triple fault (or
// another condition that shuts an x86 CPU down). The vCPU cannot continue
// without a reset of its state.
type ShutdownExit struct{}

// IntrExit reports that KVM_RUN was interrupted before or while running the
// guest: a signal was pending or immediate_exit was set, so KVM_RUN failed
// with EINTR (or, equivalently, exited with KVM_EXIT_INTR). It is a kick,
// not a failure: the caller checks why it was kicked, clears immediate_exit
// if it set it, and calls Run again. Signals the Go runtime sends to its own
// threads can cause spurious IntrExits, so a loop must tolerate them.
type IntrExit struct{}

// SystemEventType is a KVM_SYSTEM_EVENT_* code from <linux/kvm.h>.
type SystemEventType uint32

// System event types.
const (
	SystemEventShutdown SystemEventType = 1 // KVM_SYSTEM_EVENT_SHUTDOWN
	SystemEventReset    SystemEventType = 2 // KVM_SYSTEM_EVENT_RESET
	SystemEventCrash    SystemEventType = 3 // KVM_SYSTEM_EVENT_CRASH
	SystemEventWakeup   SystemEventType = 4 // KVM_SYSTEM_EVENT_WAKEUP
	SystemEventSuspend  SystemEventType = 5 // KVM_SYSTEM_EVENT_SUSPEND
	SystemEventSEVTerm  SystemEventType = 6 // KVM_SYSTEM_EVENT_SEV_TERM
)

// String returns the kernel's name for t.
func (t SystemEventType) String() string {
	switch t {
	case SystemEventShutdown:
		return "KVM_SYSTEM_EVENT_SHUTDOWN"
	case SystemEventReset:
		return "KVM_SYSTEM_EVENT_RESET"
	case SystemEventCrash:
		return "KVM_SYSTEM_EVENT_CRASH"
	case SystemEventWakeup:
		return "KVM_SYSTEM_EVENT_WAKEUP"
	case SystemEventSuspend:
		return "KVM_SYSTEM_EVENT_SUSPEND"
	case SystemEventSEVTerm:
		return "KVM_SYSTEM_EVENT_SEV_TERM"
	default:
		return fmt.Sprintf("KVM_SYSTEM_EVENT(%d)", uint32(t))
	}
}

// SystemEventExit is a KVM_EXIT_SYSTEM_EVENT exit: the guest asked for a
// shutdown, reset, etc. through a mechanism KVM handles (e.g. PSCI on Arm,
// SEV termination on x86). Data holds the ndata words that kernels with
// KVM_CAP_SYSTEM_EVENT_DATA report; it is a copy.
type SystemEventExit struct {
	Type SystemEventType
	Data []uint64
}

// FailEntryExit is a KVM_EXIT_FAIL_ENTRY exit: the hardware refused to
// enter the guest, usually because the register state is invalid.
// HardwareEntryFailureReason is the vendor-specific reason (VMX exit
// reason, or SVM's exit code).
type FailEntryExit struct {
	HardwareEntryFailureReason uint64
	CPU                        uint32
}

// InternalErrorSuberror is a KVM_INTERNAL_ERROR_* code from <linux/kvm.h>.
type InternalErrorSuberror uint32

// Internal error sub-codes.
const (
	InternalErrorEmulation            InternalErrorSuberror = 1 // KVM_INTERNAL_ERROR_EMULATION
	InternalErrorSimulEx              InternalErrorSuberror = 2 // KVM_INTERNAL_ERROR_SIMUL_EX
	InternalErrorDeliveryEv           InternalErrorSuberror = 3 // KVM_INTERNAL_ERROR_DELIVERY_EV
	InternalErrorUnexpectedExitReason InternalErrorSuberror = 4 // KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON
)

// String returns the kernel's name for s.
func (s InternalErrorSuberror) String() string {
	switch s {
	case InternalErrorEmulation:
		return "KVM_INTERNAL_ERROR_EMULATION"
	case InternalErrorSimulEx:
		return "KVM_INTERNAL_ERROR_SIMUL_EX"
	case InternalErrorDeliveryEv:
		return "KVM_INTERNAL_ERROR_DELIVERY_EV"
	case InternalErrorUnexpectedExitReason:
		return "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON"
	default:
		return fmt.Sprintf("KVM_INTERNAL_ERROR(%d)", uint32(s))
	}
}

// InternalErrorExit is a KVM_EXIT_INTERNAL_ERROR exit: KVM could not
// handle something, typically an instruction its emulator does not
// support. Data is a copy of the ndata diagnostic words.
type InternalErrorExit struct {
	Suberror InternalErrorSuberror
	Data     []uint64
}

// UnknownExit is any exit this package does not decode further, including
// KVM_EXIT_UNKNOWN itself. HardwareExitReason is only meaningful when
// Reason is ExitUnknown, where it carries the vendor exit code.
type UnknownExit struct {
	Reason             ExitReason
	HardwareExitReason uint64
}

func (*IOExit) ExitReason() ExitReason            { return ExitIO }
func (*MMIOExit) ExitReason() ExitReason          { return ExitMMIO }
func (HLTExit) ExitReason() ExitReason            { return ExitHLT }
func (ShutdownExit) ExitReason() ExitReason       { return ExitShutdown }
func (IntrExit) ExitReason() ExitReason           { return ExitIntr }
func (*SystemEventExit) ExitReason() ExitReason   { return ExitSystemEvent }
func (*FailEntryExit) ExitReason() ExitReason     { return ExitFailEntry }
func (*InternalErrorExit) ExitReason() ExitReason { return ExitInternalError }
func (e *UnknownExit) ExitReason() ExitReason     { return e.Reason }

func (*IOExit) isExit()            {}
func (*MMIOExit) isExit()          {}
func (HLTExit) isExit()            {}
func (ShutdownExit) isExit()       {}
func (IntrExit) isExit()           {}
func (*SystemEventExit) isExit()   {}
func (*FailEntryExit) isExit()     {}
func (*InternalErrorExit) isExit() {}
func (*UnknownExit) isExit()       {}

// Offsets into struct kvm_run, from <linux/kvm.h> and api.rst section 5
// ("The kvm_run structure"); checked against a C compiler's offsetof.
const (
	runOffRequestInterruptWindow = 0  // __u8 request_interrupt_window
	runOffImmediateExit          = 1  // __u8 immediate_exit
	runOffExitReason             = 8  // __u32 exit_reason
	runOffExitUnion              = 32 // start of the per-reason union
	runExitUnionSize             = 256

	// KVM_EXIT_UNKNOWN: struct { __u64 hardware_exit_reason; } hw
	runOffHWHardwareExitReason = 32

	// KVM_EXIT_FAIL_ENTRY: struct { __u64 hardware_entry_failure_reason; __u32 cpu; }
	runOffFailEntryReason = 32
	runOffFailEntryCPU    = 40

	// KVM_EXIT_IO: struct { __u8 direction; __u8 size; __u16 port;
	// __u32 count; __u64 data_offset; }
	runOffIODirection  = 32
	runOffIOSize       = 33
	runOffIOPort       = 34
	runOffIOCount      = 36
	runOffIODataOffset = 40

	// KVM_EXIT_MMIO: struct { __u64 phys_addr; __u8 data[8]; __u32 len;
	// __u8 is_write; }
	runOffMMIOPhysAddr = 32
	runOffMMIOData     = 40
	runOffMMIOLen      = 48
	runOffMMIOIsWrite  = 52
	runMMIODataMax     = 8

	// KVM_EXIT_INTERNAL_ERROR: struct { __u32 suberror; __u32 ndata;
	// __u64 data[16]; }
	runOffInternalSuberror = 32
	runOffInternalNData    = 36
	runOffInternalData     = 40

	// KVM_EXIT_SYSTEM_EVENT: struct { __u32 type; __u32 ndata;
	// __u64 data[16]; }
	runOffSystemEventType  = 32
	runOffSystemEventNData = 36
	runOffSystemEventData  = 40

	// Both data arrays above hold at most 16 words.
	runMaxNData = 16

	// sizeofRun is sizeof(struct kvm_run): the header, the exit union, the
	// valid/dirty register masks and the 2 KiB synchronized-register area.
	// Port I/O data lives beyond it (at data_offset, one page in).
	sizeofRun = 2352
)

var nativeEndian = binary.NativeEndian

// decodeExit decodes the kvm_run mapping page after KVM_RUN returned
// success. It never indexes outside page: every offset and length the
// kernel supplies is checked first, and an impossible one yields an error
// wrapping ErrMalformedExit.
func decodeExit(page []byte) (Exit, error) {
	if len(page) < sizeofRun {
		return nil, fmt.Errorf("kvm_run mapping is %d bytes, smaller than struct kvm_run (%d bytes): %w",
			len(page), sizeofRun, ErrMalformedExit)
	}
	reason := ExitReason(nativeEndian.Uint32(page[runOffExitReason:]))
	switch reason {
	case ExitIO:
		return decodeIO(page)
	case ExitMMIO:
		return decodeMMIO(page)
	case ExitHLT:
		return HLTExit{}, nil
	case ExitShutdown:
		return ShutdownExit{}, nil
	case ExitIntr:
		return IntrExit{}, nil
	case ExitFailEntry:
		return &FailEntryExit{
			HardwareEntryFailureReason: nativeEndian.Uint64(page[runOffFailEntryReason:]),
			CPU:                        nativeEndian.Uint32(page[runOffFailEntryCPU:]),
		}, nil
	case ExitInternalError:
		data, err := decodeNData(page, runOffInternalNData, runOffInternalData)
		if err != nil {
			return nil, fmt.Errorf("decode %v: %w", reason, err)
		}
		return &InternalErrorExit{
			Suberror: InternalErrorSuberror(nativeEndian.Uint32(page[runOffInternalSuberror:])),
			Data:     data,
		}, nil
	case ExitSystemEvent:
		data, err := decodeNData(page, runOffSystemEventNData, runOffSystemEventData)
		if err != nil {
			return nil, fmt.Errorf("decode %v: %w", reason, err)
		}
		return &SystemEventExit{
			Type: SystemEventType(nativeEndian.Uint32(page[runOffSystemEventType:])),
			Data: data,
		}, nil
	default:
		return &UnknownExit{
			Reason:             reason,
			HardwareExitReason: nativeEndian.Uint64(page[runOffHWHardwareExitReason:]),
		}, nil
	}
}

func decodeIO(page []byte) (*IOExit, error) {
	e := &IOExit{
		Direction: IODirection(page[runOffIODirection]),
		Size:      page[runOffIOSize],
		Port:      nativeEndian.Uint16(page[runOffIOPort:]),
		Count:     nativeEndian.Uint32(page[runOffIOCount:]),
	}
	dataOffset := nativeEndian.Uint64(page[runOffIODataOffset:])
	switch {
	case e.Direction != IOIn && e.Direction != IOOut:
		return nil, fmt.Errorf("decode %v on port %#x: direction %d is neither in nor out: %w",
			ExitIO, e.Port, e.Direction, ErrMalformedExit)
	case e.Size != 1 && e.Size != 2 && e.Size != 4:
		return nil, fmt.Errorf("decode %v on port %#x: access size %d is not 1, 2 or 4: %w",
			ExitIO, e.Port, e.Size, ErrMalformedExit)
	case e.Count == 0:
		return nil, fmt.Errorf("decode %v on port %#x: count is zero: %w", ExitIO, e.Port, ErrMalformedExit)
	}
	// Size <= 4 and Count < 2^32, so n cannot overflow a uint64.
	n := uint64(e.Size) * uint64(e.Count)
	// The data must lie beyond struct kvm_run itself (so filling it for an
	// IN cannot clobber the control fields) and inside the mapping; the
	// comparison is arranged so that it cannot overflow.
	pageLen := uint64(len(page))
	if dataOffset < sizeofRun || dataOffset > pageLen || n > pageLen-dataOffset {
		return nil, fmt.Errorf("decode %v on port %#x: data at offset %#x, %d bytes, is outside %#x..%#x of the kvm_run mapping: %w",
			ExitIO, e.Port, dataOffset, n, sizeofRun, pageLen, ErrMalformedExit)
	}
	e.Data = page[dataOffset : dataOffset+n : dataOffset+n]
	return e, nil
}

func decodeMMIO(page []byte) (*MMIOExit, error) {
	addr := nativeEndian.Uint64(page[runOffMMIOPhysAddr:])
	n := nativeEndian.Uint32(page[runOffMMIOLen:])
	if n == 0 || n > runMMIODataMax {
		return nil, fmt.Errorf("decode %v at %#x: length %d is not 1..%d: %w",
			ExitMMIO, addr, n, runMMIODataMax, ErrMalformedExit)
	}
	end := runOffMMIOData + int(n)
	return &MMIOExit{
		Addr:    addr,
		Data:    page[runOffMMIOData:end:end],
		IsWrite: page[runOffMMIOIsWrite] != 0,
	}, nil
}

// decodeNData copies the ndata-long array of u64 words shared by the
// internal-error and system-event layouts.
func decodeNData(page []byte, nDataOff, dataOff int) ([]uint64, error) {
	n := nativeEndian.Uint32(page[nDataOff:])
	if n > runMaxNData {
		return nil, fmt.Errorf("ndata %d exceeds %d: %w", n, runMaxNData, ErrMalformedExit)
	}
	data := make([]uint64, n)
	for i := range data {
		data[i] = nativeEndian.Uint64(page[dataOff+8*i:])
	}
	return data, nil
}
