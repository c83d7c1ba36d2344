package pci

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/devtest"
)

var (
	_ devices.Device = (*Host)(nil)
	_ port           = (*Host)(nil)
)

// TestLinuxProbe replays Linux's pci_check_type1 and pci_sanity_check
// (arch/x86/pci/direct.c) against NewHost and NewEmptyHost.
func TestLinuxProbe(t *testing.T) {
	tests := []struct {
		name      string
		host      *Host
		wantFound bool
	}{
		{name: "host", host: NewHost(Config{}), wantFound: true},
		{name: "empty host", host: NewEmptyHost(Config{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.host
			// pci_check_type1: outb(0x01, 0xcfb); save CONFIG_ADDRESS;
			// outl(0x80000000, 0xcf8) must read back.
			h.Write(3, []byte{0x01})
			saved := inl(h, offAddress)
			outl(h, offAddress, 0x80000000)
			got := inl(h, offAddress)
			assert.Equal(t, uint32(0x80000000), got, "CONFIG_ADDRESS: got %#x, want %#x", got, 0x80000000)
			outl(h, offAddress, saved)

			// pci_sanity_check: a host bridge or VGA class, or an Intel or
			// Compaq vendor ID, somewhere on bus 0.
			found := -1
			for devfn := 0; devfn < 0x100 && found < 0; devfn++ {
				class := confRead(h, 0, devfn>>3, devfn&7, 0x0a, 2)
				vendor := confRead(h, 0, devfn>>3, devfn&7, 0x00, 2)
				if class == 0x0600 || class == 0x0300 || vendor == 0x8086 || vendor == 0x0e11 {
					found = devfn
				}
			}
			if !tt.wantFound {
				assert.Equal(t, -1, found, "got a device at devfn %#x, want none", found)
				return
			}
			assert.Equal(t, 0, found, "host bridge devfn: got %#x, want 0", found)
		})
	}
}

func TestHostBridge(t *testing.T) {
	h := NewHost(Config{})
	tests := []struct {
		name string
		reg  int
		n    int
		want uint32
	}{
		{name: "vendor and device ID", reg: 0x00, n: 4, want: HostBridgeDeviceID<<16 | HostBridgeVendorID},
		{name: "vendor ID", reg: 0x00, n: 2, want: 0x8086},
		{name: "device ID", reg: 0x02, n: 2, want: 0x29c0},
		{name: "class code and revision", reg: 0x08, n: 4, want: 0x06000000},
		{name: "base class", reg: 0x0b, n: 1, want: 0x06},
		{name: "sub class", reg: 0x0a, n: 1, want: 0x00},
		{name: "header type", reg: 0x0e, n: 1, want: 0x00},
		{name: "status: no capabilities", reg: 0x06, n: 2, want: 0},
		{name: "capabilities pointer", reg: 0x34, n: 1, want: 0},
		{name: "interrupt pin", reg: 0x3d, n: 1, want: 0},
		{name: "beyond the header", reg: 0x40, n: 4, want: 0},
		{name: "last dword", reg: 0xfc, n: 4, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := confRead(h, 0, 0, 0, tt.reg, tt.n)
			assert.Equal(t, tt.want, got, "register %#x: got %#x, want %#x", tt.reg, got, tt.want)
		})
	}
	// No BARs: sizing reads back zero.
	for i := range NumBARs {
		reg := 0x10 + 4*i
		confWrite(h, 0, 0, 0, reg, 4, 0xffffffff)
		got := confRead(h, 0, 0, 0, reg, 4)
		assert.Zero(t, got, "BAR %d after writing all ones: got %#x, want 0", i, got)
	}
}

func TestConfigDataLanes(t *testing.T) {
	fn := &recordFn{Recorder: devtest.Recorder{Fill: 0x5a}}
	h := NewHost(Config{Logger: quietLogger()})
	require.NoError(t, h.Register(7, fn))

	type result struct {
		ok     bool   // reaches the function
		offset uint64 // register the function sees
	}
	for _, reg := range []uint32{0x00, 0x04, 0x3c, 0x40, 0xfc} {
		for _, n := range []int{1, 2, 4} {
			for lane := range 4 {
				want := result{ok: lane%n == 0 && lane+n <= 4, offset: uint64(reg) + uint64(lane)}
				t.Run(fmt.Sprintf("reg %#x lane %d size %d", reg, lane, n), func(t *testing.T) {
					outl(h, offAddress, 0x80000000|7<<11|reg)
					before := len(fn.Accesses())
					st := h.Stats()
					data := make([]byte, n)
					h.Read(offData+uint64(lane), data)
					h.Write(offData+uint64(lane), data)
					seen := fn.Accesses()[before:]
					st2 := h.Stats()
					if lane+n > 4 {
						// Runs past 0xcff: not a CONFIG_DATA access at all.
						assert.Empty(t, seen, "got accesses %v, want none", seen)
						assert.Equal(t, st.BadAccesses+2, st2.BadAccesses, "bad accesses")
						return
					}
					assert.Equal(t, st.DataAccesses+2, st2.DataAccesses, "data accesses")
					if !want.ok {
						assert.Empty(t, seen, "got accesses %v, want none", seen)
						assert.Equal(t, []byte(strings.Repeat("\xff", n)), data, "misaligned read")
						assert.Equal(t, st.Misaligned+2, st2.Misaligned, "misaligned count")
						return
					}
					wantSeen := []cfgAccess{{Offset: want.offset, N: n}, {Write: true, Offset: want.offset, N: n}}
					assert.Equal(t, wantSeen, seen, "got %v, want %v", seen, wantSeen)
					assert.Equal(t, []byte(strings.Repeat("\x5a", n)), data, "read data")
				})
			}
		}
	}
}

