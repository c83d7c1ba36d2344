package pci

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestSpace(t *testing.T) *ConfigSpace {
	t.Helper()
	cs, err := NewConfigSpace(Header{VendorID: testVendor, DeviceID: testDevice, ClassCode: testClass, InterruptPin: 1})
	require.NoError(t, err)
	return cs
}

func TestNewConfigSpaceValidation(t *testing.T) {
	tests := []struct {
		name    string
		h       Header
		wantErr bool
	}{
		{name: "virtio", h: Header{VendorID: testVendor, DeviceID: testDevice, ClassCode: testClass, InterruptPin: 1}},
		{name: "INTD#", h: Header{VendorID: 1, InterruptPin: 4}},
		{name: "vendor 0xffff", h: Header{VendorID: 0xffff}, wantErr: true},
		{name: "class too wide", h: Header{VendorID: 1, ClassCode: 0x1000000}, wantErr: true},
		{name: "pin 5", h: Header{VendorID: 1, InterruptPin: 5}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewConfigSpace(tt.h)
			if tt.wantErr {
				require.ErrorIs(t, err, ErrInvalid)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestBARSizing(t *testing.T) {
	tests := []struct {
		name string
		bar  BAR
		// want are the BAR dwords after writing all ones to each (the
		// second only for 64-bit BARs), and addr an address to program.
		wantLo, wantHi uint32
		addr           uint64
	}{
		{name: "32-bit 4 KiB", bar: BAR{Kind: BARMem32, Size: 0x1000}, wantLo: 0xfffff000, addr: 0xc000_1000},
		{name: "32-bit 16 bytes", bar: BAR{Kind: BARMem32, Size: 16}, wantLo: 0xfffffff0, addr: 0xc000_0010},
		{name: "32-bit 2 GiB prefetchable", bar: BAR{Kind: BARMem32, Size: 1 << 31, Prefetchable: true}, wantLo: 0x80000008, addr: 0x8000_0000},
		{name: "64-bit 16 KiB prefetchable", bar: BAR{Kind: BARMem64, Size: 0x4000, Prefetchable: true}, wantLo: 0xffffc00c, wantHi: 0xffffffff, addr: 0x1_0000_4000},
		{name: "64-bit 4 GiB", bar: BAR{Kind: BARMem64, Size: 1 << 32}, wantLo: 0x00000004, wantHi: 0xffffffff, addr: 0x7_0000_0000},
		{name: "64-bit 8 GiB", bar: BAR{Kind: BARMem64, Size: 1 << 33}, wantLo: 0x00000004, wantHi: 0xfffffffe, addr: 0x6_0000_0000},
		{name: "I/O 32 ports", bar: BAR{Kind: BARIO, Size: 0x20}, wantLo: 0x0000ffe1, addr: 0xc020},
		{name: "I/O 256 ports", bar: BAR{Kind: BARIO, Size: 0x100}, wantLo: 0x0000ff01, addr: 0xff00},
		{name: "I/O 4 ports", bar: BAR{Kind: BARIO, Size: 4}, wantLo: 0x0000fffd, addr: 0x1004},
	}
	for _, tt := range tests {
		for _, index := range []int{0, 4} {
			t.Run(fmt.Sprintf("%s at BAR %d", tt.name, index), func(t *testing.T) {
				cs := newTestSpace(t)
				require.NoError(t, cs.AddBAR(index, tt.bar))
				reg := uint64(regBAR0 + 4*index)
				flags := cfgRead(cs, reg, 4)

				// Linux's __pci_read_base: save, write ~0, read, restore.
				cfgWrite(cs, reg, 4, 0xffffffff)
				gotLo := cfgRead(cs, reg, 4)
				assert.Equal(t, tt.wantLo, gotLo, "low dword: got %#x, want %#x", gotLo, tt.wantLo)
				cfgWrite(cs, reg, 4, flags)
				if tt.bar.Kind == BARMem64 {
					cfgWrite(cs, reg+4, 4, 0xffffffff)
					gotHi := cfgRead(cs, reg+4, 4)
					assert.Equal(t, tt.wantHi, gotHi, "high dword: got %#x, want %#x", gotHi, tt.wantHi)
					cfgWrite(cs, reg+4, 4, 0)
				}
				addr, decoding := cs.BARAddress(index)
				assert.Zero(t, addr, "address after restoring")
				assert.False(t, decoding)

				// The guest programs the address.
				cfgWrite(cs, reg, 4, uint32(tt.addr))
				if tt.bar.Kind == BARMem64 {
					cfgWrite(cs, reg+4, 4, uint32(tt.addr>>32))
				}
				addr, _ = cs.BARAddress(index)
				assert.Equal(t, tt.addr, addr, "programmed address: got %#x, want %#x", addr, tt.addr)
				assert.Equal(t, uint32(tt.addr)|flags, cfgRead(cs, reg, 4), "BAR keeps its type bits")
				assert.Equal(t, tt.bar, cs.BAR(index))
			})
		}
	}
}

func TestBARSizingWordAndByte(t *testing.T) {
	// Sizing through narrower accesses gives the same masks, byte by byte.
	cs := newTestSpace(t)
	require.NoError(t, cs.AddBAR(1, BAR{Kind: BARMem32, Size: 0x10000}))
	for i := uint64(0); i < 4; i++ {
		cfgWrite(cs, 0x14+i, 1, 0xff)
	}
	assert.Equal(t, uint32(0xffff0000), cfgRead(cs, 0x14, 4))
	cfgWrite(cs, 0x14, 2, 0x1234)
	cfgWrite(cs, 0x16, 2, 0xabcd)
	assert.Equal(t, uint32(0xabcd0000), cfgRead(cs, 0x14, 4))
}

func TestAddBARErrors(t *testing.T) {
	tests := []struct {
		name    string
		index   int
		bar     BAR
		wantErr error
	}{
		{name: "no kind", index: 0, bar: BAR{Size: 0x1000}, wantErr: ErrInvalid},
		{name: "negative index", index: -1, bar: BAR{Kind: BARMem32, Size: 0x1000}, wantErr: ErrInvalid},
		{name: "index 6", index: 6, bar: BAR{Kind: BARMem32, Size: 0x1000}, wantErr: ErrInvalid},
		{name: "64-bit at 5", index: 5, bar: BAR{Kind: BARMem64, Size: 0x1000}, wantErr: ErrInvalid},
		{name: "not a power of two", index: 0, bar: BAR{Kind: BARMem32, Size: 0x1800}, wantErr: ErrInvalid},
		{name: "memory too small", index: 0, bar: BAR{Kind: BARMem32, Size: 8}, wantErr: ErrInvalid},
		{name: "32-bit too big", index: 0, bar: BAR{Kind: BARMem32, Size: 1 << 32}, wantErr: ErrInvalid},
		{name: "I/O too big", index: 0, bar: BAR{Kind: BARIO, Size: 512}, wantErr: ErrInvalid},
		{name: "I/O too small", index: 0, bar: BAR{Kind: BARIO, Size: 2}, wantErr: ErrInvalid},
		{name: "prefetchable I/O", index: 0, bar: BAR{Kind: BARIO, Size: 16, Prefetchable: true}, wantErr: ErrInvalid},
		{name: "upper half kind", index: 0, bar: BAR{Kind: barUpper, Size: 16}, wantErr: ErrInvalid},
		{name: "slot taken", index: 2, bar: BAR{Kind: BARMem32, Size: 0x1000}, wantErr: ErrInUse},
		{name: "upper half taken", index: 1, bar: BAR{Kind: BARMem32, Size: 0x1000}, wantErr: ErrInUse},
		{name: "64-bit over a taken slot", index: 3, bar: BAR{Kind: BARMem64, Size: 0x1000}, wantErr: ErrInUse},
		{name: "64-bit free pair", index: 4, bar: BAR{Kind: BARMem64, Size: 0x1000}},
	}
	cs := newTestSpace(t)
	require.NoError(t, cs.AddBAR(0, BAR{Kind: BARMem64, Size: 0x1000}))
	require.NoError(t, cs.AddBAR(2, BAR{Kind: BARIO, Size: 0x10}))
	require.NoError(t, cs.AddBAR(3, BAR{Kind: BARIO, Size: 0x10}))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cs.AddBAR(tt.index, tt.bar)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr, "got %v, want %v", err, tt.wantErr)
		})
	}
	assert.Equal(t, BAR{}, cs.BAR(1), "the upper half of a 64-bit BAR is not a BAR")
	assert.Equal(t, BAR{}, cs.BAR(7))
	addr, dec := cs.BARAddress(1)
	assert.Zero(t, addr)
	assert.False(t, dec)
}

