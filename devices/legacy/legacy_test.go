package legacy

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/govmm/govmm/devices"
)

func TestResetControl(t *testing.T) {
	tests := []struct {
		name       string
		writes     []byte
		wantResets int
		wantRead   byte
	}{
		{name: "linux reboot=pci", writes: []byte{0x02, 0x06}, wantResets: 1, wantRead: 0x02},
		{name: "full reset 0x0e", writes: []byte{0x0e}, wantResets: 1, wantRead: 0x0a},
		{name: "RST_CPU alone", writes: []byte{0x04}, wantResets: 1, wantRead: 0x00},
		{name: "no RST_CPU", writes: []byte{0x02, 0x08, 0xfb}, wantResets: 0, wantRead: 0x0a},
		{name: "twice", writes: []byte{0x06, 0x06}, wantResets: 2, wantRead: 0x02},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			r := NewResetControl(func() { calls++ })
			for _, v := range tt.writes {
				r.Write(0, []byte{v})
			}
			assert.Equal(t, tt.wantResets, calls, "callbacks: got %d, want %d", calls, tt.wantResets)
			assert.Equal(t, uint64(tt.wantResets), r.Resets())
			b := []byte{0}
			r.Read(0, b)
			assert.Equal(t, tt.wantRead, b[0], "read: got %#x, want %#x", b[0], tt.wantRead)
		})
	}
	NewResetControl(nil).Write(0, []byte{0x06}) // no callback: no panic
}

func TestDebugExit(t *testing.T) {
	var got []byte
	d := NewDebugExit(func(s byte) { got = append(got, s) })
	_, ok := d.Status()
	assert.False(t, ok, "status before any write")
	d.Write(0, []byte{0})
	d.Write(0, []byte{3, 0}) // outw: the low byte counts
	d.Write(1, []byte{9})    // outside the port: ignored
	assert.Equal(t, []byte{0, 3}, got, "callbacks: got %v, want [0 3]", got)
	s, ok := d.Status()
	assert.True(t, ok)
	assert.Equal(t, byte(3), s, "status: got %d, want 3", s)
	b := []byte{0}
	d.Read(0, b)
	assert.Equal(t, byte(0xff), b[0])
}

func TestBootMarker(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	var got []time.Time
	b := NewBootMarker(func(t time.Time) { got = append(got, t) }, nil)
	b.now = func() time.Time { return at }

	tests := []struct {
		name     string
		offset   uint64
		data     []byte
		wantFire bool
	}{
		{name: "other value", data: []byte{1}},
		{name: "marker as a word", data: []byte{BootMarkerValue, 0}},
		{name: "marker at another offset", offset: 1, data: []byte{BootMarkerValue}},
		{name: "marker", data: []byte{BootMarkerValue}, wantFire: true},
		{name: "marker again", data: []byte{BootMarkerValue}, wantFire: true},
	}
	fired := 0
	for _, tt := range tests {
		b.Write(tt.offset, tt.data)
		if tt.wantFire {
			fired++
		}
		assert.Len(t, got, fired, "%s: got %d callbacks, want %d", tt.name, len(got), fired)
	}
	first, ok := b.Marked()
	assert.True(t, ok)
	assert.Equal(t, at, first)
	assert.Equal(t, uint64(3), b.Ignored(), "ignored: got %d, want 3", b.Ignored())
}

func TestSink(t *testing.T) {
	s := NewSink()
	data := []byte{1, 2, 3, 4}
	s.Read(0, data)
	assert.Equal(t, []byte{0xff, 0xff, 0xff, 0xff}, data)
	s.Write(0, data)
	assert.Equal(t, uint64(2), s.Accesses())
	var zero Sink
	zero.Write(0, nil)
	assert.Equal(t, uint64(1), zero.Accesses())
}

func TestGarbageNeverPanics(t *testing.T) {
	devs := []devices.Device{
		NewResetControl(func() {}), NewResetControl(nil),
		NewDebugExit(func(byte) {}), NewDebugExit(nil),
		NewBootMarker(func(time.Time) {}, nil), NewBootMarker(nil, nil),
		NewSink(),
	}
	r := rand.New(rand.NewPCG(9, 10))
	for range 10000 {
		d := devs[r.IntN(len(devs))]
		data := make([]byte, []int{0, 1, 2, 4, 8}[r.IntN(5)])
		for i := range data {
			data[i] = byte(r.UintN(256))
		}
		off := r.Uint64N(3)
		if r.IntN(2) == 0 {
			d.Write(off, data)
		} else {
			d.Read(off, data)
		}
	}
}
