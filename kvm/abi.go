package kvm

// Sizes of the kernel structures, in bytes, as a C compiler lays them out
// for x86-64. They feed the ioctl request numbers (ioctl.go) and are pinned
// to the Go mirrors in both directions at compile time (sizes_unsafe.go).
const (
	sizeofUint64                = 8
	sizeofRegs                  = 144
	sizeofSegment               = 24
	sizeofDTable                = 16
	sizeofSregs                 = 312
	sizeofFPU                   = 416
	sizeofLAPICState            = 1024
	sizeofUserspaceMemoryRegion = 32
	sizeofCPUIDEntry2           = 40
	sizeofCPUID2                = 8
	sizeofMSREntry              = 16
	sizeofMSRs                  = 8
	sizeofMSRList               = 4
	sizeofPITConfig             = 64
	sizeofIRQLevel              = 8
	sizeofIOEventFD             = 64
	sizeofIRQFD                 = 32
	sizeofIRQRoutingEntry       = 48
	sizeofIRQRouting            = 8
)

// Regs mirrors struct kvm_regs from arch/x86/include/uapi/asm/kvm.h, the
// general-purpose register file read and written by KVM_GET_REGS and
// KVM_SET_REGS (api.rst, sections "KVM_GET_REGS" and "KVM_SET_REGS").
type Regs struct {
	RAX, RBX, RCX, RDX uint64
	RSI, RDI, RSP, RBP uint64
	R8, R9, R10, R11   uint64
	R12, R13, R14, R15 uint64
	RIP, RFLAGS        uint64
}

// Segment mirrors struct kvm_segment from arch/x86/include/uapi/asm/kvm.h: a
// segment register with its hidden descriptor cache unpacked into fields.
type Segment struct {
	Base     uint64
	Limit    uint32
	Selector uint16
	// Type is the 4-bit descriptor type (e.g. 0xb for an accessed
	// execute/read code segment, 0x3 for an accessed read/write data one).
	Type    uint8
	Present uint8
	DPL     uint8
	DB      uint8
	S       uint8
	L       uint8
	G       uint8
	AVL     uint8
	// Unusable marks a null or otherwise unusable selector (VMX's
	// "segment unusable" bit).
	Unusable uint8
	Padding  uint8
}

// DTable mirrors struct kvm_dtable from arch/x86/include/uapi/asm/kvm.h: the
// GDTR or IDTR register.
type DTable struct {
	Base    uint64
	Limit   uint16
	Padding [3]uint16
}

// Sregs mirrors struct kvm_sregs from arch/x86/include/uapi/asm/kvm.h, the
// special registers read and written by KVM_GET_SREGS and KVM_SET_SREGS
// (api.rst, sections "KVM_GET_SREGS" and "KVM_SET_SREGS").
type Sregs struct {
	CS, DS, ES, FS, GS, SS Segment
	TR, LDT                Segment
	GDT, IDT               DTable
	CR0, CR2, CR3, CR4     uint64
	CR8                    uint64
	EFER                   uint64
	APICBase               uint64
	// InterruptBitmap has one bit per pending external interrupt vector
	// (KVM_NR_INTERRUPTS = 256 bits). At most one bit may be set.
	InterruptBitmap [4]uint64
}

// FPU mirrors struct kvm_fpu from arch/x86/include/uapi/asm/kvm.h, the x87
// and SSE state read and written by KVM_GET_FPU and KVM_SET_FPU (api.rst,
// sections "KVM_GET_FPU" and "KVM_SET_FPU").
type FPU struct {
	FPR        [8][16]uint8
	FCW        uint16
	FSW        uint16
	FTWX       uint8
	Pad1       uint8
	LastOpcode uint16
	LastIP     uint64
	LastDP     uint64
	XMM        [16][16]uint8
	MXCSR      uint32
	Pad2       uint32
}

// LAPICState mirrors struct kvm_lapic_state from
// arch/x86/include/uapi/asm/kvm.h: the in-kernel local APIC's 1 KiB register
// page, read and written by KVM_GET_LAPIC and KVM_SET_LAPIC (api.rst,
// sections "KVM_GET_LAPIC" and "KVM_SET_LAPIC"). Registers sit at their
// architectural MMIO offsets, e.g. LVT LINT0 at 0x350.
type LAPICState struct {
	Regs [1024]uint8
}

