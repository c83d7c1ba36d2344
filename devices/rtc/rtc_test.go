package rtc

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

func cmos(r *RTC, index byte) byte {
	r.Write(offIndex, []byte{index})
	b := []byte{0}
	r.Read(offData, b)
	return b[0]
}

func setCMOS(r *RTC, index, v byte) {
	r.Write(offIndex, []byte{index})
	r.Write(offData, []byte{v})
}

func TestClockRegisters(t *testing.T) {
	// Thursday 29 February 2024, 23:59:58 UTC.
	at := time.Date(2024, time.February, 29, 23, 59, 58, 0, time.UTC)
	regs := []byte{regSeconds, regMinutes, regHours, regWeekday, regDay, regMonth, regYear, regCentury}
	tests := []struct {
		name string
		regB byte
		at   time.Time
		want []byte // in the order of regs
	}{
		{name: "BCD 24h", regB: b24, at: at, want: []byte{0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20}},
		{name: "binary 24h", regB: b24 | bDM, at: at, want: []byte{58, 59, 23, 5, 29, 2, 24, 20}},
		{name: "BCD 12h PM", regB: 0, at: at, want: []byte{0x58, 0x59, 0x91, 0x05, 0x29, 0x02, 0x24, 0x20}},
		{name: "binary 12h PM", regB: bDM, at: at, want: []byte{58, 59, 0x80 | 11, 5, 29, 2, 24, 20}},
		{
			name: "BCD 12h midnight", regB: 0,
			at:   time.Date(1999, time.December, 31, 0, 0, 7, 0, time.UTC),
			want: []byte{0x07, 0x00, 0x12, 0x06, 0x31, 0x12, 0x99, 0x19},
		},
		{
			name: "BCD 12h noon", regB: 0,
			at:   time.Date(2000, time.January, 2, 12, 30, 0, 0, time.UTC),
			want: []byte{0x00, 0x30, 0x92, 0x01, 0x02, 0x01, 0x00, 0x20},
		},
		{
			name: "binary 24h non-UTC input", regB: b24 | bDM,
			at:   time.Date(2024, time.March, 1, 1, 59, 58, 0, time.FixedZone("CET", 2*3600)),
			want: []byte{58, 59, 23, 5, 29, 2, 24, 20},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{Now: fixed(tt.at)})
			setCMOS(r, regB, tt.regB)
			for i, reg := range regs {
				got := cmos(r, reg)
				assert.Equal(t, tt.want[i], got, "register %#x: got %#x, want %#x", reg, got, tt.want[i])
			}
		})
	}
}

func TestStatusRegisters(t *testing.T) {
	at := time.Date(2024, time.June, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		now  time.Time
		reg  byte
		want byte
	}{
		{name: "A default", now: at, reg: regA, want: 0x26},
		{name: "A with update imminent", now: at.Add(time.Second - 100*time.Microsecond), reg: regA, want: 0xa6},
		{name: "A just before the UIP window", now: at.Add(time.Second - 300*time.Microsecond), reg: regA, want: 0x26},
		{name: "B default", now: at, reg: regB, want: 0x02},
		{name: "C", now: at, reg: regC, want: 0x00},
		{name: "D valid", now: at, reg: regD, want: 0x80},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{Now: fixed(tt.now)})
			got := cmos(r, tt.reg)
			assert.Equal(t, tt.want, got, "got %#x, want %#x", got, tt.want)
		})
	}

	// SET in register B suppresses UIP; writes to C, D and UIP do not stick.
	r := New(Config{Now: fixed(at.Add(time.Second - time.Microsecond))})
	setCMOS(r, regB, bSET|b24)
	assert.Equal(t, byte(0x26), cmos(r, regA), "UIP while SET")
	setCMOS(r, regA, 0xff)
	assert.Equal(t, byte(0x7f), cmos(r, regA), "register A: UIP is read-only")
	setCMOS(r, regC, 0xff)
	setCMOS(r, regD, 0x00)
	assert.Equal(t, byte(0), cmos(r, regC))
	assert.Equal(t, byte(dVRT), cmos(r, regD))
}

func TestRAM(t *testing.T) {
	r := New(Config{Now: fixed(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))})
	clock := map[byte]bool{regSeconds: true, regMinutes: true, regHours: true, regWeekday: true,
		regDay: true, regMonth: true, regYear: true, regCentury: true,
		regA: true, regB: true, regC: true, regD: true}
	for i := range byte(ramSize) {
		if !clock[i] {
			setCMOS(r, i, i^0x5a)
		}
	}
	for i := range byte(ramSize) {
		if !clock[i] {
			got := cmos(r, i)
			assert.Equal(t, i^0x5a, got, "byte %#x: got %#x, want %#x", i, got, i^0x5a)
		}
	}
	// Alarm bytes are RAM.
	assert.Equal(t, byte(0x01^0x5a), cmos(r, 0x01))

	// Bit 7 of the index (NMI mask) does not select a byte.
	got := cmos(r, nmiMask|0x10)
	assert.Equal(t, byte(0x10^0x5a), got, "index with NMI bit: got %#x, want %#x", got, 0x10^0x5a)
	assert.Equal(t, byte(0x00), cmos(r, nmiMask|regSeconds), "seconds through NMI-masked index")

	// Clock writes are ignored and counted.
	setCMOS(r, regSeconds, 0x42)
	assert.Equal(t, byte(0x00), cmos(r, regSeconds))
	assert.Equal(t, uint64(1), r.Stats().TimeWrites)

	// The index port reads as 0xff.
	b := []byte{0}
	r.Read(offIndex, b)
	assert.Equal(t, byte(0xff), b[0])
}

func TestWideAndBadAccesses(t *testing.T) {
	r := New(Config{Now: fixed(time.Date(2024, 1, 1, 0, 0, 45, 0, time.UTC))})
	r.Write(offIndex, []byte{regSeconds, 0x00, 0x00}) // index, data (ignored clock write), bad
	b := make([]byte, 2)
	r.Read(offIndex, b)
	assert.Equal(t, []byte{0xff, 0x45}, b, "got %#v", b)
	r.Read(5, b)
	assert.Equal(t, []byte{0xff, 0xff}, b)
	st := r.Stats()
	assert.Equal(t, uint64(3), st.BadAccesses, "bad accesses: got %d, want 3", st.BadAccesses)
}

func TestGarbageNeverPanics(t *testing.T) {
	r := New(Config{})
	rnd := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		data := make([]byte, rnd.IntN(9))
		for i := range data {
			data[i] = byte(rnd.UintN(256))
		}
		off := rnd.Uint64N(4)
		if rnd.IntN(50) == 0 {
			off = rnd.Uint64()
		}
		if rnd.IntN(2) == 0 {
			r.Write(off, data)
		} else {
			r.Read(off, data)
		}
	}
	require.NotNil(t, r)
	assert.Equal(t, byte(dVRT), cmos(r, regD))
}
