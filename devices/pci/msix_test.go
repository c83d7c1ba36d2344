package pci

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readTable(tb *MSIXTable, off uint64) uint32 {
	b := make([]byte, 4)
	tb.ReadTable(off, b)
	return binary.LittleEndian.Uint32(b)
}

func writeTable(tb *MSIXTable, off uint64, v uint32) {
	tb.WriteTable(off, binary.LittleEndian.AppendUint32(nil, v))
}

func readPBA(tb *MSIXTable) uint64 {
	b := make([]byte, 8)
	tb.ReadPBA(0, b)
	return binary.LittleEndian.Uint64(b)
}

func TestMSIXResetState(t *testing.T) {
	f := newVirtioFunction(t)
	for i := range testVectors {
		base := uint64(i * msixEntrySize)
		assert.Zero(t, readTable(f.msix, base+entryAddrLo))
		assert.Zero(t, readTable(f.msix, base+entryAddrHi))
		assert.Zero(t, readTable(f.msix, base+entryData))
		assert.Equal(t, uint32(1), readTable(f.msix, base+entryControl), "vector %d masked after reset", i)
		assert.Equal(t, MSIXVector{Masked: true}, f.msix.Vector(i))
	}
	assert.Zero(t, readPBA(f.msix))
	assert.False(t, f.msix.Enabled())
	assert.False(t, f.msix.Trigger(0), "MSI-X disabled: fall back to INTx")
	assert.Equal(t, uint64(testVectors*16), f.msix.TableSize())
	assert.Equal(t, uint64(8), f.msix.PBASize())
	assert.Empty(t, f.vectors.take())
}

func TestMSIXSequence(t *testing.T) {
	f := newVirtioFunction(t)
	ctrl := uint64(f.msixCap + msixControl)
	const (
		addr0 = 0xfee0_1000
		data0 = 0x4031
		addr1 = 0x0000_0001_fee0_2000 // a high half, to see it carried
		data1 = 0x4041
	)
	v0 := MSIXVector{Address: addr0, Data: data0}
	v1 := MSIXVector{Address: addr1, Data: data1}
	masked := func(v MSIXVector) MSIXVector { v.Masked = true; return v }

	steps := []struct {
		name    string
		do      func() bool // returns Trigger's result, if it triggers
		want    []msixEvent
		wantOK  bool
		wantPBA uint64
	}{
		{
			name: "program vector 0 while disabled",
			do: func() bool {
				writeTable(f.msix, 0+entryAddrLo, addr0)
				writeTable(f.msix, 0+entryData, data0)
				return false
			},
			want: []msixEvent{
				{vector: 0, v: MSIXVector{Address: addr0, Masked: true}},
				{vector: 0, v: masked(v0)},
			},
		},
		{
			name: "program vector 1 with qword writes",
			do: func() bool {
				f.msix.WriteTable(16, binary.LittleEndian.AppendUint64(nil, addr1))
				f.msix.WriteTable(24, binary.LittleEndian.AppendUint64(nil, data1|1<<32)) // data, still masked
				return false
			},
			want: []msixEvent{
				{vector: 1, v: MSIXVector{Address: addr1, Masked: true}},
				{vector: 1, v: masked(v1)},
			},
		},
		{
			name: "enable with the function masked",
			do:   func() bool { cfgWrite(f.cs, ctrl, 2, msixEnable|msixFuncMask); return false },
		},
		{
			name: "unmask vector 0 under the function mask",
			do:   func() bool { writeTable(f.msix, entryControl, 0); return false },
		},
		{
			name:    "trigger while function-masked: pending",
			do:      func() bool { return f.msix.Trigger(0) },
			wantOK:  true,
			wantPBA: 1,
		},
		{
			name: "clear the function mask: pending vector 0 goes out",
			do:   func() bool { cfgWrite(f.cs, ctrl, 2, msixEnable); return false },
			want: []msixEvent{{vector: 0, v: v0}, {vector: 0, v: v0, send: true}},
		},
		{
			name:   "trigger an unmasked vector",
			do:     func() bool { return f.msix.Trigger(0) },
			want:   []msixEvent{{vector: 0, v: v0, send: true}},
			wantOK: true,
		},
		{
			name:    "trigger a masked vector",
			do:      func() bool { return f.msix.Trigger(1) },
			wantOK:  true,
			wantPBA: 2,
		},
		{
			name: "unmask vector 1: pending message goes out",
			do:   func() bool { writeTable(f.msix, 16+entryControl, 0xfffffffe); return false },
			want: []msixEvent{{vector: 1, v: v1}, {vector: 1, v: v1, send: true}},
		},
		{
			name: "mask vector 0 (reserved bits ignored)",
			do:   func() bool { writeTable(f.msix, entryControl, 0xffffffff); return false },
			want: []msixEvent{{vector: 0, v: masked(v0)}},
		},
		{
			name: "disable MSI-X",
			do:   func() bool { cfgWrite(f.cs, ctrl, 2, 0); return false },
			want: []msixEvent{{vector: 1, v: masked(v1)}},
		},
		{
			name: "trigger while disabled",
			do:   func() bool { return f.msix.Trigger(1) },
		},
		{
			name: "re-enable: vector 1 unmasked again, nothing pending",
			do:   func() bool { cfgWrite(f.cs, ctrl, 2, msixEnable); return false },
			want: []msixEvent{{vector: 1, v: v1}},
		},
		{
			name: "trigger a vector that does not exist",
			do:   func() bool { return f.msix.Trigger(testVectors) || f.msix.Trigger(-1) || f.msix.Trigger(0xffff) },
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			ok := s.do()
			assert.Equal(t, s.wantOK, ok, "Trigger result")
			got := f.vectors.take()
			assert.Equal(t, s.want, got, "got %+v, want %+v", got, s.want)
			assert.Equal(t, s.wantPBA, readPBA(f.msix), "PBA")
		})
	}
	assert.Equal(t, uint32(0xfee0_1000), readTable(f.msix, entryAddrLo))
	assert.Equal(t, uint32(1), readTable(f.msix, 16+entryAddrHi))
	assert.Equal(t, uint32(msixEnable|(testVectors-1)), cfgRead(f.cs, ctrl, 2), "Message Control")
	assert.Zero(t, f.msix.InvalidAccesses())
}

