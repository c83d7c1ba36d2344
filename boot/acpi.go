package boot

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/govmm/govmm/memory"
)

// ACPI table construction, ACPI Specification 6.3 (January 2019), chapter
// 5 "ACPI Software Programming Model". [BuildACPI] lays out, contiguously
// from a base address in the BIOS area:
//
//	RSDP  Root System Description Pointer, revision 2 (§5.2.5.3)
//	XSDT  Extended System Description Table: FADT, MADT (§5.2.8)
//	RSDT  Root System Description Table: the same, 32-bit (§5.2.7)
//	FADT  Fixed ACPI Description Table, revision 6.3 (§5.2.9)
//	FACS  Firmware ACPI Control Structure (§5.2.10), 64-byte aligned
//	DSDT  Differentiated System Description Table (§5.2.11.1): \_S5_,
//	      and with [ACPIConfig.PCI] a PCI host bridge \_SB_.PCI0
//	MADT  Multiple APIC Description Table (§5.2.12)
//
// Why ACPI: Debian's cloud kernel has no MP-table parser
// (CONFIG_X86_MPPARSE is unset), so it finds secondary CPUs only through
// the MADT, and without ACPI it cannot power the machine off.
//
// # Finding the tables
//
// Linux locates the RSDP through boot_params.acpi_rsdp_addr if the loader
// sets it, and otherwise (drivers/acpi/acpica/tbxfroot.c,
// acpi_find_root_pointer; ACPI 6.3 §5.2.5.1 "Finding the RSDP on IA-PC
// Systems") by scanning the first KiB of the EBDA and then 0xE0000-0xFFFFF
// on 16-byte boundaries. The RSDP must therefore sit on a 16-byte boundary
// in [ACPIAreaStart, ACPIAreaEnd), and [BuildACPI] requires the whole blob
// there ([ACPIDefaultBase] is the start of the area). That range is e820
// reserved, so the kernel never reuses the tables' memory.
//
// # The machine the tables describe
//
// Not hardware-reduced ACPI: the guest keeps the 8259 PICs, the PIT, the
// CMOS RTC and the i8042, so the FADT sets IAPC_BOOT_ARCH LEGACY_DEVICES
// and 8042 (without the 8042 bit Linux skips the i8042 probe, and govmm
// reboots through it) and the MADT sets PCAT_COMPAT. The fixed hardware is
// one PM1a register block pair (no PM1b, PM2, GPE blocks or PM timer; the
// PM timer is optional since ACPI 5.0A and Linux then uses other clock
// sources), the reset register at port 0xCF9 and the SCI on an ISA IRQ.
//
// # The contract with the VMM's PM device
//
// The VMM emulates, at [ACPIConfig.PM1aEventPort] (4 ports) and
// [ACPIConfig.PM1aControlPort] (2 ports), with 16-bit accesses (ACPI 6.3
// "PM1 Event Grouping" and "PM1 Control Grouping" in chapter 4):
//
//   - PM1a_STS (event port + 0): the fixed event status bits, write 1 to
//     clear. Reading 0 is fine when the VMM raises no events. To request a
//     graceful shutdown it may set PWRBTN_STS ([ACPIPM1PowerButton]) and,
//     if PWRBTN_EN is set, assert the SCI (level-triggered, active high)
//     until the guest clears the status bit.
//   - PM1a_EN (event port + 2): plain read/write storage. ACPICA reads back
//     every enable bit it sets (acpi_enable_event) and logs "Could not
//     enable ... event" errors, and gives up on the power button and the
//     global lock, if the bit does not stick.
//   - PM1a_CNT (control port): must read SCI_EN ([ACPIPM1SCIEnable]) as 1.
//     SMI_CMD is 0 in the FADT, which means the machine is always in ACPI
//     mode: there is no SMI handler to switch modes, and ACPICA then never
//     writes ACPI_ENABLE (acpi_hw_get_mode returns ACPI mode when SMI_CMD
//     is 0). SLP_EN reads 0 (it is write-only).
//
// Power-off (ACPICA's acpi_hw_legacy_sleep, Linux drivers/acpi/acpica/
// hwsleep.c): Linux reads PM1a_CNT, clears SLP_TYP and SLP_EN, and writes
// it twice: first with SLP_TYP = [ACPISleepTypeS5], then with SLP_EN
// added. With SCI_EN reading 1 the two writes are 0x1401 and
// [ACPIPowerOffValue] (0x3401): (5<<10)|(1<<13)|SCI_EN. The VMM must stop
// the guest on the second write (see [ACPIPowerOffRequested], which
// ignores the bits other than SLP_TYP and SLP_EN); if it does not, Linux
// waits 10 s, writes SLP_EN again with SLP_TYP 0 and then spins forever
// polling WAK_STS. (Observed with Debian's 6.1 kernels: one read of
// PM1a_CNT, then the writes 0x1401 and 0x3401.)
//
// Reset: Linux's default reboot method tries the FADT reset register
// first: it writes [ACPIResetValue] (0x06, SYS_RST|RST_CPU) to port
// [ACPIResetPort] (0xCF9), which govmm's reset control register treats as
// a reset. (reboot=k on the command line, govmm's default, goes straight to
// the i8042 instead; reboot=a selects this path.)
const (
	// ACPIAreaStart and ACPIAreaEnd bound the BIOS read-only memory area
	// that OSPM scans for the RSDP on IA-PC systems (§5.2.5.1).
	ACPIAreaStart = 0xe0000
	ACPIAreaEnd   = 0x100000

	// ACPIDefaultBase is where DefaultACPIConfig places the tables.
	ACPIDefaultBase = ACPIAreaStart
	// ACPIDefaultPM1aEventPort and ACPIDefaultPM1aControlPort are the PM1a
	// register blocks DefaultACPIConfig advertises (where QEMU's PIIX4 PM
	// device has them).
	ACPIDefaultPM1aEventPort   = 0x600
	ACPIDefaultPM1aControlPort = 0x604
	// ACPIDefaultSCIIRQ is the PC's conventional SCI interrupt.
	ACPIDefaultSCIIRQ = 9

	// ACPIPM1EventLen and ACPIPM1ControlLen are the sizes in ports of the
	// PM1a event block (status then enable, 2 bytes each) and the PM1a
	// control block, the minimums §5.2.9 allows.
	ACPIPM1EventLen   = 4
	ACPIPM1ControlLen = 2

	// PM1 status and enable register bits.
	ACPIPM1TimerStatus = 1 << 0  // TMR_STS/TMR_EN: no PM timer here
	ACPIPM1Global      = 1 << 5  // GBL_STS/GBL_EN
	ACPIPM1PowerButton = 1 << 8  // PWRBTN_STS/PWRBTN_EN
	ACPIPM1RTC         = 1 << 10 // RTC_STS/RTC_EN
	ACPIPM1WakeStatus  = 1 << 15 // WAK_STS

	// PM1 control register bits.
	ACPIPM1SCIEnable    = 1 << 0 // SCI_EN: reads 1, ACPI mode
	ACPIPM1SleepTypeBit = 10     // SLP_TYP is bits 10-12
	ACPIPM1SleepType    = 7 << ACPIPM1SleepTypeBit
	ACPIPM1SleepEnable  = 1 << 13 // SLP_EN, write-only

	// ACPISleepTypeS5 is the SLP_TYP value the DSDT's \_S5_ object gives
	// for the soft-off state S5.
	ACPISleepTypeS5 = 5
	// ACPIPowerOffValue is what Linux writes to PM1a_CNT to power off
	// when the register reads SCI_EN = 1: 0x3401.
	ACPIPowerOffValue = ACPISleepTypeS5<<ACPIPM1SleepTypeBit | ACPIPM1SleepEnable | ACPIPM1SCIEnable

	// ACPIResetPort and ACPIResetValue are the FADT's RESET_REG (a byte
	// in system I/O space) and RESET_VALUE: the chipset's reset control
	// register, written with SYS_RST|RST_CPU.
	ACPIResetPort  = 0xcf9
	ACPIResetValue = 0x06

	// ACPIRTCCentury is the CMOS RAM index of the century byte (the IBM
	// AT convention, which govmm's RTC follows), given in FADT.CENTURY.
	ACPIRTCCentury = 0x32
)

