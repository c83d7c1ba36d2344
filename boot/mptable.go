package boot

import "encoding/binary"

// MP table construction, Intel MultiProcessor Specification 1.4 (May
// 1997), chapter 4 "MP Configuration Table". Linux finds the floating
// pointer by scanning the first KiB of the EBDA (and a few other places,
// spec §4 "MP Configuration Data Structures") and uses the configuration
// table to enumerate processors, buses and interrupt routing when there is
// no ACPI MADT.
const (
	mpFloatingPointerSize = 16 // §4.1, table 4-1
	mpConfigHeaderSize    = 44 // §4.2, table 4-2
	mpProcessorEntrySize  = 20 // §4.3.1, table 4-4
	mpSmallEntrySize      = 8  // bus, I/O APIC, I/O and local interrupt entries

	mpSpecRev = 4 // 1.4

	mpEntryProcessor   = 0 // §4.3, table 4-3 entry types
	mpEntryBus         = 1
	mpEntryIOAPIC      = 2
	mpEntryIOInterrupt = 3
	mpEntryLocalInt    = 4

	mpCPUEnabled = 1 << 0 // §4.3.1 CPU FLAGS: EN
	mpCPUBSP     = 1 << 1 // §4.3.1 CPU FLAGS: BP

	// mpCPUSignature is family 6 (stepping 0, model 0): what §4.3.1
	// calls the CPU signature as returned by CPUID leaf 1 in EAX.
	mpCPUSignature = 0x600
	// mpCPUFeatures is CPUID leaf 1 EDX with FPU (bit 0) and APIC (bit 9)
	// set: Linux only checks that the processor entry is enabled.
	mpCPUFeatures = 0x201

	mpLAPICVersion  = 0x14 // an integrated xAPIC, as KVM emulates
	mpIOAPICVersion = 0x11 // KVM's in-kernel 82093AA-style IOAPIC
	mpIOAPICEnabled = 1 << 0

	mpIntINT    = 0 // §4.3.4 table 4-9 interrupt types: vectored
	mpIntNMI    = 1
	mpIntExtINT = 3

	// mpAllLAPICs as a destination local APIC ID means every local APIC
	// (§4.3.5).
	mpAllLAPICs = 0xff

	// ISAIRQs is the number of ISA interrupts routed through the IOAPIC.
	ISAIRQs = 16

	// MaxCPUs is the most processors the MP table can describe: local
	// APIC IDs 0..MaxCPUs-1, the IOAPIC takes ID MaxCPUs, and 0xff is the
	// broadcast ID.
	MaxCPUs = 254
)

// mpOEMID and mpProductID are the space-padded OEM (8 bytes) and product
// (12 bytes) strings of the configuration table header (§4.2); mpBusISA is
// the 6-byte bus type string of §4.3.2, table 4-8.
const (
	mpOEMID     = "GOVMM   "
	mpProductID = "GOVMM KVM   "
	mpBusISA    = "ISA   "
)

// mpTableSize is the size of the floating pointer plus the configuration
// table for cpus processors.
func mpTableSize(cpus int) int {
	return mpFloatingPointerSize + mpConfigHeaderSize + cpus*mpProcessorEntrySize +
		mpSmallEntrySize*(1+1+ISAIRQs+2)
}