func TestBARListener(t *testing.T) {
	f := newVirtioFunction(t)
	cs, moves := f.cs, f.bars
	const (
		mem  = 0x1_0000_0000
		mmio = 0xc000_0000
		io   = 0xc000
	)
	steps := []struct {
		name  string
		do    func()
		want  []barMove
		check func(t *testing.T)
	}{
		{
			name: "program while decoding is off",
			do: func() {
				cfgWrite(cs, 0x10, 4, mem&0xffffffff)
				cfgWrite(cs, 0x14, 4, uint32(mem>>32))
				cfgWrite(cs, 0x18, 4, mmio)
				cfgWrite(cs, 0x1c, 4, io)
			},
		},
		{
			name: "enable memory",
			do:   func() { cfgWrite(cs, regCommand, 2, CommandMemorySpace) },
			want: []barMove{{0, NoAddress, mem}, {2, NoAddress, mmio}},
		},
		{
			name: "enable I/O too",
			do:   func() { cfgWrite(cs, regCommand, 2, CommandMemorySpace|CommandIOSpace|CommandBusMaster) },
			want: []barMove{{3, NoAddress, io}},
		},
		{
			name: "rewrite the same address",
			do:   func() { cfgWrite(cs, 0x18, 4, mmio) },
		},
		{
			name: "move the 64-bit BAR half by half while decoding",
			do: func() {
				cfgWrite(cs, 0x10, 4, 0x8000)
				cfgWrite(cs, 0x14, 4, 2)
			},
			want: []barMove{{0, mem, 0x1_0000_8000}, {0, 0x1_0000_8000, 0x2_0000_8000}},
		},
		{
			name: "sizing with decoding on is a move",
			do:   func() { cfgWrite(cs, 0x1c, 4, 0xffffffff) },
			want: []barMove{{3, io, 0xffe0}},
		},
		{
			name: "disable everything",
			do:   func() { cfgWrite(cs, regCommand, 2, 0) },
			want: []barMove{{0, 0x2_0000_8000, NoAddress}, {2, mmio, NoAddress}, {3, 0xffe0, NoAddress}},
		},
		{
			name: "firmware-style programming while off",
			do:   func() { require.NoError(t, cs.SetBARAddress(2, 0xd000_0000)) },
			check: func(t *testing.T) {
				addr, dec := cs.BARAddress(2)
				assert.Equal(t, uint64(0xd000_0000), addr)
				assert.False(t, dec)
			},
		},
		{
			name: "byte write to Command enables memory",
			do:   func() { cfgWrite(cs, regCommand, 1, CommandMemorySpace) },
			want: []barMove{{0, NoAddress, 0x2_0000_8000}, {2, NoAddress, 0xd000_0000}},
		},
		{
			name: "firmware-style programming while on",
			do:   func() { require.NoError(t, cs.SetBARAddress(0, 0x3_0000_0000)) },
			want: []barMove{{0, 0x2_0000_8000, 0x3_0000_0000}},
			check: func(t *testing.T) {
				assert.Equal(t, uint32(0x0000000c), cfgRead(cs, 0x10, 4), "type bits kept")
				assert.Equal(t, uint32(3), cfgRead(cs, 0x14, 4))
			},
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.do()
			got := moves.take()
			assert.Equal(t, s.want, got, "got %v, want %v", got, s.want)
			if s.check != nil {
				s.check(t)
			}
		})
	}
}