// ACPIPowerOffRequested reports whether a value written to PM1a_CNT asks
// for the S5 soft-off state: SLP_EN set with SLP_TYP = ACPISleepTypeS5.
// Other bits (SCI_EN, reserved bits Linux preserves) do not matter.
func ACPIPowerOffRequested(pm1Control uint16) bool {
	return pm1Control&ACPIPM1SleepEnable != 0 &&
		pm1Control&ACPIPM1SleepType == ACPISleepTypeS5<<ACPIPM1SleepTypeBit
}

// ACPIConfig describes the machine the ACPI tables advertise.
type ACPIConfig struct {
	// CPUs is the number of processors, 1 to MaxCPUs. Their local APIC
	// IDs and ACPI processor UIDs are 0..CPUs-1; the IOAPIC's ID is CPUs.
	CPUs int
	// Base is the guest-physical address the tables are built for and
	// must be copied to: 16-byte aligned, with the whole blob inside
	// [ACPIAreaStart, ACPIAreaEnd) so that the RSDP scan finds it.
	Base uint64
	// PM1aEventPort and PM1aControlPort are the I/O ports of the PM1a
	// event block (ACPIPM1EventLen ports) and control block
	// (ACPIPM1ControlLen ports) the VMM emulates. They must not overlap.
	PM1aEventPort   uint16
	PM1aControlPort uint16
	// SCIIRQ is the ISA IRQ of the system control interrupt (1 to 15,
	// not 2), routed to the same IOAPIC pin, level-triggered, active high.
	SCIIRQ uint8
	// PCI adds a PCI host bridge \_SB_.PCI0 (PNP0A03, segment 0, buses
	// 0-255, the configuration ports 0xCF8-0xCFF, all other I/O ports and
	// the 32-bit MMIO hole up to the IOAPIC as its windows) to the DSDT.
	// Without it Linux scans no PCI bus at all once ACPI is enabled.
	PCI bool
}