func TestMasterAbort(t *testing.T) {
	fn := &recordFn{Recorder: devtest.Recorder{Fill: 0x5a}}
	h := NewHost(Config{})
	require.NoError(t, h.Register(3, fn))
	tests := []struct {
		name string
		addr uint32
	}{
		{name: "enable bit clear", addr: 3 << 11},
		{name: "bus 1", addr: confAddr(1, 3, 0, 0)},
		{name: "bus 255", addr: confAddr(255, 3, 0, 0)},
		{name: "function 1", addr: confAddr(0, 3, 1, 0)},
		{name: "function 7", addr: confAddr(0, 3, 7, 0)},
		{name: "absent device", addr: confAddr(0, 4, 0, 0)},
		{name: "last device", addr: confAddr(0, 31, 0, 0xfc)},
		{name: "extended register 0x100", addr: confAddr(0, 3, 0, 0x100)},
		{name: "extended register 0xffc", addr: confAddr(0, 3, 0, 0xffc)},
		{name: "reserved bit 30", addr: confAddr(0, 3, 0, 0) | 1<<30},
		{name: "reserved bit 28", addr: confAddr(0, 3, 0, 0) | 1<<28},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outl(h, offAddress, tt.addr)
			before := h.Stats().MasterAborts
			for _, n := range []int{1, 2, 4} {
				data := make([]byte, n)
				h.Read(offData, data)
				assert.Equal(t, []byte(strings.Repeat("\xff", n)), data, "read of %d bytes", n)
				h.Write(offData, data)
			}
			assert.Empty(t, fn.Accesses(), "the function must see nothing")
			assert.Equal(t, before+6, h.Stats().MasterAborts, "master aborts")
			assert.Equal(t, tt.addr, inl(h, offAddress), "CONFIG_ADDRESS reads back as written")
		})
	}
	// The device itself answers.
	outl(h, offAddress, confAddr(0, 3, 0, 0))
	assert.Equal(t, uint32(0x5a5a5a5a), inl(h, offData))
}

func TestConfigAddress(t *testing.T) {
	h := NewHost(Config{})
	tests := []struct {
		write, want uint32
	}{
		{0x80000000, 0x80000000},
		{0x8000fffc, 0x8000fffc},
		{0xffffffff, 0xfffffffc}, // bits 1:0 read-only zero
		{0x00000003, 0x00000000},
		{0x0f00_0000, 0x0f00_0000}, // AMD extended register bits kept
	}
	for _, tt := range tests {
		outl(h, offAddress, tt.write)
		got := inl(h, offAddress)
		assert.Equal(t, tt.want, got, "write %#x: got %#x, want %#x", tt.write, got, tt.want)
	}
}

func TestResetControlAndNarrowPorts(t *testing.T) {
	rc := &byteReg{v: 0x02}
	h := NewHost(Config{ResetControl: rc})
	outl(h, offAddress, 0x80000000)

	// pci_check_type2: byte writes and reads of 0xcf8 and 0xcfa.
	h.Write(3, []byte{0x00})
	h.Write(0, []byte{0x00})
	h.Write(2, []byte{0x00})
	b := []byte{0}
	h.Read(0, b)
	assert.Equal(t, byte(0xff), b[0], "byte read of 0xcf8")
	h.Read(2, b)
	assert.Equal(t, byte(0xff), b[0], "byte read of 0xcfa")
	w := []byte{0, 0}
	h.Read(2, w)
	assert.Equal(t, []byte{0xff, 0xff}, w, "word read of 0xcfa")
	assert.Equal(t, uint32(0x80000000), inl(h, offAddress), "narrow writes leave CONFIG_ADDRESS alone")

	// 0xcf9 reaches the reset control register.
	h.Read(1, b)
	assert.Equal(t, byte(0x02), b[0], "0xcf9 read")
	h.Write(1, []byte{0x06})
	assert.Equal(t, []byte{0x06}, rc.writes, "0xcf9 writes")
	h.Write(1, []byte{0x06, 0x00}) // a word at 0xcf9 is not the register
	assert.Equal(t, []byte{0x06}, rc.writes, "0xcf9 writes after a word write")

	st := h.Stats()
	assert.Equal(t, uint64(7), st.NarrowAccesses, "narrow accesses")
	assert.Zero(t, st.BadAccesses)

	// Without a reset control register, 0xcf9 is just a narrow port.
	e := NewEmptyHost(Config{})
	e.Read(1, b)
	assert.Equal(t, byte(0xff), b[0])
	e.Write(1, []byte{0x06})
	assert.Equal(t, uint64(2), e.Stats().NarrowAccesses)
}

