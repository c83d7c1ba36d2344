package boot

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var acpiLE = binary.LittleEndian

// acpiMem is the BIOS area [ACPIAreaStart, ACPIAreaEnd) with a table blob
// copied in, read by guest-physical address the way the guest would.
type acpiMem struct {
	t   *testing.T
	mem []byte
}

func newACPIMem(t *testing.T, tables *ACPITables) *acpiMem {
	t.Helper()
	m := &acpiMem{t: t, mem: make([]byte, ACPIAreaEnd-ACPIAreaStart)}
	require.GreaterOrEqual(t, tables.Base, uint64(ACPIAreaStart))
	require.LessOrEqual(t, tables.Base+uint64(len(tables.Data)), uint64(ACPIAreaEnd))
	copy(m.mem[tables.Base-ACPIAreaStart:], tables.Data)
	return m
}

func (m *acpiMem) at(addr uint64, n int) []byte {
	m.t.Helper()
	require.GreaterOrEqual(m.t, addr, uint64(ACPIAreaStart), "address %#x", addr)
	require.LessOrEqual(m.t, addr+uint64(n), uint64(ACPIAreaEnd), "address %#x+%d", addr, n)
	return m.mem[addr-ACPIAreaStart : addr-ACPIAreaStart+uint64(n)]
}

// findRSDP scans the BIOS area on 16-byte boundaries for a valid RSDP, as
// ACPICA's acpi_find_root_pointer does.
func (m *acpiMem) findRSDP() (uint64, bool) {
	for off := 0; off+acpiRSDPSize <= len(m.mem); off += 16 {
		b := m.mem[off:]
		if !bytes.Equal(b[:8], []byte("RSD PTR ")) || acpiSum(b[:20]) != 0 {
			continue
		}
		if b[15] >= 2 && acpiSum(b[:36]) != 0 {
			continue
		}
		return ACPIAreaStart + uint64(off), true
	}
	return 0, false
}

// table returns the system description table at addr after checking its
// signature, that its length is sane and that it sums to zero.
func (m *acpiMem) table(addr uint64, sig string) []byte {
	m.t.Helper()
	h := m.at(addr, acpiHeaderSize)
	require.Equal(m.t, sig, string(h[0:4]), "signature at %#x", addr)
	n := int(acpiLE.Uint32(h[4:]))
	require.GreaterOrEqual(m.t, n, acpiHeaderSize, "%s length", sig)
	b := m.at(addr, n)
	assert.Zero(m.t, acpiSum(b), "%s checksum", sig)
	assert.Equal(m.t, acpiOEMID, string(b[10:16]), "%s OEM ID", sig)
	assert.Equal(m.t, acpiOEMTableID, string(b[16:24]), "%s OEM table ID", sig)
	assert.EqualValues(m.t, 1, acpiLE.Uint32(b[24:]), "%s OEM revision", sig)
	assert.Equal(m.t, "GOVM", string(b[28:32]), "%s creator ID", sig)
	assert.EqualValues(m.t, 1, acpiLE.Uint32(b[32:]), "%s creator revision", sig)
	return b
}

type gas struct {
	space, width, offset, access uint8
	addr                         uint64
}

func readGAS(b []byte) gas {
	return gas{b[0], b[1], b[2], b[3], acpiLE.Uint64(b[4:])}
}

func TestBuildACPI(t *testing.T) {
	tests := []struct {
		cpus     int
		pci      bool
		base     uint64
		wantSize int
	}{
		{1, false, ACPIDefaultBase, 656},
		{4, false, ACPIDefaultBase, 688},
		{254, false, ACPIDefaultBase, 2688},
		{1, true, ACPIDefaultBase, 2352}, // the _PRT is most of it
		{254, true, ACPIDefaultBase, 4384},
		{4, false, 0xf0010, 0},
		{4, true, 0xe5a30, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("cpus=%d/pci=%v/base=%#x", tt.cpus, tt.pci, tt.base), func(t *testing.T) {
			cfg := DefaultACPIConfig(tt.cpus)
			cfg.PCI = tt.pci
			cfg.Base = tt.base
			tables, err := BuildACPI(cfg)
			require.NoError(t, err)
			if tt.wantSize != 0 {
				assert.Len(t, tables.Data, tt.wantSize)
			}
			checkACPI(t, cfg, tables)
		})
	}
}