// DefaultACPIConfig returns the configuration govmm uses for cpus
// processors: the tables at ACPIDefaultBase, the PM1a blocks at ports
// 0x600 and 0x604, the SCI on IRQ 9, no PCI host bridge.
func DefaultACPIConfig(cpus int) ACPIConfig {
	return ACPIConfig{
		CPUs:            cpus,
		Base:            ACPIDefaultBase,
		PM1aEventPort:   ACPIDefaultPM1aEventPort,
		PM1aControlPort: ACPIDefaultPM1aControlPort,
		SCIIRQ:          ACPIDefaultSCIIRQ,
	}
}

// ACPITable locates one table of an ACPITables blob.
type ACPITable struct {
	Addr   uint64 // guest-physical address
	Offset int    // offset in ACPITables.Data, Addr - ACPITables.Base
	Size   int    // length in bytes, the table's own length field
}

// ACPITables is the output of BuildACPI: Data is to be copied to guest
// memory at Base; the RSDP is at RSDP.Addr (= Base).
type ACPITables struct {
	Base uint64
	Data []byte

	RSDP, XSDT, RSDT, FADT, FACS, DSDT, MADT ACPITable
}

// Table returns the bytes of t, one of tables' own fields, within
// tables.Data.
func (tables *ACPITables) Table(t ACPITable) []byte {
	return tables.Data[t.Offset : t.Offset+t.Size]
}

// Table header and structure sizes and revisions.
const (
	acpiHeaderSize = 36 // §5.2.6 system description table header
	acpiRSDPSize   = 36 // §5.2.5.3, revision 2
	acpiRSDPV1Size = 20 // the ACPI 1.0 part covered by the first checksum
	acpiFADTSize   = 276
	acpiFACSSize   = 64
	acpiGASSize    = 12 // §5.2.3.2 Generic Address Structure

	acpiRSDPRevision = 2
	acpiRSDTRevision = 1
	acpiXSDTRevision = 1
	acpiFADTRevision = 6 // major version 6 ...
	acpiFADTMinor    = 3 // ... minor 3: ACPI 6.3
	acpiFACSVersion  = 2
	acpiDSDTRevision = 2 // 64-bit AML integers
	acpiMADTRevision = 5 // ACPI 6.3

	acpiTableAlign = 16
	acpiFACSAlign  = 64 // §5.2.10: "64-byte aligned"

	acpiMADTLAPICLen  = 8  // §5.2.12.2
	acpiMADTIOAPICLen = 12 // §5.2.12.3
	acpiMADTISOLen    = 10 // §5.2.12.5
	acpiMADTNMILen    = 6  // §5.2.12.7
)

// OEM identification in every header (§5.2.6): 6-byte OEM ID, 8-byte OEM
// table ID, 4-byte creator ID, space padded.
const (
	acpiOEMID        = "GOVMM "
	acpiOEMTableID   = "GOVMMVM "
	acpiOEMRevision  = 1
	acpiCreatorID    = "GOVM"
	acpiCreatorRev   = 1
	acpiHypervisorID = "GOVMM\x00\x00\x00" // FADT Hypervisor Vendor Identity
)

// FADT field offsets (§5.2.9 "Fixed ACPI Description Table").
const (
	fadtFirmwareCtrl   = 36
	fadtDSDT           = 40
	fadtPMProfile      = 45
	fadtSCIInt         = 46
	fadtSMICmd         = 48
	fadtPM1aEvtBlk     = 56
	fadtPM1aCntBlk     = 64
	fadtPMTmrBlk       = 76
	fadtPM1EvtLen      = 88
	fadtPM1CntLen      = 89
	fadtPMTmrLen       = 91
	fadtPLvl2Lat       = 96
	fadtPLvl3Lat       = 98
	fadtCentury        = 108
	fadtIAPCBootArch   = 109
	fadtFlags          = 112
	fadtResetReg       = 116
	fadtResetValue     = 128
	fadtMinorVersion   = 131
	fadtXFirmwareCtrl  = 132
	fadtXDSDT          = 140
	fadtXPM1aEvtBlk    = 148
	fadtXPM1aCntBlk    = 172
	fadtXPMTmrBlk      = 208
	fadtHypervisorVend = 268
)

