package bus

import (
	"log/slog"

	"github.com/govmm/govmm/devices"
)

// Addr is a guest-physical address.
type Addr uint64

// MMIO is the guest-physical memory-mapped I/O space. The zero value is not
// usable; use NewMMIO.
type MMIO struct{ s *space }

const addrFormat = "%#x"

// NewMMIO returns an empty MMIO bus that logs through logger
// (slog.Default() when nil).
func NewMMIO(logger *slog.Logger) *MMIO {
	return &MMIO{s: newSpace("MMIO", ^uint64(0), addrFormat, logger)}
}

// Register maps [base, base+size) to dev. It fails when size is zero, when
// the range runs past the top of the 64-bit address space (a range may end
// exactly there), or when it overlaps a registered range.
func (b *MMIO) Register(base Addr, size uint64, dev devices.Device) error {
	return b.s.register(uint64(base), size, dev)
}

// Unregister removes the range at base, which must have been registered
// for dev. Accesses already dispatched to dev may still reach it.
func (b *MMIO) Unregister(base Addr, dev devices.Device) error {
	return b.s.unregister(uint64(base), dev)
}

// Read dispatches a load of len(data) bytes from addr and reports whether a
// device handled it; unhandled reads return all ones.
func (b *MMIO) Read(addr Addr, data []byte) bool {
	return b.s.read(uint64(addr), data)
}

// Write dispatches a store of data to addr and reports whether a device
// handled it.
func (b *MMIO) Write(addr Addr, data []byte) bool {
	return b.s.write(uint64(addr), data)
}

// Unhandled returns a copy of the per-address counts of unhandled accesses.
func (b *MMIO) Unhandled() map[Addr]uint64 {
	out := make(map[Addr]uint64)
	for k, v := range b.s.counts() {
		out[Addr(k)] = v
	}
	return out
}

// Untracked reports how many unhandled accesses hit addresses beyond the
// first MaxTrackedAddrs distinct ones, which are not counted individually.
func (b *MMIO) Untracked() uint64 { return b.s.untrackedCount() }

// Hits returns how often each registered range was accessed, busiest first.
func (b *MMIO) Hits() []Hits { return b.s.hitCounts() }