// checkACPI follows the pointers from the RSDP the way the guest does and
// checks every table against cfg and against what BuildACPI reported.
func checkACPI(t *testing.T, cfg ACPIConfig, tables *ACPITables) {
	m := newACPIMem(t, tables)
	assert.Equal(t, cfg.Base, tables.Base)
	assert.Zero(t, len(tables.Data)%16)

	// RSDP, §5.2.5.3.
	rsdpAddr, ok := m.findRSDP()
	require.True(t, ok, "no RSDP found by the BIOS area scan")
	assert.Equal(t, cfg.Base, rsdpAddr)
	assert.Equal(t, ACPITable{Addr: cfg.Base, Offset: 0, Size: 36}, tables.RSDP)
	rsdp := m.at(rsdpAddr, 36)
	assert.Zero(t, acpiSum(rsdp[:20]), "RSDP checksum")
	assert.Zero(t, acpiSum(rsdp), "RSDP extended checksum")
	assert.Equal(t, "GOVMM ", string(rsdp[9:15]))
	assert.EqualValues(t, 2, rsdp[15], "revision")
	assert.EqualValues(t, 36, acpiLE.Uint32(rsdp[20:]), "length")
	assert.Equal(t, []byte{0, 0, 0}, rsdp[33:36], "reserved")
	xsdtAddr := acpiLE.Uint64(rsdp[24:])
	rsdtAddr := uint64(acpiLE.Uint32(rsdp[16:]))

	// XSDT and RSDT, §5.2.8 and §5.2.7: FADT then MADT.
	xsdt := m.table(xsdtAddr, "XSDT")
	require.Len(t, xsdt, 36+16)
	fadtAddr := acpiLE.Uint64(xsdt[36:])
	madtAddr := acpiLE.Uint64(xsdt[44:])
	rsdt := m.table(rsdtAddr, "RSDT")
	require.Len(t, rsdt, 36+8)
	assert.EqualValues(t, fadtAddr, acpiLE.Uint32(rsdt[36:]))
	assert.EqualValues(t, madtAddr, acpiLE.Uint32(rsdt[40:]))

	// FADT, §5.2.9.
	fadt := m.table(fadtAddr, "FACP")
	require.Len(t, fadt, 276)
	assert.EqualValues(t, 6, fadt[8], "FADT major revision")
	assert.EqualValues(t, 3, fadt[131], "FADT minor version")
	facsAddr := uint64(acpiLE.Uint32(fadt[36:]))
	dsdtAddr := uint64(acpiLE.Uint32(fadt[40:]))
	assert.Zero(t, acpiLE.Uint64(fadt[132:]), "X_FIRMWARE_CTRL must be 0 when FIRMWARE_CTRL is set")
	assert.Equal(t, dsdtAddr, acpiLE.Uint64(fadt[140:]), "X_DSDT")
	assert.Zero(t, fadt[45], "Preferred_PM_Profile")
	assert.EqualValues(t, cfg.SCIIRQ, acpiLE.Uint16(fadt[46:]), "SCI_INT")
	assert.Zero(t, acpiLE.Uint32(fadt[48:]), "SMI_CMD")
	assert.Zero(t, fadt[52], "ACPI_ENABLE")
	assert.Zero(t, fadt[53], "ACPI_DISABLE")
	assert.EqualValues(t, cfg.PM1aEventPort, acpiLE.Uint32(fadt[56:]), "PM1a_EVT_BLK")
	assert.Zero(t, acpiLE.Uint32(fadt[60:]), "PM1b_EVT_BLK")
	assert.EqualValues(t, cfg.PM1aControlPort, acpiLE.Uint32(fadt[64:]), "PM1a_CNT_BLK")
	assert.Zero(t, acpiLE.Uint32(fadt[68:]), "PM1b_CNT_BLK")
	assert.Zero(t, acpiLE.Uint32(fadt[72:]), "PM2_CNT_BLK")
	assert.Zero(t, acpiLE.Uint32(fadt[76:]), "PM_TMR_BLK")
	assert.Zero(t, acpiLE.Uint32(fadt[80:]), "GPE0_BLK")
	assert.Zero(t, acpiLE.Uint32(fadt[84:]), "GPE1_BLK")
	assert.Equal(t, []byte{4, 2, 0, 0, 0, 0}, fadt[88:94], "PM1_EVT_LEN .. GPE1_BLK_LEN")
	assert.Greater(t, acpiLE.Uint16(fadt[96:]), uint16(100), "P_LVL2_LAT: no C2")
	assert.Greater(t, acpiLE.Uint16(fadt[98:]), uint16(1000), "P_LVL3_LAT: no C3")
	assert.EqualValues(t, 0x32, fadt[108], "CENTURY")
	assert.EqualValues(t, 0x0003, acpiLE.Uint16(fadt[109:]), "IAPC_BOOT_ARCH: LEGACY_DEVICES|8042")
	flags := acpiLE.Uint32(fadt[112:])
	assert.EqualValues(t, 1<<0|1<<2|1<<5|1<<10, flags, "flags: WBINVD|PROC_C1|SLP_BUTTON|RESET_REG_SUP")
	assert.Zero(t, flags&(1<<20), "not HW_REDUCED_ACPI")
	assert.Equal(t, gas{1, 8, 0, 1, 0xcf9}, readGAS(fadt[116:]), "RESET_REG")
	assert.EqualValues(t, 0x06, fadt[128], "RESET_VALUE")
	assert.Equal(t, gas{1, 32, 0, 2, uint64(cfg.PM1aEventPort)}, readGAS(fadt[148:]), "X_PM1a_EVT_BLK")
	assert.Equal(t, gas{}, readGAS(fadt[160:]), "X_PM1b_EVT_BLK")
	assert.Equal(t, gas{1, 16, 0, 2, uint64(cfg.PM1aControlPort)}, readGAS(fadt[172:]), "X_PM1a_CNT_BLK")
	for off := 184; off < 268; off += 12 {
		assert.Equal(t, gas{}, readGAS(fadt[off:]), "GAS at FADT offset %d", off)
	}
	assert.Equal(t, "GOVMM\x00\x00\x00", string(fadt[268:276]), "hypervisor vendor identity")

	// FACS, §5.2.10: no common header and no checksum, 64-byte aligned.
	facs := m.at(facsAddr, 64)
	assert.Equal(t, "FACS", string(facs[0:4]))
	assert.EqualValues(t, 64, acpiLE.Uint32(facs[4:]))
	assert.Zero(t, facsAddr%64, "FACS alignment")
	assert.EqualValues(t, 2, facs[32], "FACS version")
	assert.Equal(t, make([]byte, 24), facs[8:32], "signature, waking vectors, global lock, flags")

	// DSDT, §5.2.11.1.
	dsdt := m.table(dsdtAddr, "DSDT")
	assert.EqualValues(t, 2, dsdt[8], "DSDT revision (64-bit integers)")
	wantAML := amlS5
	if cfg.PCI {
		var a amlEncoder
		wantAML = concat([][]byte{amlS5, amlPCI0, pciRouting(&a)}) // pciRouting: TestAMLPCIRouting
	}
	assert.Equal(t, wantAML, dsdt[36:])

	// MADT, §5.2.12.
	madt := m.table(madtAddr, "APIC")
	assert.EqualValues(t, 5, madt[8], "MADT revision")
	assert.EqualValues(t, 0xfee00000, acpiLE.Uint32(madt[36:]), "local APIC address")
	assert.EqualValues(t, 1, acpiLE.Uint32(madt[40:]), "flags: PCAT_COMPAT")
	var lapicIDs, lapicUIDs []int
	var ioapics, isos, nmis [][]byte
	for off := 44; off < len(madt); {
		require.GreaterOrEqual(t, len(madt)-off, 2, "truncated MADT entry at %d", off)
		typ, n := madt[off], int(madt[off+1])
		require.GreaterOrEqual(t, n, 2, "MADT entry at %d", off)
		require.LessOrEqual(t, off+n, len(madt), "MADT entry at %d", off)
		e := madt[off : off+n]
		switch typ {
		case 0:
			require.Len(t, e, 8)
			assert.EqualValues(t, 1, acpiLE.Uint32(e[4:]), "local APIC %d flags: enabled", e[3])
			lapicUIDs = append(lapicUIDs, int(e[2]))
			lapicIDs = append(lapicIDs, int(e[3]))
		case 1:
			require.Len(t, e, 12)
			ioapics = append(ioapics, e)
		case 2:
			require.Len(t, e, 10)
			isos = append(isos, e)
		case 4:
			require.Len(t, e, 6)
			nmis = append(nmis, e)
		default:
			t.Errorf("unexpected MADT entry type %d at %d", typ, off)
		}
		off += n
	}
	var want []int
	for i := range cfg.CPUs {
		want = append(want, i)
	}
	assert.Equal(t, want, lapicIDs, "local APIC IDs")
	assert.Equal(t, want, lapicUIDs, "ACPI processor UIDs")
	require.Len(t, ioapics, 1)
	assert.EqualValues(t, cfg.CPUs, ioapics[0][2], "IOAPIC ID")
	assert.EqualValues(t, 0xfec00000, acpiLE.Uint32(ioapics[0][4:]), "IOAPIC address")
	assert.Zero(t, acpiLE.Uint32(ioapics[0][8:]), "IOAPIC GSI base")
	// Only the SCI is overridden: IRQ 0 stays on pin 0 as KVM routes it.
	require.Len(t, isos, 1)
	assert.Equal(t, []byte{2, 10, 0, cfg.SCIIRQ}, isos[0][:4], "SCI override: ISA bus, source IRQ")
	assert.EqualValues(t, cfg.SCIIRQ, acpiLE.Uint32(isos[0][4:]), "SCI GSI")
	assert.EqualValues(t, 0x000d, acpiLE.Uint16(isos[0][8:]), "SCI level, active high")
	require.Len(t, nmis, 1)
	assert.Equal(t, []byte{4, 6, 0xff, 0, 0, 1}, nmis[0], "NMI on LINT1 of all processors")

	// What BuildACPI reported matches what the pointers say.
	for _, c := range []struct {
		got  ACPITable
		addr uint64
		size int
	}{
		{tables.XSDT, xsdtAddr, len(xsdt)},
		{tables.RSDT, rsdtAddr, len(rsdt)},
		{tables.FADT, fadtAddr, len(fadt)},
		{tables.FACS, facsAddr, 64},
		{tables.DSDT, dsdtAddr, len(dsdt)},
		{tables.MADT, madtAddr, len(madt)},
	} {
		assert.Equal(t, ACPITable{Addr: c.addr, Offset: int(c.addr - cfg.Base), Size: c.size}, c.got)
		assert.Zero(t, c.addr%16, "table at %#x alignment", c.addr)
		assert.Equal(t, m.at(c.addr, c.size), tables.Table(c.got))
	}

	// Tables do not overlap and lie inside the blob.
	all := []ACPITable{tables.RSDP, tables.XSDT, tables.RSDT, tables.FADT, tables.FACS, tables.DSDT, tables.MADT}
	for i, a := range all {
		assert.LessOrEqual(t, a.Offset+a.Size, len(tables.Data))
		for _, b := range all[i+1:] {
			assert.False(t, a.Offset < b.Offset+b.Size && b.Offset < a.Offset+a.Size, "tables at %#x and %#x overlap", a.Addr, b.Addr)
		}
	}
}