func TestMSIXAddressLowBits(t *testing.T) {
	f := newVirtioFunction(t)
	writeTable(f.msix, 32+entryAddrLo, 0xffffffff)
	assert.Equal(t, uint32(0xfffffffc), readTable(f.msix, 32+entryAddrLo), "bits 1:0 read as zero")
}

func TestMSIXInvalidAccesses(t *testing.T) {
	f := newVirtioFunction(t)
	tests := []struct {
		name   string
		pba    bool
		write  bool
		offset uint64
		n      int
	}{
		{name: "table byte", offset: 0, n: 1},
		{name: "table word", offset: 2, n: 2},
		{name: "table misaligned dword", offset: 2, n: 4},
		{name: "table misaligned qword", offset: 4, n: 8},
		{name: "table beyond", offset: testVectors * 16, n: 4},
		{name: "table straddling the end", offset: testVectors*16 - 4, n: 8},
		{name: "table huge offset", offset: ^uint64(0) - 3, n: 4},
		{name: "table empty", offset: 0, n: 0},
		{name: "table write byte", write: true, offset: 12, n: 1},
		{name: "table write beyond", write: true, offset: 1 << 20, n: 4},
		{name: "PBA byte", pba: true, offset: 0, n: 1},
		{name: "PBA beyond", pba: true, offset: 8, n: 4},
		{name: "PBA write", pba: true, write: true, offset: 0, n: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.msix.InvalidAccesses()
			data := make([]byte, tt.n)
			switch {
			case tt.pba && tt.write:
				f.msix.WritePBA(tt.offset, data)
			case tt.pba:
				f.msix.ReadPBA(tt.offset, data)
			case tt.write:
				f.msix.WriteTable(tt.offset, data)
			default:
				f.msix.ReadTable(tt.offset, data)
			}
			if !tt.write {
				for i, v := range data {
					assert.Equal(t, byte(0xff), v, "byte %d", i)
				}
			}
			assert.Equal(t, before+1, f.msix.InvalidAccesses())
		})
	}
	for i := range testVectors {
		assert.Equal(t, MSIXVector{Masked: true}, f.msix.Vector(i), "vector %d untouched", i)
	}
	assert.Equal(t, MSIXVector{}, f.msix.Vector(testVectors))
	assert.Empty(t, f.vectors.take())
}

