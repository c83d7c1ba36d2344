package legacy

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/ratelog"
)

// Reset control register bits (Intel I/O controller hub datasheets, "RST_CNT
// - Reset Control Register", I/O port 0xcf9): bit 1 selects a hard reset,
// bit 2 starts the reset, bit 3 a full reset (power cycle).
const (
	rcSysReset = 0x02
	rcRstCPU   = 0x04
	rcFullRst  = 0x08
)

// ResetControl is the reset control register. Create it with
// NewResetControl; it is safe for concurrent use.
type ResetControl struct {
	onReset func()

	mu     sync.Mutex // guards value and resets
	value  byte       // bits 1 and 3 as last written; bit 2 self-clears
	resets uint64
}

// NewResetControl returns the register, calling onReset (if not nil) on
// every write with RST_CPU (bit 2) set.
func NewResetControl(onReset func()) *ResetControl {
	return &ResetControl{onReset: onReset}
}

// Read returns the register in data[0]; other bytes read all ones.
func (r *ResetControl) Read(offset uint64, data []byte) {
	r.mu.Lock()
	v := r.value
	r.mu.Unlock()
	fill(data)
	if offset == 0 && len(data) > 0 {
		data[0] = v
	}
}

// Write stores data[0] and resets the machine if it has RST_CPU set.
func (r *ResetControl) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) == 0 {
		return
	}
	v := data[0]
	reset := v&rcRstCPU != 0
	r.mu.Lock()
	r.value = v & (rcSysReset | rcFullRst)
	if reset {
		r.resets++
	}
	r.mu.Unlock()
	if reset && r.onReset != nil {
		r.onReset()
	}
}

// Resets reports how many resets the guest requested.
func (r *ResetControl) Resets() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resets
}

// DebugExit records the exit status byte the guest agent writes. Create it
// with NewDebugExit; it is safe for concurrent use.
type DebugExit struct {
	onExit func(status byte)

	mu     sync.Mutex // guards status and set
	status byte
	set    bool
}

// NewDebugExit returns the port, calling onExit (if not nil) with the
// status on every write.
func NewDebugExit(onExit func(status byte)) *DebugExit {
	return &DebugExit{onExit: onExit}
}

// Read returns all ones: the port is write-only.
func (d *DebugExit) Read(offset uint64, data []byte) { fill(data) }

// Write records data[0], the low byte of any access width, as the status.
func (d *DebugExit) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) == 0 {
		return
	}
	d.mu.Lock()
	d.status, d.set = data[0], true
	d.mu.Unlock()
	if d.onExit != nil {
		d.onExit(data[0])
	}
}

// Status returns the last status written and whether one was.
func (d *DebugExit) Status() (status byte, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status, d.set
}

// BootMarkerValue is the byte the guest's init writes to mark that it runs.
const BootMarkerValue = 123

// BootMarker reports the guest's boot marker. Create it with
// NewBootMarker; it is safe for concurrent use.
type BootMarker struct {
	onBoot func(at time.Time)
	now    func() time.Time
	log    *ratelog.Logger

	mu      sync.Mutex // guards first, marked, ignored
	first   time.Time  // when the first marker arrived
	marked  bool
	ignored uint64 // writes of other values or widths
}

// NewBootMarker returns the port, calling onBoot (if not nil) with the
// host time of every one-byte write of BootMarkerValue. Other writes are
// counted and logged (rate-limited, at debug level) through logger
// (slog.Default() when nil).
func NewBootMarker(onBoot func(at time.Time), logger *slog.Logger) *BootMarker {
	return &BootMarker{onBoot: onBoot, now: time.Now, log: ratelog.New(logger)}
}

// Read returns all ones: the port is write-only.
func (b *BootMarker) Read(offset uint64, data []byte) { fill(data) }

// Write fires the boot callback for a one-byte write of BootMarkerValue.
func (b *BootMarker) Write(offset uint64, data []byte) {
	if offset != 0 || len(data) != 1 || data[0] != BootMarkerValue {
		b.mu.Lock()
		b.ignored++
		b.mu.Unlock()
		b.log.Debug("boot marker: write ignored", "offset", offset, "len", len(data))
		return
	}
	at := b.now()
	b.mu.Lock()
	if !b.marked {
		b.first, b.marked = at, true
	}
	b.mu.Unlock()
	if b.onBoot != nil {
		b.onBoot(at)
	}
}

// Marked returns when the first boot marker arrived, and whether one did.
func (b *BootMarker) Marked() (at time.Time, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.first, b.marked
}

// Ignored reports how many writes were not a boot marker.
func (b *BootMarker) Ignored() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ignored
}

// Sink absorbs accesses to ports that are deliberately not emulated: reads
// return all ones (an empty ISA bus), writes are dropped. One Sink may be
// registered at several ports. The zero value is ready to use.
type Sink struct {
	accesses atomic.Uint64
}

// NewSink returns a Sink.
func NewSink() *Sink { return &Sink{} }

// Read fills data with all ones.
func (s *Sink) Read(offset uint64, data []byte) {
	s.accesses.Add(1)
	fill(data)
}

// Write drops data.
func (s *Sink) Write(offset uint64, data []byte) { s.accesses.Add(1) }

// Accesses reports how many accesses the sink absorbed.
func (s *Sink) Accesses() uint64 { return s.accesses.Load() }

var (
	_ devices.Device = (*ResetControl)(nil)
	_ devices.Device = (*DebugExit)(nil)
	_ devices.Device = (*BootMarker)(nil)
	_ devices.Device = (*Sink)(nil)
)

func fill(data []byte) {
	for i := range data {
		data[i] = 0xff
	}
}