// FADT flag and boot architecture bits.
const (
	fadtFlagWBINVD      = 1 << 0  // WBINVD works
	fadtFlagProcC1      = 1 << 2  // C1 supported on all processors
	fadtFlagSlpButton   = 1 << 5  // no fixed-feature sleep button
	fadtFlagResetRegSup = 1 << 10 // RESET_REG is supported

	fadtBootLegacyDevices = 1 << 0 // §5.2.9.3: LPC/ISA devices present
	fadtBoot8042          = 1 << 1 // §5.2.9.3: 8042 on ports 0x60/0x64

	// A C2 latency above 100 µs and a C3 latency above 1000 µs mean the
	// state is not supported (§5.2.9, P_LVL2_LAT and P_LVL3_LAT).
	fadtNoC2 = 0x0fff
	fadtNoC3 = 0x0fff
)

// Generic Address Structure fields (§5.2.3.2).
const (
	gasSystemIO   = 1
	gasAccessByte = 1
	gasAccessWord = 2
)

// MADT values (§5.2.12).
const (
	madtPCATCompat      = 1 << 0 // dual 8259s present
	madtTypeLAPIC       = 0
	madtTypeIOAPIC      = 1
	madtTypeISO         = 2
	madtTypeLAPICNMI    = 4
	madtLAPICEnabled    = 1 << 0
	madtAllProcessors   = 0xff // ACPI processor UID meaning all (§5.2.12.7)
	madtISOLevelHigh    = 0x000d
	madtLINT1           = 1
	madtBusISA          = 0
	madtNMIFlagsConform = 0
)

// acpiLayout is the placement of every table for one configuration.
type acpiLayout struct {
	rsdp, xsdt, rsdt, fadt, facs, dsdt, madt ACPITable
	size                                     int
}

// layoutACPI places tables of the given DSDT and MADT sizes from base,
// each 16-byte aligned (the FACS 64-byte aligned) in absolute terms.
func layoutACPI(base uint64, dsdtSize, madtSize int) acpiLayout {
	var l acpiLayout
	off := 0
	place := func(size, align int) ACPITable {
		addr := alignUp(base+uint64(off), uint64(align))
		t := ACPITable{Addr: addr, Offset: int(addr - base), Size: size}
		off = t.Offset + size
		return t
	}
	l.rsdp = place(acpiRSDPSize, acpiTableAlign)
	l.xsdt = place(acpiHeaderSize+2*8, acpiTableAlign)
	l.rsdt = place(acpiHeaderSize+2*4, acpiTableAlign)
	l.fadt = place(acpiFADTSize, acpiTableAlign)
	l.facs = place(acpiFACSSize, acpiFACSAlign)
	l.dsdt = place(dsdtSize, acpiTableAlign)
	l.madt = place(madtSize, acpiTableAlign)
	l.size = int(alignUp(uint64(off), acpiTableAlign))
	return l
}

// madtSize is the MADT's length for cpus processors: the header, the local
// APIC address and flags, a local APIC per processor, the IOAPIC, the SCI
// override and the local APIC NMI.
func madtSize(cpus int) int {
	return acpiHeaderSize + 8 + cpus*acpiMADTLAPICLen + acpiMADTIOAPICLen +
		acpiMADTISOLen + acpiMADTNMILen
}

// BuildACPI returns the ACPI tables for cfg, laid out from cfg.Base. It
// only builds bytes: the caller copies Data to guest memory at Base and
// should reserve that range (it is in the e820-reserved BIOS area when
// Base is in [ACPIAreaStart, ACPIAreaEnd)). It validates cfg and never
// panics.
func BuildACPI(cfg ACPIConfig) (*ACPITables, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dsdt, err := buildDSDT(cfg)
	if err != nil {
		return nil, fmt.Errorf("acpi: dsdt: %w", err)
	}
	l := layoutACPI(cfg.Base, len(dsdt), madtSize(cfg.CPUs))
	if end := cfg.Base + uint64(l.size); end > ACPIAreaEnd {
		return nil, fmt.Errorf("acpi: tables of %d bytes at %#x end at %#x, past the BIOS area end %#x: lower the base",
			l.size, cfg.Base, end, ACPIAreaEnd)
	}

	t := &ACPITables{
		Base: cfg.Base,
		Data: make([]byte, l.size),
		RSDP: l.rsdp, XSDT: l.xsdt, RSDT: l.rsdt, FADT: l.fadt,
		FACS: l.facs, DSDT: l.dsdt, MADT: l.madt,
	}
	copy(t.Table(t.DSDT), dsdt)
	buildRSDP(t.Table(t.RSDP), t.RSDT.Addr, t.XSDT.Addr)
	buildXSDT(t.Table(t.XSDT), t.FADT.Addr, t.MADT.Addr)
	buildRSDT(t.Table(t.RSDT), t.FADT.Addr, t.MADT.Addr)
	buildFADT(t.Table(t.FADT), cfg, t.FACS.Addr, t.DSDT.Addr)
	buildFACS(t.Table(t.FACS))
	buildMADT(t.Table(t.MADT), cfg)
	return t, nil
}