// buildMPTable returns the MP floating pointer structure followed by the
// MP configuration table for cpus processors, to be written at
// MPFloatingPointerAddr. cpus must be in [1, MaxCPUs].
func buildMPTable(cpus int) []byte {
	b := make([]byte, mpTableSize(cpus))
	le := binary.LittleEndian

	// Floating pointer structure, §4.1.
	fp := b[:mpFloatingPointerSize]
	copy(fp[0:4], "_MP_")
	le.PutUint32(fp[4:], MPConfigTableAddr) // PHYSICAL ADDRESS POINTER
	fp[8] = 1                               // LENGTH in 16-byte paragraphs
	fp[9] = mpSpecRev                       // SPEC_REV
	// fp[11] MP feature byte 1 = 0: a configuration table is present.
	// fp[12] bit 7 (IMCRP) = 0: virtual wire mode, no IMCR.
	fp[10] = checksum(fp)

	// Configuration table, §4.2 header then §4.3 entries in ascending
	// entry-type order.
	ct := b[mpFloatingPointerSize:]
	off := mpConfigHeaderSize
	entries := 0

	ioapicID := uint8(cpus)
	for i := range cpus {
		e := ct[off : off+mpProcessorEntrySize]
		e[0] = mpEntryProcessor
		e[1] = uint8(i) // LOCAL APIC ID
		e[2] = mpLAPICVersion
		e[3] = mpCPUEnabled
		if i == 0 {
			e[3] |= mpCPUBSP
		}
		le.PutUint32(e[4:], mpCPUSignature)
		le.PutUint32(e[8:], mpCPUFeatures)
		off += mpProcessorEntrySize
		entries++
	}

	// One ISA bus, §4.3.2.
	e := ct[off : off+mpSmallEntrySize]
	e[0] = mpEntryBus
	e[1] = 0 // BUS ID
	copy(e[2:8], mpBusISA)
	off += mpSmallEntrySize
	entries++

	// The IOAPIC, §4.3.3.
	e = ct[off : off+mpSmallEntrySize]
	e[0] = mpEntryIOAPIC
	e[1] = ioapicID
	e[2] = mpIOAPICVersion
	e[3] = mpIOAPICEnabled
	le.PutUint32(e[4:], IOAPICAddr)
	off += mpSmallEntrySize
	entries++

	// ISA IRQ i to IOAPIC pin i, §4.3.4. This is how KVM's default GSI
	// routing wires its in-kernel IOAPIC (GSI i is pin i). Flags 0:
	// polarity and trigger mode conform to the bus (edge, active high).
	for irq := range ISAIRQs {
		e = ct[off : off+mpSmallEntrySize]
		e[0] = mpEntryIOInterrupt
		e[1] = mpIntINT
		// e[2:4] I/O INTERRUPT FLAG = 0
		e[4] = 0 // SOURCE BUS ID
		e[5] = uint8(irq)
		e[6] = ioapicID
		e[7] = uint8(irq) // DESTINATION I/O APIC INTIN#
		off += mpSmallEntrySize
		entries++
	}

	// Local interrupts, §4.3.5: the 8259 as ExtINT on LINT0 and NMI on
	// LINT1 of every local APIC (the virtual wire setup of §3.6.2.2).
	for lint, typ := range []uint8{mpIntExtINT, mpIntNMI} {
		e = ct[off : off+mpSmallEntrySize]
		e[0] = mpEntryLocalInt
		e[1] = typ
		e[4] = 0 // SOURCE BUS ID
		e[5] = 0 // SOURCE BUS IRQ
		e[6] = mpAllLAPICs
		e[7] = uint8(lint) // DESTINATION LOCAL APIC LINTIN#
		off += mpSmallEntrySize
		entries++
	}

	h := ct[:mpConfigHeaderSize]
	copy(h[0:4], "PCMP")
	le.PutUint16(h[4:], uint16(off)) // BASE TABLE LENGTH
	h[6] = mpSpecRev
	copy(h[8:16], mpOEMID)
	copy(h[16:28], mpProductID)
	// h[28:34] OEM table pointer and size = 0: no OEM table.
	le.PutUint16(h[34:], uint16(entries))
	le.PutUint32(h[36:], LAPICAddr) // ADDRESS OF LOCAL APIC
	// h[40:43] extended table length and checksum = 0: none.
	h[7] = checksum(ct[:off])
	return b
}

// checksum returns the byte that makes b (with its checksum byte still
// zero) sum to zero modulo 256, as §4.1 and §4.2 require.
func checksum(b []byte) uint8 {
	var sum uint8
	for _, c := range b {
		sum += c
	}
	return -sum
}
