package kvm

import "unsafe"

// Compile-time layout checks: each pair of declarations fails to compile
// (negative array length) unless the Go mirror has exactly the size the
// kernel structure has on x86-64, so a missing or extra padding field is a
// build error rather than memory corruption in an ioctl.
//
// SAFETY: unsafe.Sizeof is evaluated at compile time only; nothing here
// touches memory.
var (
	_ [unsafe.Sizeof(uint64(0)) - sizeofUint64]byte
	_ [sizeofUint64 - unsafe.Sizeof(uint64(0))]byte

	_ [unsafe.Sizeof(Regs{}) - sizeofRegs]byte
	_ [sizeofRegs - unsafe.Sizeof(Regs{})]byte

	_ [unsafe.Sizeof(Segment{}) - sizeofSegment]byte
	_ [sizeofSegment - unsafe.Sizeof(Segment{})]byte

	_ [unsafe.Sizeof(DTable{}) - sizeofDTable]byte
	_ [sizeofDTable - unsafe.Sizeof(DTable{})]byte

	_ [unsafe.Sizeof(Sregs{}) - sizeofSregs]byte
	_ [sizeofSregs - unsafe.Sizeof(Sregs{})]byte

	_ [unsafe.Sizeof(FPU{}) - sizeofFPU]byte
	_ [sizeofFPU - unsafe.Sizeof(FPU{})]byte

	_ [unsafe.Sizeof(LAPICState{}) - sizeofLAPICState]byte
	_ [sizeofLAPICState - unsafe.Sizeof(LAPICState{})]byte

	_ [unsafe.Sizeof(UserspaceMemoryRegion{}) - sizeofUserspaceMemoryRegion]byte
	_ [sizeofUserspaceMemoryRegion - unsafe.Sizeof(UserspaceMemoryRegion{})]byte

	_ [unsafe.Sizeof(CPUIDEntry2{}) - sizeofCPUIDEntry2]byte
	_ [sizeofCPUIDEntry2 - unsafe.Sizeof(CPUIDEntry2{})]byte

	_ [unsafe.Sizeof(cpuid2Header{}) - sizeofCPUID2]byte
	_ [sizeofCPUID2 - unsafe.Sizeof(cpuid2Header{})]byte

	_ [unsafe.Sizeof(MSREntry{}) - sizeofMSREntry]byte
	_ [sizeofMSREntry - unsafe.Sizeof(MSREntry{})]byte

	_ [unsafe.Sizeof(msrsHeader{}) - sizeofMSRs]byte
	_ [sizeofMSRs - unsafe.Sizeof(msrsHeader{})]byte

	_ [unsafe.Sizeof(msrListHeader{}) - sizeofMSRList]byte
	_ [sizeofMSRList - unsafe.Sizeof(msrListHeader{})]byte

	_ [unsafe.Sizeof(PITConfig{}) - sizeofPITConfig]byte
	_ [sizeofPITConfig - unsafe.Sizeof(PITConfig{})]byte

	_ [unsafe.Sizeof(IRQLevel{}) - sizeofIRQLevel]byte
	_ [sizeofIRQLevel - unsafe.Sizeof(IRQLevel{})]byte

	_ [unsafe.Sizeof(IOEventFD{}) - sizeofIOEventFD]byte
	_ [sizeofIOEventFD - unsafe.Sizeof(IOEventFD{})]byte

	_ [unsafe.Sizeof(IRQFD{}) - sizeofIRQFD]byte
	_ [sizeofIRQFD - unsafe.Sizeof(IRQFD{})]byte

	_ [unsafe.Sizeof(IRQRoutingEntry{}) - sizeofIRQRoutingEntry]byte
	_ [sizeofIRQRoutingEntry - unsafe.Sizeof(IRQRoutingEntry{})]byte

	_ [unsafe.Sizeof(irqRoutingHeader{}) - sizeofIRQRouting]byte
	_ [sizeofIRQRouting - unsafe.Sizeof(irqRoutingHeader{})]byte
)