func (cfg ACPIConfig) validate() error {
	if cfg.CPUs < 1 || cfg.CPUs > MaxCPUs {
		return fmt.Errorf("acpi: %d cpus out of range: the MADT describes 1 to %d", cfg.CPUs, MaxCPUs)
	}
	if cfg.Base < ACPIAreaStart || cfg.Base >= ACPIAreaEnd {
		return fmt.Errorf("acpi: base %#x is outside the BIOS area [%#x, %#x) where the RSDP is searched for",
			cfg.Base, ACPIAreaStart, ACPIAreaEnd)
	}
	if cfg.Base%acpiTableAlign != 0 {
		return fmt.Errorf("acpi: base %#x is not %d-byte aligned: the RSDP scan looks only at 16-byte boundaries",
			cfg.Base, acpiTableAlign)
	}
	if cfg.PM1aEventPort == 0 || cfg.PM1aControlPort == 0 {
		return errors.New("acpi: PM1a event and control ports must be non-zero (the FADT requires both blocks)")
	}
	evt, cnt := uint32(cfg.PM1aEventPort), uint32(cfg.PM1aControlPort)
	if evt+ACPIPM1EventLen > 0x10000 || cnt+ACPIPM1ControlLen > 0x10000 {
		return fmt.Errorf("acpi: PM1a blocks at ports %#x and %#x run past port 0xffff", evt, cnt)
	}
	if evt < cnt+ACPIPM1ControlLen && cnt < evt+ACPIPM1EventLen {
		return fmt.Errorf("acpi: PM1a event block [%#x, %#x) overlaps control block [%#x, %#x)",
			evt, evt+ACPIPM1EventLen, cnt, cnt+ACPIPM1ControlLen)
	}
	if cfg.SCIIRQ == 0 || cfg.SCIIRQ == 2 || cfg.SCIIRQ >= ISAIRQs {
		return fmt.Errorf("acpi: SCI IRQ %d: must be an ISA IRQ from 1 to 15 other than the cascade IRQ 2", cfg.SCIIRQ)
	}
	return nil
}

// putHeader fills the §5.2.6 header of table b (its length is len(b)); the
// checksum is set by sealTable once the body is written.
func putHeader(b []byte, sig string, revision uint8) {
	le := binary.LittleEndian
	copy(b[0:4], sig)
	le.PutUint32(b[4:], uint32(len(b)))
	b[8] = revision
	copy(b[10:16], acpiOEMID)
	copy(b[16:24], acpiOEMTableID)
	le.PutUint32(b[24:], acpiOEMRevision)
	copy(b[28:32], acpiCreatorID)
	le.PutUint32(b[32:], acpiCreatorRev)
}

// sealTable sets the header checksum so that the whole table sums to 0.
func sealTable(b []byte) {
	b[9] = 0
	b[9] = checksum(b)
}

// buildRSDP writes the revision 2 RSDP (§5.2.5.3): the checksum covers
// the first 20 bytes (the ACPI 1.0 structure), the extended checksum all 36.
func buildRSDP(b []byte, rsdt, xsdt uint64) {
	le := binary.LittleEndian
	copy(b[0:8], "RSD PTR ")
	copy(b[9:15], acpiOEMID)
	b[15] = acpiRSDPRevision
	le.PutUint32(b[16:], uint32(rsdt))
	le.PutUint32(b[20:], acpiRSDPSize)
	le.PutUint64(b[24:], xsdt)
	b[8] = checksum(b[:acpiRSDPV1Size])
	b[32] = checksum(b[:acpiRSDPSize])
}

// buildXSDT writes the XSDT (§5.2.8): 64-bit pointers to the FADT and the
// MADT. The DSDT and FACS are reached through the FADT. Linux uses the
// XSDT whenever the RSDP revision is 2 or more.
func buildXSDT(b []byte, fadt, madt uint64) {
	putHeader(b, "XSDT", acpiXSDTRevision)
	binary.LittleEndian.PutUint64(b[acpiHeaderSize:], fadt)
	binary.LittleEndian.PutUint64(b[acpiHeaderSize+8:], madt)
	sealTable(b)
}

