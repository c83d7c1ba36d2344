package bus

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/devtest"
)

// recorder is a fake device that records accesses and reads as its fill
// byte.
type recorder = devtest.Recorder

// access is one access a recorder saw.
type access = devtest.Access

func TestPIORegister(t *testing.T) {
	tests := []struct {
		name    string
		base    Port
		size    uint32
		nilDev  bool
		wantErr error
	}{
		{name: "fits", base: 0x3f8, size: 8},
		{name: "adjacent below", base: 0x3f0, size: 8},
		{name: "adjacent above", base: 0x400, size: 1},
		{name: "last port", base: 0xffff, size: 1},
		{name: "whole tail", base: 0xff00, size: 0xff},
		{name: "zero size", base: 0x100, size: 0, wantErr: ErrZeroSize},
		{name: "past the end", base: 0xfff0, size: 0x11, wantErr: ErrOutOfRange},
		{name: "huge", base: 0x1, size: 0xffffffff, wantErr: ErrOutOfRange},
		{name: "same range", base: 0x3f8, size: 8, wantErr: ErrOverlap},
		{name: "overlaps start", base: 0x3f4, size: 5, wantErr: ErrOverlap},
		{name: "overlaps end", base: 0x3ff, size: 1, wantErr: ErrOverlap},
		{name: "inside", base: 0x3f9, size: 2, wantErr: ErrOverlap},
		{name: "covers", base: 0x300, size: 0x200, wantErr: ErrOverlap},
		{name: "nil device", base: 0x500, size: 1, nilDev: true, wantErr: ErrNilDevice},
	}
	b := NewPIO(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dev *recorder
			if !tt.nilDev {
				dev = &recorder{}
			}
			var err error
			if tt.nilDev {
				err = b.Register(tt.base, tt.size, nil)
			} else {
				err = b.Register(tt.base, tt.size, dev)
			}
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr, "got %v, want %v", err, tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "register PIO device"), "got %q, want prefix %q", err, "register PIO device")
		})
	}
}

func TestMMIORegister(t *testing.T) {
	const top = ^uint64(0)
	tests := []struct {
		name    string
		base    Addr
		size    uint64
		wantErr error
	}{
		{name: "fits", base: 0xd000_0000, size: 0x1000},
		{name: "ends at top of space", base: Addr(top - 0xfff), size: 0x1000},
		{name: "wraps", base: Addr(top - 0xfff), size: 0x1001, wantErr: ErrOutOfRange},
		{name: "max size from 1", base: 2, size: top, wantErr: ErrOutOfRange},
		{name: "zero size", base: 0x1000, size: 0, wantErr: ErrZeroSize},
		{name: "overlap", base: 0xd000_0fff, size: 2, wantErr: ErrOverlap},
		{name: "adjacent", base: 0xd000_1000, size: 2},
	}
	b := NewMMIO(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.Register(tt.base, tt.size, &recorder{})
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr, "got %v, want %v", err, tt.wantErr)
		})
	}
}

// TestUnregister: a range is removed only by its base and its own device,
// once, and is free again afterwards (a PCI BAR that moves), on either bus.
func TestUnregister(t *testing.T) {
	pio, mmio := NewPIO(nil), NewMMIO(nil)
	for _, tc := range []struct {
		name       string
		base, size uint64
		register   func(base, size uint64, dev devices.Device) error
		unregister func(base uint64, dev devices.Device) error
		read       func(addr uint64, data []byte) bool
	}{
		{"PIO", 0x1000, 4,
			func(base, size uint64, dev devices.Device) error { return pio.Register(Port(base), uint32(size), dev) },
			func(base uint64, dev devices.Device) error { return pio.Unregister(Port(base), dev) },
			func(addr uint64, data []byte) bool { return pio.Read(Port(addr), data) }},
		{"MMIO", 0xd000_0000, 0x1000,
			func(base, size uint64, dev devices.Device) error { return mmio.Register(Addr(base), size, dev) },
			func(base uint64, dev devices.Device) error { return mmio.Unregister(Addr(base), dev) },
			func(addr uint64, data []byte) bool { return mmio.Read(Addr(addr), data) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev, other := &recorder{Fill: 0xab}, &recorder{}
			require.NoError(t, tc.register(tc.base, tc.size, dev))
			data := make([]byte, 2)
			inside := tc.base + 2
			require.True(t, tc.read(inside, data))

			assert.ErrorIs(t, tc.unregister(inside, dev), ErrNotRegistered, "not the base")
			assert.ErrorIs(t, tc.unregister(tc.base, other), ErrNotRegistered, "someone else's range")
			require.NoError(t, tc.unregister(tc.base, dev))
			assert.False(t, tc.read(inside, data), "nothing decodes there any more")
			assert.ErrorIs(t, tc.unregister(tc.base, dev), ErrNotRegistered, "twice")

			// The range is free again, at the same or an overlapping place.
			require.NoError(t, tc.register(tc.base+tc.size/2, tc.size, other))
		})
	}
}

