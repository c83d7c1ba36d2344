package rtc

import (
	"log/slog"
	"sync"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/ratelog"
)

// Port offsets from the base (0x70).
const (
	offIndex = 0 // write: bit 7 masks NMI on PCs, bits 0-6 select a byte
	offData  = 1
)

// CMOS byte indices (MC146818A Figure 2 and Table 3; 0x32 by PC convention).
const (
	regSeconds = 0x00
	regMinutes = 0x02
	regHours   = 0x04
	regWeekday = 0x06 // 1-7, Sunday = 1
	regDay     = 0x07
	regMonth   = 0x08
	regYear    = 0x09 // 0-99
	regA       = 0x0a
	regB       = 0x0b
	regC       = 0x0c
	regD       = 0x0d
	regCentury = 0x32

	ramSize   = 128
	indexMask = 0x7f
	nmiMask   = 0x80
)

// Register A bits ("Register A"): UIP, then the divider (DV2-0) and rate
// select (RS3-0). 0x26 is the PC's setting: 32.768 kHz time base, 1024 Hz
// periodic rate.
const (
	aUIP     = 0x80
	aDefault = 0x26
)

// Register B bits ("Register B").
const (
	bSET  = 0x80 // updates inhibited while the guest sets the time
	bPIE  = 0x40
	bAIE  = 0x20
	bUIE  = 0x10
	bSQWE = 0x08
	bDM   = 0x04 // data mode: 1 binary, 0 BCD
	b24   = 0x02 // 1: 24-hour, 0: 12-hour with bit 7 of hours = PM
	bDSE  = 0x01

	bDefault = b24 // BCD, 24-hour: what PC firmware leaves
)

// Register D bit VRT ("Register D"): RAM and time are valid.
const dVRT = 0x80

// hourPM is bit 7 of the hours byte in 12-hour mode.
const hourPM = 0x80

// uipWindow is how long before each update UIP reads set (tBUC, 244 µs, for
// the 32.768 kHz time base).
const uipWindow = 244 * time.Microsecond

// Config configures an RTC. Every field may be left zero.
type Config struct {
	// Now returns the host time the clock shows (converted to UTC).
	// nil: time.Now.
	Now func() time.Time
	// Logger receives rate-limited reports of invalid accesses. nil:
	// slog.Default().
	Logger *slog.Logger
}

// Stats are an RTC's counters.
type Stats struct {
	TimeWrites  uint64 // ignored writes to the clock registers
	BadAccesses uint64 // accesses at offsets other than 0 and 1
}

// RTC is an emulated MC146818A with 128 bytes of CMOS RAM. It implements
// devices.Device over 2 ports; create it with New. It is safe for
// concurrent use.
type RTC struct {
	now func() time.Time
	log *ratelog.Logger

	mu    sync.Mutex    // guards index, ram and stats
	index byte          // selected byte, 0-127 (the NMI bit stripped)
	ram   [ramSize]byte // RAM, registers A and B; clock bytes unused
	stats Stats
}

var _ devices.Device = (*RTC)(nil)

// New returns an RTC whose registers hold what PC firmware leaves: register
// A 0x26, register B 0x02 (BCD, 24-hour), register D "valid".
func New(cfg Config) *RTC {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	r := &RTC{now: now, log: ratelog.New(cfg.Logger)}
	r.ram[regA] = aDefault
	r.ram[regB] = bDefault
	return r
}

// Read reads consecutive ports from offset: the index port reads as 0xff
// (it is write-only), the data port reads the selected byte.
func (r *RTC) Read(offset uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		switch offset + uint64(i) {
		case offIndex:
			data[i] = 0xff
		case offData:
			data[i] = r.readByte(r.index)
		default:
			data[i] = 0xff
			r.bad("read", offset+uint64(i))
		}
	}
}

// Write writes consecutive ports from offset: the index port selects a byte
// (bit 7, the PC's NMI mask, is ignored), the data port writes it.
func (r *RTC) Write(offset uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, v := range data {
		switch offset + uint64(i) {
		case offIndex:
			r.index = v & indexMask
		case offData:
			r.writeByte(r.index, v)
		default:
			r.bad("write", offset+uint64(i))
		}
	}
}

// Stats returns a snapshot of the RTC's counters.
func (r *RTC) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *RTC) bad(op string, off uint64) {
	r.stats.BadAccesses++
	r.log.Warn("rtc: access outside its ports", "op", op, "offset", off)
}

func (r *RTC) readByte(i byte) byte {
	switch i {
	case regSeconds, regMinutes, regHours, regWeekday, regDay, regMonth, regYear, regCentury:
		return r.clock(i, r.now().UTC())
	case regA:
		v := r.ram[regA] &^ aUIP
		if r.ram[regB]&bSET == 0 && r.updatePending(r.now()) {
			v |= aUIP
		}
		return v
	case regC:
		return 0 // no interrupt flags: interrupts are not modelled
	case regD:
		return dVRT
	}
	return r.ram[i]
}

func (r *RTC) writeByte(i, v byte) {
	switch i {
	case regSeconds, regMinutes, regHours, regWeekday, regDay, regMonth, regYear, regCentury:
		r.stats.TimeWrites++
		r.log.Debug("rtc: write to a clock register ignored", "index", i, "value", v)
	case regA:
		r.ram[regA] = v &^ aUIP // UIP is read-only
	case regC, regD:
		// Read-only.
	default:
		r.ram[i] = v
	}
}

// updatePending reports whether t lies in the last uipWindow before a
// second boundary.
func (r *RTC) updatePending(t time.Time) bool {
	return time.Duration(t.Nanosecond()) >= time.Second-uipWindow
}

// clock encodes clock byte i of t in register B's data mode and hour format.
func (r *RTC) clock(i byte, t time.Time) byte {
	b := r.ram[regB]
	var v int
	switch i {
	case regSeconds:
		v = t.Second()
	case regMinutes:
		v = t.Minute()
	case regHours:
		return encodeHour(t.Hour(), b)
	case regWeekday:
		v = int(t.Weekday()) + 1
	case regDay:
		v = t.Day()
	case regMonth:
		v = int(t.Month())
	case regYear:
		v = t.Year() % 100
	case regCentury:
		v = t.Year() / 100 % 100
	}
	return encode(v, b)
}

// encode returns v (0-99) in binary or BCD as register B selects.
func encode(v int, regB byte) byte {
	if regB&bDM != 0 {
		return byte(v)
	}
	return byte(v/10<<4 | v%10)
}

// encodeHour returns hour (0-23) in 24-hour form, or in 12-hour form (1-12,
// bit 7 set for PM) when register B's 24/12 bit is clear.
func encodeHour(hour int, regB byte) byte {
	if regB&b24 != 0 {
		return encode(hour, regB)
	}
	h := hour % 12
	if h == 0 {
		h = 12
	}
	v := encode(h, regB)
	if hour >= 12 {
		v |= hourPM
	}
	return v
}
