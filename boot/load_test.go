package boot

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/govmm/govmm/memory"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var le = binary.LittleEndian

func newGuest(t *testing.T, size uint64) *memory.Guest {
	t.Helper()
	mem, err := memory.New(size)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, mem.Close()) })
	return mem
}

func parseReal(t *testing.T) *BzImage {
	t.Helper()
	k, err := ParseBzImage(realKernel(t))
	require.NoError(t, err)
	return k
}

func parseSynthetic(t *testing.T) *BzImage {
	t.Helper()
	k, err := ParseBzImage(syntheticBzImage(8192))
	require.NoError(t, err)
	return k
}

// pattern returns n bytes that differ from zero and from each other at
// small offsets, so misplaced copies show.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 1)
	}
	return b
}

func slice(t *testing.T, mem *memory.Guest, gpa, n uint64) []byte {
	t.Helper()
	b, err := mem.Slice(gpa, n)
	require.NoError(t, err)
	return b
}

// readE820 decodes the e820 table from a zero page.
func readE820(bp []byte) []E820Entry {
	n := int(bp[0x1e8])
	var got []E820Entry
	for i := range n {
		e := bp[0x2d0+i*20:]
		got = append(got, E820Entry{Addr: le.Uint64(e), Size: le.Uint64(e[8:]), Type: le.Uint32(e[16:])})
	}
	return got
}

func TestLoadBzImage(t *testing.T) {
	k := parseReal(t)
	initrd := pattern(1<<20 + 123)
	const cmdline = "console=ttyS0 root=/dev/vda panic=-1"
	mem := newGuest(t, 512<<20)

	st, err := Load(mem, k, Config{Cmdline: cmdline, Initrd: initrd, CPUs: 1})
	require.NoError(t, err)

	wantState := &CPUState{
		RIP: 0x1000200, RSI: 0x7000, RFLAGS: 0x2,
		CR0: 0x80000011, CR3: 0x9000, CR4: 0x20, EFER: 0x500,
		GDTBase: 0x500, GDTLimit: 31,
		Code: Segment{Selector: 0x10, Limit: 0xffffffff, Type: 0xb, Present: true, S: true, L: true, G: true},
		Data: Segment{Selector: 0x18, Limit: 0xffffffff, Type: 0x3, Present: true, S: true, DB: true, G: true},
	}
	assert.Equal(t, wantState, st)

	payload := k.ProtectedMode()
	assert.True(t, bytes.Equal(payload, slice(t, mem, 0x1000000, uint64(len(payload)))), "kernel payload not at 0x1000000")

	bp := slice(t, mem, ZeroPageAddr, ZeroPageSize)
	wantInitrd := uint64(512<<20-len(initrd)) &^ 0xfff
	fields := []struct {
		name      string
		got, want uint64
	}{
		{"type_of_loader", uint64(bp[0x210]), 0xff},
		{"loadflags", uint64(bp[0x211]), LoadedHigh | CanUseHeap},
		{"heap_end_ptr", uint64(le.Uint16(bp[0x224:])), 0xfe00},
		{"cmd_line_ptr", uint64(le.Uint32(bp[0x228:])), 0x20000},
		{"ext_cmd_line_ptr", uint64(le.Uint32(bp[0x0c8:])), 0},
		{"ramdisk_image", uint64(le.Uint32(bp[0x218:])), wantInitrd},
		{"ext_ramdisk_image", uint64(le.Uint32(bp[0x0c0:])), 0},
		{"ramdisk_size", uint64(le.Uint32(bp[0x21c:])), uint64(len(initrd))},
		{"ext_ramdisk_size", uint64(le.Uint32(bp[0x0c4:])), 0},
		{"boot_flag", uint64(le.Uint16(bp[0x1fe:])), 0xaa55},
		{"header magic", uint64(le.Uint32(bp[0x202:])), uint64(le.Uint32([]byte("HdrS")))},
		{"version", uint64(le.Uint16(bp[0x206:])), 0x020f},
		{"setup_sects", uint64(bp[0x1f1]), 39},
		{"init_size", uint64(le.Uint32(bp[0x260:])), 0x3f98000},
		{"cmdline_size", uint64(le.Uint32(bp[0x238:])), 2047},
		{"byte after the header", uint64(bp[0x26c]), 0},
		{"EBDA segment (BDA 0x40e)", uint64(le.Uint16(slice(t, mem, 0x40e, 2))), 0x9e00},
		{"base memory KiB (BDA 0x413)", uint64(le.Uint16(slice(t, mem, 0x413, 2))), 632},
	}
	for _, f := range fields {
		assert.Equal(t, f.want, f.got, "%s: got %#x, want %#x", f.name, f.got, f.want)
	}
	assert.Equal(t, make([]byte, 0xc0), bp[:0xc0], "screen_info and friends must stay zero")

	gotCmdline := slice(t, mem, 0x20000, uint64(len(cmdline)+1))
	assert.Equal(t, cmdline+"\x00", string(gotCmdline))
	assert.True(t, bytes.Equal(initrd, slice(t, mem, wantInitrd, uint64(len(initrd)))), "initrd bytes not at %#x", wantInitrd)
	assert.GreaterOrEqual(t, wantInitrd, uint64(0x1000000+0x3f98000), "initrd overlaps the kernel's init_size area")

	wantE820 := []E820Entry{
		{Addr: 0, Size: 0x9e000, Type: E820RAM},
		{Addr: 0x9e000, Size: 0x62000, Type: E820Reserved},
		{Addr: 0x100000, Size: 512<<20 - 0x100000, Type: E820RAM},
	}
	assert.Equal(t, wantE820, readE820(bp))

	gdt := slice(t, mem, 0x500, 32)
	wantGDT := []uint64{0, 0, 0x00af9b000000ffff, 0x00cf93000000ffff}
	for i, want := range wantGDT {
		got := le.Uint64(gdt[i*8:])
		assert.Equal(t, want, got, "gdt[%d]: got %#x, want %#x", i, got, want)
	}
}