// UserspaceMemoryRegion mirrors struct kvm_userspace_memory_region, the
// argument of KVM_SET_USER_MEMORY_REGION (api.rst, section
// "KVM_SET_USER_MEMORY_REGION").
type UserspaceMemoryRegion struct {
	Slot          uint32
	Flags         uint32
	GuestPhysAddr uint64
	// MemorySize is in bytes; zero deletes the slot.
	MemorySize    uint64
	UserspaceAddr uint64
}

// CPUIDEntry2 mirrors struct kvm_cpuid_entry2 from
// arch/x86/include/uapi/asm/kvm.h, one CPUID leaf as returned by
// KVM_GET_SUPPORTED_CPUID and set by KVM_SET_CPUID2 (api.rst, sections
// "KVM_GET_SUPPORTED_CPUID" and "KVM_SET_CPUID2").
type CPUIDEntry2 struct {
	Function uint32
	Index    uint32
	// Flags holds CPUIDFlagSignificantIndex when Index selects a sub-leaf.
	Flags   uint32
	EAX     uint32
	EBX     uint32
	ECX     uint32
	EDX     uint32
	Padding [3]uint32
}

// cpuid2Header mirrors the fixed part of struct kvm_cpuid2; the entries
// follow it as a flexible array member, so the whole structure is marshalled
// into a byte buffer (see cpuid.go).
type cpuid2Header struct {
	Nent    uint32
	Padding uint32
}

// MSREntry mirrors struct kvm_msr_entry from
// arch/x86/include/uapi/asm/kvm.h: one model-specific register for
// KVM_GET_MSRS and KVM_SET_MSRS (api.rst, sections "KVM_GET_MSRS" and
// "KVM_SET_MSRS").
type MSREntry struct {
	Index    uint32
	Reserved uint32
	Data     uint64
}

// msrsHeader mirrors the fixed part of struct kvm_msrs; MSREntry values
// follow it as a flexible array member.
type msrsHeader struct {
	NMSRs uint32
	Pad   uint32
}

// msrListHeader mirrors the fixed part of struct kvm_msr_list; uint32 MSR
// indices follow it as a flexible array member.
type msrListHeader struct {
	NMSRs uint32
}

// PITConfig mirrors struct kvm_pit_config, the argument of KVM_CREATE_PIT2
// (api.rst, section "KVM_CREATE_PIT2").
type PITConfig struct {
	// Flags may hold PITSpeakerDummy.
	Flags uint32
	Pad   [15]uint32
}

// IRQLevel mirrors struct kvm_irq_level, the argument of KVM_IRQ_LINE
// (api.rst, section "KVM_IRQ_LINE"). The kernel declares the first field as
// a union of irq (input) and status (output of KVM_IRQ_LINE_STATUS).
type IRQLevel struct {
	IRQ   uint32
	Level uint32
}

// IOEventFD mirrors struct kvm_ioeventfd, the argument of KVM_IOEVENTFD
// (api.rst, section "KVM_IOEVENTFD"): guest writes to Addr signal the
// eventfd FD without an exit to user space.
type IOEventFD struct {
	Datamatch uint64
	Addr      uint64
	// Len is the access width in bytes (1, 2, 4 or 8), or 0 to match any.
	Len uint32
	FD  int32
	// Flags combines IOEventFDFlag* values.
	Flags uint32
	Pad   [36]uint8
}

// IRQFD mirrors struct kvm_irqfd, the argument of KVM_IRQFD (api.rst,
// section "KVM_IRQFD"): signalling the eventfd FD injects an interrupt on
// GSI.
type IRQFD struct {
	FD    uint32
	GSI   uint32
	Flags uint32
	// ResampleFD is used with IRQFDFlagResample for level-triggered lines.
	ResampleFD uint32
	Pad        [16]uint8
}

// IRQRoutingEntry mirrors struct kvm_irq_routing_entry, one entry of the
// table installed by KVM_SET_GSI_ROUTING (api.rst, section
// "KVM_SET_GSI_ROUTING"). U is the kernel's union; build entries with
// [IRQRoutingIRQChipEntry] or [IRQRoutingMSIEntry] rather than by hand.
type IRQRoutingEntry struct {
	GSI   uint32
	Type  uint32
	Flags uint32
	Pad   uint32
	U     [32]uint8
}

// irqRoutingHeader mirrors the fixed part of struct kvm_irq_routing;
// IRQRoutingEntry values follow it as a flexible array member.
type irqRoutingHeader struct {
	Nr    uint32
	Flags uint32
}