// buildRSDT writes the RSDT (§5.2.7), the 32-bit equivalent of the XSDT,
// for OSes (or acpi=rsdt) that ignore the XSDT.
func buildRSDT(b []byte, fadt, madt uint64) {
	putHeader(b, "RSDT", acpiRSDTRevision)
	binary.LittleEndian.PutUint32(b[acpiHeaderSize:], uint32(fadt))
	binary.LittleEndian.PutUint32(b[acpiHeaderSize+4:], uint32(madt))
	sealTable(b)
}

// putGAS writes a Generic Address Structure (§5.2.3.2) in system I/O
// space.
func putGAS(b []byte, bitWidth, accessSize uint8, port uint16) {
	b[0] = gasSystemIO
	b[1] = bitWidth
	b[2] = 0 // bit offset
	b[3] = accessSize
	binary.LittleEndian.PutUint64(b[4:], uint64(port))
}

// buildFADT writes the revision 6.3 FADT (§5.2.9). Fields not set are 0:
// no PM1b, PM2, GPE blocks, no PM timer (optional since ACPI 5.0A; ACPICA
// treats PM_TMR_BLK as optional and Linux's acpi_pm clocksource just does
// not register), no SMI command port (SMI_CMD = 0: the machine is always
// in ACPI mode, so ACPI_ENABLE/ACPI_DISABLE are 0 too), no P_BLK-style
// C-states. FIRMWARE_CTRL points at the FACS, which a non-hardware-reduced
// platform must have; X_FIRMWARE_CTRL stays 0 because §5.2.9 requires it
// to be 0 when FIRMWARE_CTRL is set. DSDT and X_DSDT both point at the
// DSDT, and X_PM1a_EVT_BLK and X_PM1a_CNT_BLK repeat the 32-bit blocks.
func buildFADT(b []byte, cfg ACPIConfig, facs, dsdt uint64) {
	le := binary.LittleEndian
	putHeader(b, "FACP", acpiFADTRevision)
	le.PutUint32(b[fadtFirmwareCtrl:], uint32(facs))
	le.PutUint32(b[fadtDSDT:], uint32(dsdt))
	b[fadtPMProfile] = 0 // unspecified
	le.PutUint16(b[fadtSCIInt:], uint16(cfg.SCIIRQ))
	le.PutUint32(b[fadtSMICmd:], 0)
	le.PutUint32(b[fadtPM1aEvtBlk:], uint32(cfg.PM1aEventPort))
	le.PutUint32(b[fadtPM1aCntBlk:], uint32(cfg.PM1aControlPort))
	le.PutUint32(b[fadtPMTmrBlk:], 0)
	b[fadtPM1EvtLen] = ACPIPM1EventLen
	b[fadtPM1CntLen] = ACPIPM1ControlLen
	b[fadtPMTmrLen] = 0
	le.PutUint16(b[fadtPLvl2Lat:], fadtNoC2)
	le.PutUint16(b[fadtPLvl3Lat:], fadtNoC3)
	b[fadtCentury] = ACPIRTCCentury
	le.PutUint16(b[fadtIAPCBootArch:], fadtBootLegacyDevices|fadtBoot8042)
	// PWR_BUTTON (bit 4) is clear: the power button is the fixed-feature
	// PWRBTN_STS/PWRBTN_EN pair, which the VMM may use to ask the guest
	// to shut down. SLP_BUTTON (bit 5) set with no sleep button device in
	// the DSDT means there is none.
	le.PutUint32(b[fadtFlags:], fadtFlagWBINVD|fadtFlagProcC1|fadtFlagSlpButton|fadtFlagResetRegSup)
	putGAS(b[fadtResetReg:], 8, gasAccessByte, ACPIResetPort)
	b[fadtResetValue] = ACPIResetValue
	b[fadtMinorVersion] = acpiFADTMinor
	le.PutUint64(b[fadtXFirmwareCtrl:], 0)
	le.PutUint64(b[fadtXDSDT:], dsdt)
	putGAS(b[fadtXPM1aEvtBlk:], ACPIPM1EventLen*8, gasAccessWord, cfg.PM1aEventPort)
	putGAS(b[fadtXPM1aCntBlk:], ACPIPM1ControlLen*8, gasAccessWord, cfg.PM1aControlPort)
	copy(b[fadtHypervisorVend:fadtHypervisorVend+8], acpiHypervisorID)
	sealTable(b)
}