func TestLoadPageTables(t *testing.T) {
	mem := newGuest(t, 64<<20)
	_, err := Load(mem, parseSynthetic(t), Config{CPUs: 1})
	require.NoError(t, err)

	entries := []struct {
		name string
		gpa  uint64
		want uint64
	}{
		{"PML4[0]", 0x9000, 0xa003},
		{"PML4[1]", 0x9008, 0},
		{"PML4[511]", 0x9ff8, 0},
		{"PDPT[0]", 0xa000, 0xb003},
		{"PDPT[1]", 0xa008, 0xc003},
		{"PDPT[2]", 0xa010, 0xd003},
		{"PDPT[3]", 0xa018, 0xe003},
		{"PDPT[4]", 0xa020, 0},
		{"PD0[0]", 0xb000, 0x83},
		{"PD0[8] (16 MiB)", 0xb040, 0x1000083},
		{"PD1[0] (1 GiB)", 0xc000, 0x40000083},
		{"PD3[511] (4 GiB - 2 MiB)", 0xeff8, 0xffe00083},
	}
	for _, e := range entries {
		got, err := mem.ReadUint64(e.gpa)
		require.NoError(t, err)
		assert.Equal(t, e.want, got, "%s at %#x: got %#x, want %#x", e.name, e.gpa, got, e.want)
	}
	pds := slice(t, mem, 0xb000, 4*4096)
	for i := range 2048 {
		got, want := le.Uint64(pds[i*8:]), uint64(i)<<21|0x83
		if got != want {
			t.Fatalf("PD entry %d: got %#x, want %#x (identity 2 MiB page)", i, got, want)
		}
	}
}

