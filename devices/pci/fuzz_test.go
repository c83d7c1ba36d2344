package pci

import (
	"encoding/binary"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fuzzOpSize is the size of one operation in FuzzConfigAccesses' input:
// kind, offset, size, then a 32-bit value.
const fuzzOpSize = 7

// runOps plays ops against a host with the host bridge at 00:00.0 and the
// virtio-like function at 00:01.0.
func runOps(t testing.TB, h *Host, f *virtioFunction, ops []byte) {
	sizes := []int{0, 1, 2, 3, 4, 8}
	for len(ops) >= fuzzOpSize {
		o, rest := ops[:fuzzOpSize], ops[fuzzOpSize:]
		ops = rest
		off := uint64(o[1])
		data := make([]byte, sizes[int(o[2])%len(sizes)])
		var v [8]byte
		copy(v[:], o[3:7])
		copy(v[4:], o[3:7])
		copy(data, v[:])
		switch o[0] % 8 {
		case 0: // CONFIG_ADDRESS, mostly at bus 0
			a := binary.LittleEndian.Uint32(o[3:])
			if o[1]&1 == 0 {
				a &^= 0x7fff_0000
			}
			outl(h, offAddress, a)
		case 1:
			h.Read(off%10, data)
		case 2:
			h.Write(off%10, data)
		case 3:
			f.msix.ReadTable(off%64, data)
		case 4:
			f.msix.WriteTable(off%64, data)
		case 5:
			f.msix.ReadPBA(off%16, data)
		case 6:
			f.msix.Trigger(int(o[3]%8) - 2)
		case 7: // direct config access, as a wrapping device would make
			if o[1]&1 == 0 {
				f.cs.ReadConfig(off, data)
			} else {
				f.cs.WriteConfig(off, data)
			}
		}
	}
}

// checkInvariants checks what no guest can change.
func checkInvariants(t testing.TB, h *Host, f *virtioFunction) {
	read := func(dev, reg int) uint32 { return confRead(h, 0, dev, 0, reg, 4) }
	assert.Equal(t, uint32(HostBridgeDeviceID<<16|HostBridgeVendorID), read(0, 0))
	assert.Equal(t, uint32(HostBridgeClass<<8), read(0, 8))
	assert.Equal(t, uint32(testDevice<<16|testVendor), read(1, 0))
	assert.Equal(t, uint32(testClass<<8|1), read(1, 8))
	assert.Zero(t, read(1, 0x0c)&0xffff0000, "header type and BIST")
	assert.Equal(t, uint32(0xc), read(1, 0x10)&0xf, "BAR 0 type bits")
	assert.Zero(t, read(1, 0x18)&0xfff, "BAR 2 type and size bits")
	assert.Equal(t, uint32(1), read(1, 0x1c)&0xffff001f, "BAR 3: I/O, 16-bit, 32-byte aligned")
	for _, reg := range []int{0x20, 0x24, 0x28, 0x30, 0x38} {
		assert.Zero(t, read(1, reg), "reserved or absent register %#x", reg)
	}
	assert.Equal(t, uint32(0x40), read(1, 0x34))
	assert.Equal(t, []int{0x40, 0x50, 0x60, 0x70, 0x84, 0x98}, walkCapabilitiesTB(t, f.cs))
	assert.Equal(t, uint32(testVectors-1), read(1, f.msixCap)>>16&0x7ff, "MSI-X table size")

	// Every BAR move starts where the previous one ended, and the last
	// one ends where the BAR decodes now.
	last := [NumBARs]uint64{NoAddress, NoAddress, NoAddress, NoAddress, NoAddress, NoAddress}
	for _, m := range f.bars.take() {
		require.Equal(t, last[m.index], m.old, "BAR %d move from %#x, last at %#x", m.index, m.old, last[m.index])
		require.NotEqual(t, m.old, m.new, "BAR %d move to where it was", m.index)
		last[m.index] = m.new
	}
	for _, i := range []int{0, 2, 3} {
		addr, dec := f.cs.BARAddress(i)
		if !dec {
			addr = NoAddress
		}
		assert.Equal(t, addr, last[i], "BAR %d", i)
	}
	for _, e := range f.vectors.take() {
		if e.send {
			assert.False(t, e.v.Masked, "vector %d sent while masked", e.vector)
		}
	}
}

// walkCapabilitiesTB is walkCapabilities for a testing.TB.
func walkCapabilitiesTB(t testing.TB, f Function) []int {
	var offs []int
	pos := int(cfgRead(f, regCapabilities, 1))
	for ttl := 48; ttl > 0 && pos >= 0x40; ttl-- {
		offs = append(offs, pos)
		pos = int(cfgRead(f, uint64(pos)+1, 1))
	}
	assert.Zero(t, pos, "list must end")
	return offs
}

func newFuzzHost(t testing.TB) (*Host, *virtioFunction) {
	h := NewHost(Config{ResetControl: &byteReg{}, Logger: quietLogger()})
	f := newVirtioFunction(t)
	require.NoError(t, h.Register(1, f.cs))
	return h, f
}

// op encodes one operation for runOps.
func op(kind, off, size byte, v uint32) []byte {
	return binary.LittleEndian.AppendUint32([]byte{kind, off, size}, v)
}

func FuzzConfigAccesses(f *testing.F) {
	var linux []byte
	// Size BAR 0 of 00:01.0, program it, enable memory and MSI-X, unmask
	// vector 0 and trigger it.
	for _, o := range [][]byte{
		op(0, 0, 0, confAddr(0, 1, 0, 0x10)), op(2, 4, 4, 0xffffffff), op(1, 4, 4, 0), op(2, 4, 4, 0xc000_0000),
		op(0, 0, 0, confAddr(0, 1, 0, 0x04)), op(2, 4, 2, CommandMemorySpace|CommandBusMaster),
		op(0, 0, 0, confAddr(0, 1, 0, 0x98)), op(2, 6, 2, msixEnable),
		op(4, 0, 4, 0xfee0_0000), op(4, 12, 4, 0), op(6, 0, 0, 2),
	} {
		linux = append(linux, o...)
	}
	f.Add(linux)
	f.Add(op(0, 0, 0, 0xffffffff))
	f.Add(append(op(0, 1, 0, 0x8000_0844), op(2, 4, 4, 0xffffffff)...))
	f.Fuzz(func(t *testing.T, ops []byte) {
		h, fn := newFuzzHost(t)
		runOps(t, h, fn, ops)
		checkInvariants(t, h, fn)
	})
}

// TestRandomOps runs FuzzConfigAccesses' body over pseudo-random input, so
// plain go test covers more than the seeds.
func TestRandomOps(t *testing.T) {
	var seed uint64 = 0x9e3779b97f4a7c15
	next := func() byte {
		seed ^= seed << 13
		seed ^= seed >> 7
		seed ^= seed << 17
		return byte(seed)
	}
	for range 200 {
		h, f := newFuzzHost(t)
		ops := make([]byte, fuzzOpSize*200)
		for i := range ops {
			ops[i] = next()
		}
		runOps(t, h, f, ops)
		checkInvariants(t, h, f)
	}
}

// TestConcurrentAccess has several vCPUs enumerate and reprogram while a
// device worker triggers vectors; run with -race.
func TestConcurrentAccess(t *testing.T) {
	h, f := newFuzzHost(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 500 {
				dev := (i + g) % 3
				confRead(h, 0, dev, 0, (i*4)%256, 4)
				confWrite(h, 0, 1, 0, regCommand, 2, uint32(i%4))
				confWrite(h, 0, 1, 0, 0x18, 4, uint32(i)<<12)
				writeTable(f.msix, uint64(i%testVectors)*16+entryControl, uint32(i%2))
				confWrite(h, 0, 1, 0, f.msixCap+msixControl, 2, uint32(i%4)<<14)
			}
		})
	}
	wg.Go(func() {
		for i := range 2000 {
			f.msix.Trigger(i % testVectors)
			readPBA(f.msix)
		}
	})
	wg.Wait()
	checkInvariants(t, h, f)
}