func TestMMIOWholeSpace(t *testing.T) {
	b := NewMMIO(nil)
	dev := &recorder{Fill: 0x5a}
	require.NoError(t, b.Register(0, ^uint64(0), dev))               // [0, 2^64-1)
	require.NoError(t, b.Register(Addr(^uint64(0)), 1, &recorder{})) // the last byte
	require.ErrorIs(t, b.Register(Addr(^uint64(0)), 1, dev), ErrOverlap)

	data := make([]byte, 8)
	assert.True(t, b.Read(Addr(^uint64(0)-8), data), "got unhandled, want handled just below the top")
	assert.False(t, b.Read(Addr(^uint64(0)-7), data), "got handled, want unhandled: straddles two devices")
	assert.False(t, b.Read(Addr(^uint64(0)-3), data), "got handled, want unhandled: wraps the space")
}

func TestPIODispatch(t *testing.T) {
	b := NewPIO(nil)
	uart := &recorder{Fill: 0x11}
	other := &recorder{Fill: 0x22}
	require.NoError(t, b.Register(0x3f8, 8, uart))
	require.NoError(t, b.Register(0x400, 4, other))
	require.NoError(t, b.Register(0xfffe, 2, &recorder{Fill: 0x33}))

	tests := []struct {
		name        string
		port        Port
		n           int
		wantHandled bool
		wantFill    byte
		wantDev     *recorder
		wantOffset  uint64
	}{
		{name: "first byte", port: 0x3f8, n: 1, wantHandled: true, wantFill: 0x11, wantDev: uart, wantOffset: 0},
		{name: "last byte", port: 0x3ff, n: 1, wantHandled: true, wantFill: 0x11, wantDev: uart, wantOffset: 7},
		{name: "dword at end", port: 0x3fc, n: 4, wantHandled: true, wantFill: 0x11, wantDev: uart, wantOffset: 4},
		{name: "straddles end of range", port: 0x3fe, n: 4, wantFill: 0xff},
		{name: "straddles two devices", port: 0x3ff, n: 2, wantFill: 0xff},
		{name: "just below", port: 0x3f7, n: 1, wantFill: 0xff},
		{name: "straddles start", port: 0x3f7, n: 2, wantFill: 0xff},
		{name: "gap after", port: 0x404, n: 1, wantFill: 0xff},
		{name: "top of space", port: 0xffff, n: 1, wantHandled: true, wantFill: 0x33},
		{name: "wraps the space", port: 0xffff, n: 2, wantFill: 0xff},
		{name: "empty access", port: 0x3f8, n: 0},
		{name: "nothing at 0", port: 0, n: 1, wantFill: 0xff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before int
			if tt.wantDev != nil {
				before = len(tt.wantDev.Accesses())
			}
			data := make([]byte, tt.n)
			got := b.Read(tt.port, data)
			assert.Equal(t, tt.wantHandled, got, "read handled: got %v, want %v", got, tt.wantHandled)
			for i, v := range data {
				assert.Equal(t, tt.wantFill, v, "byte %d: got %#x, want %#x", i, v, tt.wantFill)
			}
			gotW := b.Write(tt.port, data)
			assert.Equal(t, tt.wantHandled, gotW, "write handled: got %v, want %v", gotW, tt.wantHandled)
			if tt.wantDev != nil {
				seen := tt.wantDev.Accesses()[before:]
				want := []access{{Offset: tt.wantOffset, N: tt.n}, {Write: true, Offset: tt.wantOffset, N: tt.n}}
				assert.Equal(t, want, seen, "got %v, want %v", seen, want)
			}
		})
	}
}