func TestLoadE820AndInitrd(t *testing.T) {
	tests := []struct {
		name       string
		size       uint64
		initrd     int
		wantInitrd uint64 // end of the initrd's allowed area
		wantE820   []E820Entry
	}{
		{
			name: "128 MiB", size: 128 << 20, initrd: 5 << 20, wantInitrd: 128 << 20,
			wantE820: []E820Entry{
				{0, 0x9e000, E820RAM},
				{0x9e000, 0x62000, E820Reserved},
				{0x100000, 127 << 20, E820RAM},
			},
		},
		{
			// RAM above the MMIO hole, and initrd_addr_max (2 GiB)
			// below the end of low RAM (3 GiB).
			name: "4 GiB", size: 4 << 30, initrd: 3<<20 + 1, wantInitrd: 2 << 30,
			wantE820: []E820Entry{
				{0, 0x9e000, E820RAM},
				{0x9e000, 0x62000, E820Reserved},
				{0x100000, 0xc0000000 - 0x100000, E820RAM},
				{0x100000000, 1 << 30, E820RAM},
			},
		},
	}
	k := parseReal(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := newGuest(t, tt.size)
			initrd := pattern(tt.initrd)
			_, err := Load(mem, k, Config{Initrd: initrd, CPUs: 2})
			require.NoError(t, err)
			bp := slice(t, mem, ZeroPageAddr, ZeroPageSize)
			assert.Equal(t, tt.wantE820, readE820(bp))
			want := (tt.wantInitrd - uint64(tt.initrd)) &^ 0xfff
			got := uint64(le.Uint32(bp[0x218:]))
			assert.Equal(t, want, got, "ramdisk_image: got %#x, want %#x", got, want)
			assert.True(t, bytes.Equal(initrd, slice(t, mem, want, uint64(tt.initrd))), "initrd bytes not at %#x", want)
		})
	}
}

func TestLoadWithoutInitrd(t *testing.T) {
	mem := newGuest(t, 64<<20)
	_, err := Load(mem, parseSynthetic(t), Config{CPUs: 1})
	require.NoError(t, err)
	bp := slice(t, mem, ZeroPageAddr, ZeroPageSize)
	for _, off := range []int{0x218, 0x21c, 0x0c0, 0x0c4} {
		assert.Zero(t, le.Uint32(bp[off:]), "ramdisk field at %#x: got %#x, want 0", off, le.Uint32(bp[off:]))
	}
	assert.Equal(t, byte(0), slice(t, mem, 0x20000, 1)[0], "empty command line: got no NUL at 0x20000")
}

// mpEntry is one decoded MP configuration table entry.
type mpEntry struct {
	typ  byte
	data []byte
}

// readMPTable finds the MP floating pointer through the BIOS data area, as
// Linux does, checks both checksums and returns the table's entries and
// its header.
func readMPTable(t *testing.T, mem *memory.Guest) ([]byte, []mpEntry) {
	t.Helper()
	seg, err := mem.ReadUint16(0x40e)
	require.NoError(t, err)
	ebda := uint64(seg) << 4
	fp := slice(t, mem, ebda, 16)
	require.Equal(t, "_MP_", string(fp[:4]), "floating pointer signature")
	assert.Zero(t, sum(fp), "floating pointer checksum: got sum %#x, want 0", sum(fp))
	assert.Equal(t, byte(1), fp[8], "floating pointer length")
	assert.Equal(t, byte(4), fp[9], "spec rev")
	assert.Equal(t, []byte{0, 0, 0, 0, 0}, fp[11:16], "feature bytes")

	addr := uint64(le.Uint32(fp[4:]))
	hdr := slice(t, mem, addr, 44)
	require.Equal(t, "PCMP", string(hdr[:4]), "config table signature")
	length := uint64(le.Uint16(hdr[4:]))
	table := slice(t, mem, addr, length)
	assert.Zero(t, sum(table), "config table checksum: got sum %#x, want 0", sum(table))
	assert.LessOrEqual(t, addr+length, uint64(0xa0000), "config table runs past the EBDA")

	var entries []mpEntry
	for off := 44; off < len(table); {
		n := 8
		if table[off] == 0 {
			n = 20
		}
		require.LessOrEqual(t, off+n, len(table), "entry at %d overruns the table", off)
		entries = append(entries, mpEntry{typ: table[off], data: table[off : off+n]})
		off += n
	}
	assert.Equal(t, len(entries), int(le.Uint16(hdr[34:])), "entry count")
	return hdr, entries
}

