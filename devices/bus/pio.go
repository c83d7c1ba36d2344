package bus

import (
	"log/slog"

	"github.com/govmm/govmm/devices"
)

// Port is an x86 I/O port number.
type Port uint16

// PIO is the x86 port I/O space: 65536 ports. The zero value is not usable;
// use NewPIO.
type PIO struct{ s *space }

const portFormat = "%#04x"

// NewPIO returns an empty port I/O bus that logs through logger
// (slog.Default() when nil).
func NewPIO(logger *slog.Logger) *PIO {
	return &PIO{s: newSpace("PIO", 0xffff, portFormat, logger)}
}

// Register maps ports [base, base+size) to dev. It fails when size is zero,
// when the range runs past port 0xffff, or when it overlaps a registered
// range.
func (b *PIO) Register(base Port, size uint32, dev devices.Device) error {
	return b.s.register(uint64(base), uint64(size), dev)
}

// Unregister removes the range registered at base for dev (a PCI I/O BAR
// that moves).
func (b *PIO) Unregister(base Port, dev devices.Device) error {
	return b.s.unregister(uint64(base), dev)
}

// Read dispatches an IN of len(data) bytes from port and reports whether a
// device handled it; unhandled reads return all ones.
func (b *PIO) Read(port Port, data []byte) bool {
	return b.s.read(uint64(port), data)
}

// Write dispatches an OUT of data to port and reports whether a device
// handled it.
func (b *PIO) Write(port Port, data []byte) bool {
	return b.s.write(uint64(port), data)
}

// Unhandled returns a copy of the per-port counts of unhandled accesses.
func (b *PIO) Unhandled() map[Port]uint64 {
	out := make(map[Port]uint64)
	for k, v := range b.s.counts() {
		out[Port(k)] = v
	}
	return out
}

// Untracked reports how many unhandled accesses hit ports beyond the first
// MaxTrackedAddrs distinct ones, which are not counted individually.
func (b *PIO) Untracked() uint64 { return b.s.untrackedCount() }

// Hits returns how often each registered range was accessed, busiest first.
func (b *PIO) Hits() []Hits { return b.s.hitCounts() }