func TestUnhandledCountedAndLoggedOnce(t *testing.T) {
	logger, logs := devtest.Logger()
	b := NewPIO(logger)
	require.NoError(t, b.Register(0x60, 1, &recorder{}))

	for range 3 {
		b.Read(0x61, make([]byte, 1))
	}
	b.Write(0x61, []byte{1})
	b.Write(0x80, []byte{1})
	b.Read(0x60, make([]byte, 2)) // straddles into 0x61

	got := b.Unhandled()
	want := map[Port]uint64{0x61: 4, 0x80: 1, 0x60: 1}
	assert.Equal(t, want, got, "got %v, want %v", got, want)

	out := logs.String()
	assert.Equal(t, 3, strings.Count(out, "unhandled PIO access"), "got log %q, want one line per address", out)
	assert.Contains(t, out, "addr=0x0061")

	// The returned map is a copy.
	got[0x61] = 100
	assert.Equal(t, uint64(4), b.Unhandled()[0x61])
}

func TestUnhandledTrackingIsBounded(t *testing.T) {
	b := NewMMIO(nil)
	for a := range uint64(MaxTrackedAddrs + 10) {
		b.Write(Addr(a*8), []byte{0})
	}
	b.Write(0, []byte{0}) // tracked address still counted individually
	got := len(b.Unhandled())
	assert.Equal(t, MaxTrackedAddrs, got, "tracked addresses: got %d, want %d", got, MaxTrackedAddrs)
	assert.Equal(t, uint64(10), b.Untracked(), "untracked: got %d, want 10", b.Untracked())
	assert.Equal(t, uint64(2), b.Unhandled()[0], "address 0: got %d, want 2", b.Unhandled()[0])
}

func TestConcurrentDispatch(t *testing.T) {
	b := NewPIO(nil)
	devs := make([]*recorder, 8)
	for i := range devs {
		devs[i] = &recorder{Fill: byte(i)}
		require.NoError(t, b.Register(Port(0x100+i*0x10), 0x10, devs[i]))
	}
	const workers, iters = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			data := make([]byte, 4)
			for i := range iters {
				port := Port(0x100 + (w*0x10+i)%0x90)
				b.Read(port, data[:1])
				b.Write(port, data[:2])
			}
		})
	}
	// Registration racing with dispatch must be safe too.
	wg.Go(func() {
		for i := range 50 {
			_ = b.Register(Port(0x1000+i), 1, &recorder{})
		}
	})
	wg.Wait()

	var handled int
	for _, d := range devs {
		handled += len(d.Accesses())
	}
	unhandled := 0
	for _, c := range b.Unhandled() {
		unhandled += int(c)
	}
	got := handled + unhandled
	assert.Equal(t, workers*iters*2, got, "accesses: got %d, want %d", got, workers*iters*2)
	assert.Positive(t, unhandled, "got no unhandled accesses, want some in 0x180..0x18f")
}

func ExamplePIO() {
	b := NewPIO(nil)
	if err := b.Register(0x3f8, 8, &recorder{Fill: 0x60}); err != nil {
		panic(err)
	}
	data := make([]byte, 1)
	fmt.Println(b.Read(0x3fd, data), data[0])
	fmt.Println(b.Read(0x2fd, data), data[0])
	// Output:
	// true 96
	// false 255
}

func TestHitsCountServedAccesses(t *testing.T) {
	b := NewMMIO(nil)
	busy, quiet := &recorder{}, &recorder{}
	require.NoError(t, b.Register(0x1000, 0x100, quiet))
	require.NoError(t, b.Register(0x2000, 0x10, busy))
	for range 3 {
		b.Write(0x2004, make([]byte, 4))
	}
	b.Read(0x1000, make([]byte, 1))
	b.Read(0x3000, make([]byte, 1)) // unhandled: not a hit anywhere
	assert.Equal(t, []Hits{
		{Base: 0x2000, Size: 0x10, Device: "*devtest.Recorder", Count: 3},
		{Base: 0x1000, Size: 0x100, Device: "*devtest.Recorder", Count: 1},
	}, b.Hits())
	// Moving a range (a BAR) starts its count afresh.
	require.NoError(t, b.Unregister(0x1000, quiet))
	require.NoError(t, b.Register(0x4000, 0x100, quiet))
	assert.Equal(t, uint64(0), b.Hits()[1].Count)
}