func TestMSIXPBALayout(t *testing.T) {
	l := &msixLog{}
	tb, err := NewMSIXTable(MSIXConfig{Vectors: MSIXMaxVectors, PBAOffset: 0x8000, Listener: l, Logger: quietLogger()})
	require.NoError(t, err)
	assert.Equal(t, uint64(256), tb.PBASize())
	tb.controlWritten([]byte{CapIDMSIX, 0, 0x00, 0xc0}) // enabled, function masked
	for _, v := range []int{0, 63, 64, 2047} {
		require.True(t, tb.Trigger(v))
	}
	b := make([]byte, 8)
	tb.ReadPBA(0, b)
	assert.Equal(t, uint64(1|1<<63), binary.LittleEndian.Uint64(b))
	tb.ReadPBA(12, b[:4]) // high dword of the second qword
	assert.Zero(t, binary.LittleEndian.Uint32(b))
	tb.ReadPBA(8, b[:4])
	assert.Equal(t, uint32(1), binary.LittleEndian.Uint32(b))
	tb.ReadPBA(252, b[:4])
	assert.Equal(t, uint32(1<<31), binary.LittleEndian.Uint32(b))
	assert.Empty(t, l.take(), "masked vectors send nothing")
}

func TestMSIXConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  MSIXConfig
		ok   bool
	}{
		{name: "one vector", cfg: MSIXConfig{Vectors: 1, PBAOffset: 16}, ok: true},
		{name: "max vectors", cfg: MSIXConfig{Vectors: 2048, PBABAR: 1}, ok: true},
		{name: "zero vectors", cfg: MSIXConfig{Vectors: 0, PBABAR: 1}},
		{name: "too many vectors", cfg: MSIXConfig{Vectors: 2049, PBABAR: 1}},
		{name: "table BIR 6", cfg: MSIXConfig{Vectors: 1, TableBAR: 6, PBABAR: 1}},
		{name: "PBA BIR negative", cfg: MSIXConfig{Vectors: 1, PBABAR: -1}},
		{name: "table misaligned", cfg: MSIXConfig{Vectors: 1, TableOffset: 4, PBABAR: 1}},
		{name: "PBA misaligned", cfg: MSIXConfig{Vectors: 1, PBABAR: 1, PBAOffset: 12}},
		{name: "overlap", cfg: MSIXConfig{Vectors: 2, PBAOffset: 24}},
		{name: "PBA just after the table", cfg: MSIXConfig{Vectors: 2, PBAOffset: 32}, ok: true},
		{name: "past 4 GiB", cfg: MSIXConfig{Vectors: 2, TableOffset: 0xffff_fff8, PBABAR: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMSIXTable(tt.cfg)
			_, capErr := MSIXCapability(tt.cfg)
			if tt.ok {
				require.NoError(t, err)
				require.NoError(t, capErr)
				return
			}
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorIs(t, capErr, ErrInvalid)
		})
	}
}

func TestAddMSIX(t *testing.T) {
	newSpace := func(t *testing.T) *ConfigSpace {
		cs := newTestSpace(t)
		require.NoError(t, cs.AddBAR(0, BAR{Kind: BARMem32, Size: 0x1000}))
		require.NoError(t, cs.AddBAR(1, BAR{Kind: BARIO, Size: 0x100}))
		require.NoError(t, cs.AddBAR(2, BAR{Kind: BARMem64, Size: 0x2000}))
		return cs
	}
	tests := []struct {
		name string
		cfg  MSIXConfig
		ok   bool
	}{
		{name: "same BAR", cfg: MSIXConfig{Vectors: 8, PBAOffset: 0x800}, ok: true},
		{name: "64-bit BAR", cfg: MSIXConfig{Vectors: 8, TableBAR: 2, PBABAR: 2, PBAOffset: 0x1ff8}, ok: true},
		{name: "table in an I/O BAR", cfg: MSIXConfig{Vectors: 8, TableBAR: 1}},
		{name: "table in an absent BAR", cfg: MSIXConfig{Vectors: 8, TableBAR: 4}},
		{name: "PBA in the upper half of a 64-bit BAR", cfg: MSIXConfig{Vectors: 8, PBABAR: 3}},
		{name: "table too big", cfg: MSIXConfig{Vectors: 257, PBABAR: 2}},
		{name: "PBA past the end", cfg: MSIXConfig{Vectors: 8, PBAOffset: 0x1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := newSpace(t)
			tb, err := NewMSIXTable(tt.cfg)
			require.NoError(t, err)
			off, err := cs.AddMSIX(tb)
			if !tt.ok {
				require.ErrorIs(t, err, ErrInvalid)
				assert.Zero(t, cfgRead(cs, regCapabilities, 1), "nothing added")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, 0x40, off)
			assert.Equal(t, uint32(CapIDMSIX), cfgRead(cs, uint64(off), 1))
		})
	}
	_, err := newSpace(t).AddMSIX(nil)
	require.ErrorIs(t, err, ErrInvalid)
}