// buildFACS writes the FACS (§5.2.10): no hardware signature, no waking
// vector (S3/S4 are not offered), the global lock free. It has no
// checksum.
func buildFACS(b []byte) {
	copy(b[0:4], "FACS")
	binary.LittleEndian.PutUint32(b[4:], acpiFACSSize)
	b[32] = acpiFACSVersion
}

// buildMADT writes the MADT (§5.2.12) for cfg.CPUs processors:
//
//   - a Processor Local APIC structure per CPU, ACPI processor UID = APIC
//     ID = index, enabled (the Online Capable bit must then be 0);
//   - one I/O APIC, ID cfg.CPUs (as in the MP table), GSI base 0, so GSI i
//     is pin i;
//   - one Interrupt Source Override: ISA IRQ cfg.SCIIRQ to the same GSI,
//     level-triggered, active high (flags 0x000D), the PC convention for
//     the SCI, which ACPI otherwise defines as level, active low;
//   - a Local APIC NMI structure for all processors on LINT1.
//
// There is deliberately no override for IRQ 0 (the PC convention maps it
// to GSI 2): KVM's default GSI routing, which govmm keeps, wires the
// in-kernel PIT (GSI 0) to IOAPIC pin 0, and Linux identity-maps every ISA
// IRQ without an override (mp_config_acpi_legacy_irqs in
// arch/x86/kernel/acpi/boot.c), which is what the MP table describes too.
func buildMADT(b []byte, cfg ACPIConfig) {
	le := binary.LittleEndian
	putHeader(b, "APIC", acpiMADTRevision)
	le.PutUint32(b[36:], LAPICAddr)
	le.PutUint32(b[40:], madtPCATCompat)
	off := acpiHeaderSize + 8

	for i := range cfg.CPUs {
		e := b[off : off+acpiMADTLAPICLen]
		e[0] = madtTypeLAPIC
		e[1] = acpiMADTLAPICLen
		e[2] = uint8(i) // ACPI processor UID
		e[3] = uint8(i) // APIC ID
		le.PutUint32(e[4:], madtLAPICEnabled)
		off += acpiMADTLAPICLen
	}

	e := b[off : off+acpiMADTIOAPICLen]
	e[0] = madtTypeIOAPIC
	e[1] = acpiMADTIOAPICLen
	e[2] = uint8(cfg.CPUs) // I/O APIC ID
	le.PutUint32(e[4:], IOAPICAddr)
	le.PutUint32(e[8:], 0) // global system interrupt base
	off += acpiMADTIOAPICLen

	e = b[off : off+acpiMADTISOLen]
	e[0] = madtTypeISO
	e[1] = acpiMADTISOLen
	e[2] = madtBusISA
	e[3] = cfg.SCIIRQ
	le.PutUint32(e[4:], uint32(cfg.SCIIRQ))
	le.PutUint16(e[8:], madtISOLevelHigh)
	off += acpiMADTISOLen

	e = b[off : off+acpiMADTNMILen]
	e[0] = madtTypeLAPICNMI
	e[1] = acpiMADTNMILen
	e[2] = madtAllProcessors
	le.PutUint16(e[3:], madtNMIFlagsConform)
	e[5] = madtLINT1

	sealTable(b)
}

// buildDSDT returns the DSDT (§5.2.11.1): the header and an AML definition
// block holding
//
//	Name (\_S5_, Package (0x04) { 0x05, 0x05, Zero, Zero })
//
// the \_Sx object (ACPI 6.3 chapter 7, "\_Sx (System States)") that gives
// SLP_TYPa and SLP_TYPb for S5 soft-off; the two reserved elements follow
// common practice. Linux registers its ACPI power-off handler only when
// \_S5_ exists (acpi_sleep_state_supported). With cfg.PCI the block also
// holds the PCI host bridge of pciHostBridge.
func buildDSDT(cfg ACPIConfig) ([]byte, error) {
	var a amlEncoder
	aml := s5Object(&a)
	if cfg.PCI {
		aml = append(aml, pciHostBridge(&a)...)
		aml = append(aml, pciRouting(&a)...)
	}
	if a.err != nil {
		return nil, a.err
	}
	b := make([]byte, acpiHeaderSize+len(aml))
	putHeader(b, "DSDT", acpiDSDTRevision)
	copy(b[acpiHeaderSize:], aml)
	sealTable(b)
	return b, nil
}

// s5Object encodes Name (\_S5_, Package (0x04) { 0x05, 0x05, Zero, Zero }).
// The name is relative to the DSDT's root scope, as ASL compilers emit it.
func s5Object(a *amlEncoder) []byte {
	return a.name("_S5_", a.pkg(
		a.integer(ACPISleepTypeS5), // SLP_TYPa
		a.integer(ACPISleepTypeS5), // SLP_TYPb
		a.integer(0),               // reserved
		a.integer(0),               // reserved
	))
}