func sum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return s
}

func TestLoadMPTable(t *testing.T) {
	k := parseSynthetic(t)
	for _, cpus := range []int{1, 4, 254} {
		t.Run("", func(t *testing.T) {
			mem := newGuest(t, 64<<20)
			_, err := Load(mem, k, Config{CPUs: cpus})
			require.NoError(t, err)
			hdr, entries := readMPTable(t, mem)

			assert.Equal(t, byte(4), hdr[6], "spec rev")
			assert.Equal(t, "GOVMM   ", string(hdr[8:16]), "OEM id")
			assert.Equal(t, uint32(0xfee00000), le.Uint32(hdr[36:]), "local APIC address")

			count := map[byte]int{}
			var lastType byte
			for i, e := range entries {
				assert.GreaterOrEqual(t, e.typ, lastType, "entry %d out of type order", i)
				lastType = e.typ
				count[e.typ]++
			}
			assert.Equal(t, map[byte]int{0: cpus, 1: 1, 2: 1, 3: 16, 4: 2}, count, "entries by type for %d cpus", cpus)

			for i, e := range entries[:cpus] {
				wantFlags := byte(1)
				if i == 0 {
					wantFlags = 3
				}
				assert.Equal(t, []byte{0, byte(i), 0x14, wantFlags}, e.data[:4], "processor %d", i)
				assert.Equal(t, uint32(0x600), le.Uint32(e.data[4:]), "processor %d signature", i)
				assert.Equal(t, uint32(0x201), le.Uint32(e.data[8:]), "processor %d features", i)
			}
			bus := entries[cpus]
			assert.Equal(t, "\x01\x00ISA   ", string(bus.data), "bus entry")
			ioapic := entries[cpus+1]
			assert.Equal(t, []byte{2, byte(cpus), 0x11, 1}, ioapic.data[:4], "ioapic entry")
			assert.Equal(t, uint32(0xfec00000), le.Uint32(ioapic.data[4:]), "ioapic address")
			for irq, e := range entries[cpus+2 : cpus+18] {
				want := []byte{3, 0, 0, 0, 0, byte(irq), byte(cpus), byte(irq)}
				assert.Equal(t, want, e.data, "irq %d routing", irq)
			}
			assert.Equal(t, []byte{4, 3, 0, 0, 0, 0, 0xff, 0}, entries[cpus+18].data, "ExtINT on LINT0")
			assert.Equal(t, []byte{4, 1, 0, 0, 0, 0, 0xff, 1}, entries[cpus+19].data, "NMI on LINT1")
		})
	}
}

func TestLoadCmdlineLimits(t *testing.T) {
	k := parseReal(t)
	mem := newGuest(t, 128<<20)
	cmdline := strings.Repeat("x", 2047) // cmdline_size excludes the NUL
	_, err := Load(mem, k, Config{Cmdline: cmdline, CPUs: 1})
	require.NoError(t, err)
	assert.Equal(t, cmdline+"\x00", string(slice(t, mem, 0x20000, 2048)))
}