func TestBuildACPIAllCPUCounts(t *testing.T) {
	for cpus := 1; cpus <= MaxCPUs; cpus++ {
		for _, pci := range []bool{false, true} {
			cfg := DefaultACPIConfig(cpus)
			cfg.PCI = pci
			tables, err := BuildACPI(cfg)
			require.NoError(t, err, "cpus=%d pci=%v", cpus, pci)
			madt := tables.Table(tables.MADT)
			assert.Zero(t, acpiSum(madt), "cpus=%d", cpus)
			assert.Len(t, madt, 36+8+8*cpus+12+10+6, "cpus=%d", cpus)
		}
	}
}

func TestBuildACPIBaseLimits(t *testing.T) {
	for _, pci := range []bool{false, true} {
		cfg := DefaultACPIConfig(MaxCPUs)
		cfg.PCI = pci
		tables, err := BuildACPI(cfg)
		require.NoError(t, err)

		// The highest 64-byte aligned base at which the blob still fits:
		// the layout (FACS padding included) is that of ACPIDefaultBase.
		cfg.Base = ACPIAreaEnd - alignUp(uint64(len(tables.Data)), 64)
		high, err := BuildACPI(cfg)
		require.NoError(t, err)
		assert.Equal(t, len(tables.Data), len(high.Data))
		checkACPI(t, cfg, high)

		cfg.Base += 64
		_, err = BuildACPI(cfg)
		assert.ErrorContains(t, err, "past the BIOS area end")
	}
}

func TestBuildACPIErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*ACPIConfig)
		want string
	}{
		{"no cpus", func(c *ACPIConfig) { c.CPUs = 0 }, "0 cpus out of range"},
		{"negative cpus", func(c *ACPIConfig) { c.CPUs = -1 }, "-1 cpus out of range"},
		{"255 cpus", func(c *ACPIConfig) { c.CPUs = 255 }, "255 cpus out of range"},
		{"base below BIOS area", func(c *ACPIConfig) { c.Base = 0xdfff0 }, "outside the BIOS area"},
		{"base zero", func(c *ACPIConfig) { c.Base = 0 }, "outside the BIOS area"},
		{"base at 1 MiB", func(c *ACPIConfig) { c.Base = 0x100000 }, "outside the BIOS area"},
		{"base huge", func(c *ACPIConfig) { c.Base = 1<<64 - 16 }, "outside the BIOS area"},
		{"base unaligned", func(c *ACPIConfig) { c.Base = 0xe0008 }, "not 16-byte aligned"},
		{"blob past 1 MiB", func(c *ACPIConfig) { c.Base = 0xfff00 }, "past the BIOS area end"},
		{"no event port", func(c *ACPIConfig) { c.PM1aEventPort = 0 }, "must be non-zero"},
		{"no control port", func(c *ACPIConfig) { c.PM1aControlPort = 0 }, "must be non-zero"},
		{"event block past 0xffff", func(c *ACPIConfig) { c.PM1aEventPort = 0xfffd }, "run past port 0xffff"},
		{"control block past 0xffff", func(c *ACPIConfig) { c.PM1aControlPort = 0xffff }, "run past port 0xffff"},
		{"overlap, control inside event", func(c *ACPIConfig) { c.PM1aControlPort = 0x602 }, "overlaps"},
		{"overlap, event after control", func(c *ACPIConfig) { c.PM1aEventPort = 0x605 }, "overlaps"},
		{"same ports", func(c *ACPIConfig) { c.PM1aControlPort = c.PM1aEventPort }, "overlaps"},
		{"SCI 0", func(c *ACPIConfig) { c.SCIIRQ = 0 }, "SCI IRQ 0"},
		{"SCI 2", func(c *ACPIConfig) { c.SCIIRQ = 2 }, "SCI IRQ 2"},
		{"SCI 16", func(c *ACPIConfig) { c.SCIIRQ = 16 }, "SCI IRQ 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultACPIConfig(254)
			tt.edit(&cfg)
			tables, err := BuildACPI(cfg)
			assert.Nil(t, tables)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Contains(t, err.Error(), "acpi: ")
		})
	}

	// Adjacent blocks are fine in either order.
	for _, ports := range [][2]uint16{{0x600, 0x604}, {0x602, 0x600}, {0xfffc, 0xfffa}} {
		cfg := DefaultACPIConfig(1)
		cfg.PM1aEventPort, cfg.PM1aControlPort = ports[0], ports[1]
		_, err := BuildACPI(cfg)
		assert.NoError(t, err, "ports %#x", ports)
	}
	// The zero config is invalid, not a panic.
	_, err := BuildACPI(ACPIConfig{})
	assert.Error(t, err)
}

func TestACPIPowerOff(t *testing.T) {
	// (SLP_TYP 5 << 10) | SLP_EN | SCI_EN, as read back from PM1a_CNT.
	assert.EqualValues(t, 0x3401, ACPIPowerOffValue)
	tests := []struct {
		v    uint16
		want bool
	}{
		{0x3401, true},  // Linux's write #2 with SCI_EN reading 1
		{0x3400, true},  // the same with SCI_EN reading 0
		{0xf601, true},  // reserved bits preserved
		{0x1401, false}, // write #1: SLP_TYP without SLP_EN
		{0x2001, false}, // SLP_EN with SLP_TYP 0
		{0x3c01, false}, // SLP_TYP 7
		{0x2c01, false}, // SLP_TYP 3 (S3 on many chipsets)
		{0x0001, false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ACPIPowerOffRequested(tt.v), "%#04x", tt.v)
	}
}

// acpiSum is the byte sum of b modulo 256.
func acpiSum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}