func TestBadAccessesLogged(t *testing.T) {
	logger, logs := devtest.Logger()
	h := NewHost(Config{Logger: logger})
	tests := []struct {
		name   string
		offset uint64
		n      int
	}{
		{name: "empty", offset: 4, n: 0},
		{name: "qword at 0xcf8", offset: 0, n: 8},
		{name: "dword straddling into CONFIG_DATA", offset: 2, n: 4},
		{name: "dword past 0xcff", offset: 6, n: 4},
		{name: "beyond the ports", offset: 8, n: 1},
		{name: "huge offset", offset: ^uint64(0), n: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Stats().BadAccesses
			data := make([]byte, tt.n)
			h.Read(tt.offset, data)
			assert.Equal(t, []byte(strings.Repeat("\xff", tt.n)), data)
			h.Write(tt.offset, data)
			assert.Equal(t, before+2, h.Stats().BadAccesses)
		})
	}
	assert.Contains(t, logs.String(), "access outside the configuration ports")
}

func TestRegister(t *testing.T) {
	h := NewHost(Config{})
	tests := []struct {
		name    string
		device  int
		fn      Function
		wantErr error
	}{
		{name: "free slot", device: 1, fn: &recordFn{}},
		{name: "last slot", device: 31, fn: &recordFn{}},
		{name: "host bridge slot", device: 0, fn: &recordFn{}, wantErr: ErrInUse},
		{name: "taken", device: 1, fn: &recordFn{}, wantErr: ErrInUse},
		{name: "negative", device: -1, fn: &recordFn{}, wantErr: ErrInvalid},
		{name: "beyond 31", device: 32, fn: &recordFn{}, wantErr: ErrInvalid},
		{name: "nil", device: 2, fn: nil, wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := h.Register(tt.device, tt.fn)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr, "got %v, want %v", err, tt.wantErr)
		})
	}
	assert.NoError(t, NewEmptyHost(Config{}).Register(0, NewHostBridge()), "an empty host has device 0 free")
}

// TestHostHostileAccesses throws every offset and size combination, with
// random CONFIG_ADDRESS values and data, at a host with a full function.
func TestHostHostileAccesses(t *testing.T) {
	h := NewHost(Config{ResetControl: &byteReg{}, Logger: quietLogger()})
	f := newVirtioFunction(t)
	require.NoError(t, h.Register(1, f.cs))
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		outl(h, offAddress, r.Uint32()|0x80000000&^(0xff<<16)&^(0x7f<<24))
		for off := uint64(0); off < 10; off++ {
			for _, n := range []int{0, 1, 2, 3, 4, 8} {
				data := make([]byte, n)
				for i := range data {
					data[i] = byte(r.Uint32())
				}
				h.Write(off, data)
				h.Read(off, data)
			}
		}
	}
	// Whatever was written, the identity is intact.
	outl(h, offAddress, confAddr(0, 1, 0, 0))
	assert.Equal(t, uint32(testDevice<<16|testVendor), inl(h, offData))
	outl(h, offAddress, confAddr(0, 0, 0, 8))
	assert.Equal(t, uint32(HostBridgeClass<<8), inl(h, offData))
}

func TestNewHostAnswersThroughTheBus(t *testing.T) {
	// The vCPU hands CONFIG_DATA accesses at their port's offset; check a
	// full Linux read of the vendor ID of 00:01.0 with binary encoding.
	h := NewHost(Config{})
	f := newVirtioFunction(t)
	require.NoError(t, h.Register(1, f.cs))
	got := confRead(h, 0, 1, 0, 0x02, 2)
	assert.Equal(t, uint32(testDevice), got)
	b := make([]byte, 4)
	binary.LittleEndian.PutUint32(b, confAddr(0, 1, 0, 0x0b))
	h.Write(offAddress, b)
	h.Read(offData+3, b[:1])
	assert.Equal(t, byte(testClass>>16), b[0], "base class at 0xcff")
}
