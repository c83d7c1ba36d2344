package pci

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
)

// byteReg is a one-byte register that records writes.
type byteReg struct {
	v      byte
	writes []byte
}

func (r *byteReg) Read(offset uint64, data []byte) { data[0] = r.v }
func (r *byteReg) Write(offset uint64, data []byte) {
	r.v = data[0]
	r.writes = append(r.writes, data[0])
}

func inl(h *EmptyHost, off uint64) uint32 {
	b := make([]byte, 4)
	h.Read(off, b)
	return binary.LittleEndian.Uint32(b)
}

func outl(h *EmptyHost, off uint64, v uint32) {
	h.Write(off, binary.LittleEndian.AppendUint32(nil, v))
}

func TestConfigMechanism1(t *testing.T) {
	rc := &byteReg{v: 0x02}
	h := NewEmptyHost(Config{ResetControl: rc})

	// Linux's pci_check_type1: outb(0x01, 0xcfb); save CONFIG_ADDRESS;
	// outl(0x80000000, 0xcf8) must read back.
	h.Write(3, []byte{0x01})
	saved := inl(h, 0)
	outl(h, 0, 0x80000000)
	got := inl(h, 0)
	assert.Equal(t, uint32(0x80000000), got, "CONFIG_ADDRESS: got %#x, want %#x", got, 0x80000000)
	outl(h, 0, saved)

	tests := []struct {
		name string
		addr uint32 // CONFIG_ADDRESS
		off  uint64
		n    int
	}{
		{name: "vendor ID of 00:00.0", addr: 0x80000000, off: 4, n: 2},
		{name: "class of 00:00.0", addr: 0x80000008, off: 6, n: 2},
		{name: "dword at 00:1f.7", addr: 0x8000ff00, off: 4, n: 4},
		{name: "byte at 0xcff", addr: 0x80000004, off: 7, n: 1},
		{name: "disabled", addr: 0x00000000, off: 4, n: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outl(h, 0, tt.addr)
			data := make([]byte, tt.n)
			h.Read(tt.off, data)
			for i, v := range data {
				assert.Equal(t, byte(0xff), v, "byte %d: got %#x, want 0xff", i, v)
			}
			h.Write(tt.off, data) // ignored
			assert.Equal(t, tt.addr, inl(h, 0), "CONFIG_ADDRESS after data access")
		})
	}

	// pci_check_type2: byte reads of 0xcf8 and 0xcfa are not 0x00.
	h.Write(3, []byte{0x00})
	h.Write(0, []byte{0x00})
	h.Write(2, []byte{0x00})
	b := []byte{0}
	h.Read(0, b)
	assert.Equal(t, byte(0xff), b[0], "byte read of 0xcf8")
	h.Read(2, b)
	assert.Equal(t, byte(0xff), b[0], "byte read of 0xcfa")

	// 0xcf9 reaches the reset control register.
	h.Read(1, b)
	assert.Equal(t, byte(0x02), b[0], "0xcf9 read")
	h.Write(1, []byte{0x06})
	assert.Equal(t, []byte{0x06}, rc.writes, "0xcf9 writes")

	st := h.Stats()
	assert.Equal(t, uint64(2*len(tests)), st.DataAccesses, "data accesses")
	assert.Equal(t, uint64(6), st.NarrowAccesses, "narrow accesses")
	assert.Zero(t, st.BadAccesses)
}

func TestNoResetControl(t *testing.T) {
	h := NewEmptyHost(Config{})
	b := []byte{0}
	h.Read(1, b)
	assert.Equal(t, byte(0xff), b[0])
	h.Write(1, []byte{0x06})
	assert.Equal(t, uint64(2), h.Stats().NarrowAccesses)
}

func TestGarbageNeverPanics(t *testing.T) {
	h := NewEmptyHost(Config{ResetControl: &byteReg{}})
	r := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		data := make([]byte, []int{0, 1, 2, 4, 8}[r.IntN(5)])
		off := r.Uint64N(10)
		if r.IntN(50) == 0 {
			off = r.Uint64()
		}
		if r.IntN(2) == 0 {
			h.Write(off, data)
		} else {
			h.Read(off, data)
		}
	}
	assert.Positive(t, h.Stats().BadAccesses)
}