func TestLoadErrors(t *testing.T) {
	real := parseReal(t)
	synthetic := parseSynthetic(t)
	hugeCmdline := syntheticBzImage(4096)
	le.PutUint32(hugeCmdline[hdrCmdlineSize:], 0xffffffff)
	hugeCmdlineKernel, err := ParseBzImage(hugeCmdline)
	require.NoError(t, err)

	highOnly := func(t *testing.T) *memory.Guest {
		mem, err := memory.FromBytes(memory.Region{GPA: 0x100000, Host: make([]byte, 64<<20)})
		require.NoError(t, err)
		return mem
	}
	tinyLow := func(t *testing.T) *memory.Guest {
		mem, err := memory.FromBytes(memory.Region{GPA: 0, Host: make([]byte, 0x80000)})
		require.NoError(t, err)
		return mem
	}
	manyRegions := func(t *testing.T) *memory.Guest {
		regions := []memory.Region{{GPA: 0, Host: make([]byte, 32<<20)}}
		for i := range 130 {
			regions = append(regions, memory.Region{GPA: 1<<32 + uint64(i)*0x2000, Host: make([]byte, 0x1000)})
		}
		mem, err := memory.FromBytes(regions...)
		require.NoError(t, err)
		return mem
	}
	sized := func(size uint64) func(t *testing.T) *memory.Guest {
		return func(t *testing.T) *memory.Guest { return newGuest(t, size) }
	}

	tests := []struct {
		name    string
		mem     func(t *testing.T) *memory.Guest
		kernel  *BzImage
		cfg     Config
		wantErr string
	}{
		{"init_size larger than RAM", sized(32 << 20), real, Config{CPUs: 1},
			"kernel needs init_size 64 MiB at 0x1000000 but guest RAM below 4 GiB ends at 0x2000000: raise --mem"},
		{"initrd too large", sized(96 << 20), real, Config{CPUs: 1, Initrd: make([]byte, 20<<20)},
			"initrd of 20 MiB does not fit in guest RAM (16 MiB free between the kernel at 0x4f98000 and 0x6000000): raise --mem"},
		{"initrd larger than RAM", sized(96 << 20), real, Config{CPUs: 1, Initrd: make([]byte, 200<<20)},
			"initrd of 200 MiB does not fit in guest RAM"},
		{"command line too long", sized(128 << 20), real, Config{CPUs: 1, Cmdline: strings.Repeat("x", 2048)},
			"command line is 2048 bytes; this kernel accepts at most 2047"},
		{"command line past the loader's area", sized(64 << 20), hugeCmdlineKernel, Config{CPUs: 1, Cmdline: strings.Repeat("x", CmdlineMax)},
			"command line is 65536 bytes; this kernel accepts at most 65535"},
		{"command line with NUL", sized(64 << 20), synthetic, Config{CPUs: 1, Cmdline: "a\x00b"},
			"command line contains a NUL byte at offset 1"},
		{"0 cpus", sized(64 << 20), synthetic, Config{CPUs: 0}, "0 cpus out of range: the MP table supports 1 to 254"},
		{"255 cpus", sized(64 << 20), synthetic, Config{CPUs: 255}, "255 cpus out of range: the MP table supports 1 to 254"},
		{"no RAM at 0", highOnly, synthetic, Config{CPUs: 1}, "guest memory has no RAM at address 0"},
		{"low RAM below 1 MiB", tinyLow, synthetic, Config{CPUs: 1}, "guest RAM at address 0 ends at 0x80000, below the 0x100000"},
		{"too many e820 entries", manyRegions, synthetic, Config{CPUs: 1}, "guest memory needs 133 e820 entries; boot_params holds at most 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := tt.mem(t)
			st, err := Load(mem, tt.kernel, tt.cfg)
			require.Error(t, err, "got state %+v, want error %q", st, tt.wantErr)
			assert.Nil(t, st)
			assert.Contains(t, err.Error(), tt.wantErr, "got %q, want it to contain %q", err, tt.wantErr)

			// Nothing is written on error.
			regions := mem.Regions()
			if regions[0].GPA == 0 {
				low := regions[0].Host[:min(len(regions[0].Host), 1<<20)]
				assert.True(t, bytes.Equal(make([]byte, len(low)), low), "low memory written despite the error")
			}
		})
	}
	_, err = Load(nil, real, Config{CPUs: 1})
	assert.ErrorContains(t, err, "nil guest memory")
}