// pciHostBridge encodes the PCI root bridge Linux needs to scan PCI once
// ACPI is enabled:
//
//	Scope (\_SB_) {
//	  Device (PCI0) {
//	    Name (_HID, EisaId ("PNP0A03"))  // PCI host bridge
//	    Name (_SEG, Zero)
//	    Name (_BBN, Zero)
//	    Name (_UID, Zero)
//	    Name (_CRS, ResourceTemplate () {
//	      WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
//	                     0, 0x00, 0xFF, 0, 0x100)
//	      IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
//	      WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode,
//	              EntireRange, 0, 0x0000, 0x0CF7, 0, 0x0CF8)
//	      WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode,
//	              EntireRange, 0, 0x0D00, 0xFFFF, 0, 0xF300)
//	      DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
//	                   NonCacheable, ReadWrite, 0, 0xC0000000, 0xFEBFFFFF,
//	                   0, 0x3EC00000)
//	    })
//	  }
//	}
//
// Why it is needed: on x86, pci_subsys_init (arch/x86/pci/legacy.c) calls
// pci_legacy_init, the conf1 scan of bus 0, only if x86_init.pci.init
// fails; with ACPI that is pci_acpi_init (arch/x86/pci/acpi.c), which
// succeeds whenever ACPI IRQ routing is on (it fails only with
// acpi_noirq, e.g. pci=noacpi) and scans nothing itself, leaving root
// buses to the ACPI PNP0A03/PNP0A08 devices in the namespace. So an
// ACPI guest without \_SB_.PCI0 sees no PCI devices even though
// raw_pci_ops (conf1 at 0xCF8) works. The memory window is the 32-bit
// MMIO hole from memory.MMIOHoleStart up to the IOAPIC. INTx routing is in
// pciRouting.
func pciHostBridge(a *amlEncoder) []byte {
	const (
		mmioBase = memory.MMIOHoleStart
		mmioEnd  = IOAPICAddr - 1
	)
	return a.scope(`\_SB_`,
		a.device("PCI0",
			a.name("_HID", a.eisaID("PNP0A03")),
			a.name("_SEG", a.integer(0)),
			a.name("_BBN", a.integer(0)),
			a.name("_UID", a.integer(0)),
			a.name("_CRS", a.resourceTemplate(
				a.wordAddress(resTypeBus, 0, 0x00, 0xff),
				a.ioPort(0xcf8, 0xcf8, 1, 8),
				a.wordAddress(resTypeIO, resIOEntireRange, 0x0000, 0x0cf7),
				a.wordAddress(resTypeIO, resIOEntireRange, 0x0d00, 0xffff),
				a.dwordMemory(mmioBase, mmioEnd),
			)),
		),
	)
}

// PCIINTxGSI is the IOAPIC input (GSI) that INTx pin (0-3 for INTA#-INTD#)
// of PCI device slot on bus 0 is wired to: the eight PCI inputs 16-23,
// rotated by slot as bridges swizzle them, so that neighbouring devices'
// INTA# do not share a line.
func PCIINTxGSI(slot, pin int) uint32 {
	return 16 + uint32((slot+pin)%8)
}

// pciRouting encodes the PCI interrupt routing table of \_SB_.PCI0 (ACPI
// 6.3 section 6.2.13, "_PRT (PCI Routing Table)"), in a Scope of its own
// after the device:
//
//	Scope (\_SB_.PCI0) {
//	  Name (_PRT, Package () {
//	    Package () { 0x0001FFFF, 0, Zero, 17 },  // slot 1 INTA# -> GSI 17
//	    ...                                      // slots 1-31, INTA#-INTD#
//	  })
//	}
//
// A Source of Zero means SourceIndex is a GSI, wired directly (no link
// device): level-triggered, active-low, as PCI interrupts are. Without a
// _PRT Linux finds no GSI for INTx ("can't derive routing for PCI INT A")
// and warns for every device, even when its driver then uses MSI-X.
func pciRouting(a *amlEncoder) []byte {
	var entries [][]byte
	for slot := 1; slot < 32; slot++ {
		for pin := range 4 {
			entries = append(entries, a.pkg(
				a.integer(uint64(slot)<<16|0xffff), // Address: device slot, any function
				a.integer(uint64(pin)),             // Pin: 0-3 for INTA#-INTD#
				a.integer(0),                       // Source: none, so SourceIndex is a GSI
				a.integer(uint64(PCIINTxGSI(slot, pin))),
			))
		}
	}
	return a.scope(`\_SB_.PCI0`, a.name("_PRT", a.pkg(entries...)))
}