func TestSetBARAddressErrors(t *testing.T) {
	f := newVirtioFunction(t)
	tests := []struct {
		name  string
		index int
		addr  uint64
		ok    bool
	}{
		{name: "64-bit above 4 GiB", index: 0, addr: 0xffff_ffff_ffff_c000, ok: true},
		{name: "64-bit misaligned", index: 0, addr: 0x1000, ok: false},
		{name: "upper half", index: 1, addr: 0, ok: false},
		{name: "32-bit at the top", index: 2, addr: 0xffff_f000, ok: true},
		{name: "32-bit above 4 GiB", index: 2, addr: 0x1_0000_0000, ok: false},
		{name: "I/O at the top", index: 3, addr: 0xffe0, ok: true},
		{name: "I/O beyond 64 KiB", index: 3, addr: 0x10000, ok: false},
		{name: "unimplemented", index: 4, addr: 0, ok: false},
		{name: "out of range", index: 6, addr: 0, ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.cs.SetBARAddress(tt.index, tt.addr)
			if tt.ok {
				require.NoError(t, err)
				got, _ := f.cs.BARAddress(tt.index)
				assert.Equal(t, tt.addr, got)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
}

// TestReadOnlyFields writes all ones to every dword (and every byte) of the
// header and checks what changed.
func TestReadOnlyFields(t *testing.T) {
	// want is each header dword after all ones were written to all of them
	// (BAR 0 is a 64-bit prefetchable 16 KiB, BAR 2 a 32-bit 4 KiB, BAR 3
	// 32 ports of I/O).
	want := map[uint64]uint32{
		0x00: testDevice<<16 | testVendor,
		0x04: 0x0010<<16 | commandWritable, // status: capabilities list only
		0x08: testClass<<8 | 1,
		0x0c: 0x0000ffff, // header type 0, BIST 0; cache line and latency RW
		0x10: 0xffffc00c,
		0x14: 0xffffffff,
		0x18: 0xfffff000,
		0x1c: 0x0000ffe1,
		0x20: 0,
		0x24: 0,
		0x28: 0,
		0x2c: 0x0040<<16 | testVendor,
		0x30: 0,    // no expansion ROM
		0x34: 0x40, // capabilities pointer
		0x38: 0,
		0x3c: 0x000001ff, // interrupt pin INTA#, line RW
	}
	for _, width := range []int{1, 2, 4} {
		t.Run(fmt.Sprintf("%d-byte writes", width), func(t *testing.T) {
			f := newVirtioFunction(t)
			var before [ConfigSize]byte
			for reg := 0; reg < ConfigSize; reg += 4 {
				binary.LittleEndian.PutUint32(before[reg:], cfgRead(f.cs, uint64(reg), 4))
			}
			for reg := uint64(0); reg < ConfigSize; reg += uint64(width) {
				cfgWrite(f.cs, reg, width, 0xffffffff)
			}
			for reg := uint64(0); reg < 0x40; reg += 4 {
				got := cfgRead(f.cs, reg, 4)
				assert.Equal(t, want[reg], got, "register %#x: got %#x, want %#x", reg, got, want[reg])
			}
			// In the capabilities, only MSI-X Enable/Function Mask and the
			// virtio PCI_CFG window fields may change.
			writable := map[uint64]bool{uint64(f.msixCap) + 3: true}
			pc := uint64(f.caps[VirtioPCICfg])
			writable[pc+virtioCapBAR] = true
			for i := uint64(virtioCapOffset); i < virtioCapExtra+4; i++ {
				writable[pc+i] = true
			}
			for reg := uint64(0x40); reg < ConfigSize; reg++ {
				got := byte(cfgRead(f.cs, reg, 1))
				if writable[reg] {
					continue
				}
				assert.Equal(t, before[reg], got, "register %#x: got %#x, want %#x", reg, got, before[reg])
			}
			assert.Equal(t, byte(0xc0|(testVectors-1)>>8), byte(cfgRead(f.cs, uint64(f.msixCap)+3, 1)), "MSI-X control high byte")
			assert.Zero(t, f.cs.InvalidAccesses())
		})
	}
}

func TestStatusBits(t *testing.T) {
	cs := newTestSpace(t)
	// Pretend the function logged every error the status register has.
	cs.mu.Lock()
	binary.LittleEndian.PutUint16(cs.regs[regStatus:], statusW1C)
	cs.mu.Unlock()
	cs.SetInterruptStatus(true)
	got := cfgRead(cs, regStatus, 2)
	assert.Equal(t, uint32(statusW1C|StatusInterrupt), got)

	// Writing zeros changes nothing; writing ones clears only W1C bits.
	cfgWrite(cs, regStatus, 2, 0)
	assert.Equal(t, uint32(statusW1C|StatusInterrupt), cfgRead(cs, regStatus, 2))
	cfgWrite(cs, regStatus, 2, 1<<13) // received master abort
	assert.Equal(t, uint32(statusW1C&^(1<<13)|StatusInterrupt), cfgRead(cs, regStatus, 2))
	// A dword write to Command with zeros in the Status half leaves Status
	// alone (one that wrote back the ones it read would clear them, as on
	// hardware).
	cfgWrite(cs, regCommand, 4, 0x0000_0002)
	assert.Equal(t, uint32(statusW1C&^(1<<13)|StatusInterrupt), cfgRead(cs, regStatus, 2))
	cfgWrite(cs, regStatus, 2, 0xffff)
	assert.Equal(t, uint32(StatusInterrupt), cfgRead(cs, regStatus, 2), "only the interrupt status is left")
	cs.SetInterruptStatus(false)
	assert.Zero(t, cfgRead(cs, regStatus, 2))
	assert.Equal(t, uint16(CommandMemorySpace), cs.Command())
}

func TestInterruptLine(t *testing.T) {
	cs := newTestSpace(t)
	cs.SetInterruptLine(10)
	assert.Equal(t, uint32(10), cfgRead(cs, regInterruptLine, 1), "firmware-set line")
	cfgWrite(cs, regInterruptLine, 1, 11)
	assert.Equal(t, uint8(11), cs.InterruptLine())
	cfgWrite(cs, regInterruptPin, 1, 3)
	assert.Equal(t, uint32(1), cfgRead(cs, regInterruptPin, 1), "pin is read-only")
}

// walkCapabilities follows the capability list as Linux's
// __pci_find_next_cap_ttl does, with its TTL of 48.
func walkCapabilities(t *testing.T, f Function) []int {
	t.Helper()
	require.NotZero(t, cfgRead(f, regStatus, 2)&StatusCapabilities, "Status bit 4")
	var offs []int
	pos := int(cfgRead(f, regCapabilities, 1))
	for ttl := 48; ttl > 0 && pos >= 0x40; ttl-- {
		require.Zero(t, pos&3, "capability at %#x not dword aligned", pos)
		offs = append(offs, pos)
		pos = int(cfgRead(f, uint64(pos)+1, 1))
	}
	require.Zero(t, pos, "list must end with a zero next pointer")
	return offs
}

func TestCapabilityList(t *testing.T) {
	f := newVirtioFunction(t)
	offs := walkCapabilities(t, f.cs)
	type capSeen struct {
		id, cfgType, bar byte
		offset, length   uint32
	}
	var got []capSeen
	for _, off := range offs {
		o := uint64(off)
		c := capSeen{id: byte(cfgRead(f.cs, o, 1))}
		if c.id == CapIDVendor {
			c.cfgType = byte(cfgRead(f.cs, o+virtioCapCfgType, 1))
			c.bar = byte(cfgRead(f.cs, o+virtioCapBAR, 1))
			c.offset = cfgRead(f.cs, o+virtioCapOffset, 4)
			c.length = cfgRead(f.cs, o+virtioCapLength, 4)
		}
		got = append(got, c)
	}
	want := []capSeen{
		{id: CapIDVendor, cfgType: byte(VirtioCommonCfg), offset: 0x0000, length: 0x40},
		{id: CapIDVendor, cfgType: byte(VirtioISRCfg), offset: 0x1000, length: 1},
		{id: CapIDVendor, cfgType: byte(VirtioDeviceCfg), offset: 0x2000, length: 0x3c},
		{id: CapIDVendor, cfgType: byte(VirtioNotifyCfg), offset: 0x3000, length: 0x1000},
		{id: CapIDVendor, cfgType: byte(VirtioPCICfg)},
		{id: CapIDMSIX},
	}
	assert.Equal(t, want, got)
	assert.Equal(t, []int{0x40, 0x50, 0x60, 0x70, 0x84, 0x98}, offs, "capability offsets")
	assert.Equal(t, offs[3], f.caps[VirtioNotifyCfg])
	assert.Equal(t, offs[5], f.msixCap)

	notify := uint64(f.caps[VirtioNotifyCfg])
	assert.Equal(t, uint32(20), cfgRead(f.cs, notify+virtioCapLen, 1), "notify cap_len")
	assert.Equal(t, uint32(4), cfgRead(f.cs, notify+virtioCapExtra, 4), "notify_off_multiplier")

	m := uint64(f.msixCap)
	assert.Equal(t, uint32(testVectors-1), cfgRead(f.cs, m+msixControl, 2), "MSI-X table size")
	assert.Equal(t, uint32(testMSIXBAR), cfgRead(f.cs, m+msixTable, 4), "table offset/BIR")
	assert.Equal(t, uint32(testPBAOff|testMSIXBAR), cfgRead(f.cs, m+msixPBA, 4), "PBA offset/BIR")
}

func TestCapabilityHooksAndMasks(t *testing.T) {
	cs := newTestSpace(t)
	var seen [][]byte
	off, err := cs.AddCapability(Capability{
		ID:        0x09,
		Body:      []byte{6, 0xaa, 0xbb, 0xcc},
		WriteMask: []byte{0x00, 0x0f, 0xff, 0x00},
		OnWrite:   func(b []byte) { seen = append(seen, b) },
	})
	require.NoError(t, err)
	require.Equal(t, 0x40, off)
	other, err := cs.AddCapability(Capability{ID: 0x05, Body: []byte{1, 2}})
	require.NoError(t, err)
	require.Equal(t, 0x48, other)

	cfgWrite(cs, 0x40, 4, 0xffffffff) // ID, next and cap_len are read-only
	cfgWrite(cs, 0x44, 2, 0x1234)
	assert.Equal(t, uint32(0xaf06_4809), cfgRead(cs, 0x40, 4), "low nibble of body[1] writable")
	assert.Equal(t, uint32(0x0000_cc34), cfgRead(cs, 0x44, 4), "body[2] writable, body[3] and padding not")
	want := [][]byte{
		{0x09, 0x48, 6, 0xaf, 0xbb, 0xcc},
		{0x09, 0x48, 6, 0xaf, 0x34, 0xcc},
	}
	assert.Equal(t, want, seen, "hook sees the whole capability after each write")

	cfgWrite(cs, 0x48, 4, 0) // another capability: no call
	cfgWrite(cs, 0x3c, 4, 0) // the header: no call
	assert.Len(t, seen, 2)

	_, err = cs.AddCapability(Capability{ID: 1, Body: []byte{1, 2}, WriteMask: []byte{1}})
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestCapabilitySpace(t *testing.T) {
	cs := newTestSpace(t)
	// 0x40-0xff holds 192 bytes; a capability with a 16-byte body takes
	// 18, padded to 20: nine fit (180 bytes), a tenth would end at 0x116.
	n := 0
	for {
		_, err := cs.AddCapability(Capability{ID: 0x09, Body: make([]byte, 16)})
		if err != nil {
			require.ErrorIs(t, err, ErrNoSpace)
			break
		}
		n++
	}
	assert.Equal(t, 9, n)
	// A 12-byte capability still fits at 0xf4.
	off, err := cs.AddCapability(Capability{ID: 0x01, Body: make([]byte, 10)})
	require.NoError(t, err)
	assert.Equal(t, 0xf4, off)
	_, err = cs.AddCapability(Capability{ID: 0x01})
	require.ErrorIs(t, err, ErrNoSpace)
	assert.Len(t, walkCapabilities(t, cs), 10)
}

func TestConfigSpaceContract(t *testing.T) {
	cs := newTestSpace(t)
	tests := []struct {
		name   string
		offset uint64
		n      int
	}{
		{name: "empty", offset: 0, n: 0},
		{name: "three bytes", offset: 0, n: 3},
		{name: "qword", offset: 0, n: 8},
		{name: "misaligned word", offset: 1, n: 2},
		{name: "misaligned dword", offset: 2, n: 4},
		{name: "at 256", offset: 256, n: 1},
		{name: "huge", offset: ^uint64(0) - 1, n: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := cs.InvalidAccesses()
			data := make([]byte, tt.n)
			cs.ReadConfig(tt.offset, data)
			for i, v := range data {
				assert.Equal(t, byte(0xff), v, "byte %d", i)
			}
			fill(data, 0)
			cs.WriteConfig(tt.offset, data)
			assert.Equal(t, before+2, cs.InvalidAccesses())
		})
	}
	assert.Equal(t, uint32(testDevice<<16|testVendor), cfgRead(cs, 0, 4), "identity untouched")
}
