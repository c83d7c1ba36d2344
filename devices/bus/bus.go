package bus

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/devices"
)

// MaxTrackedAddrs bounds how many distinct unhandled addresses a bus keeps
// individual counts for.
const MaxTrackedAddrs = 4096

// Registration errors, wrapped with the offending range.
var (
	ErrZeroSize      = errors.New("zero size")
	ErrOutOfRange    = errors.New("range runs past the end of the address space")
	ErrOverlap       = errors.New("range overlaps a registered device")
	ErrNilDevice     = errors.New("nil device")
	ErrNotRegistered = errors.New("not registered")
)

// entry is one registered range [base, last] (last inclusive, so that a
// range may end exactly at the top of the address space).
type entry struct {
	base, last uint64
	dev        devices.Device
	// hits counts the accesses the device served; a pointer, so that the
	// copies of the entry in later snapshots share it.
	hits *atomic.Uint64
}

// Hits is how often one registered range was accessed: an access is a VM
// exit, or one item of a string I/O exit (rep outsb), so these say where a
// guest spends its exits. A range that moves (a PCI BAR) counts afresh.
type Hits struct {
	Base, Size uint64
	Device     string // the device's Go type
	Count      uint64
}

// space is the address-type-independent implementation of PIO and MMIO.
type space struct {
	name   string // "PIO" or "MMIO", for errors and logs
	max    uint64 // highest address in the space
	format string // fmt verb for an address of this space
	log    *slog.Logger

	regMu   sync.Mutex              // serialises Register (writers of entries)
	entries atomic.Pointer[[]entry] // sorted by base, never mutated once published

	statMu    sync.Mutex        // guards unhandled and untracked
	unhandled map[uint64]uint64 // per-address counts of unhandled accesses
	untracked uint64            // unhandled accesses past MaxTrackedAddrs addresses
}

func newSpace(name string, max uint64, format string, log *slog.Logger) *space {
	if log == nil {
		log = slog.Default()
	}
	s := &space{name: name, max: max, format: format, log: log, unhandled: make(map[uint64]uint64)}
	s.entries.Store(&[]entry{})
	return s
}

// addr formats an address of this space.
func (s *space) addr(a uint64) string { return fmt.Sprintf(s.format, a) }

func (s *space) register(base, size uint64, dev devices.Device) error {
	if dev == nil {
		return fmt.Errorf("register %s device at %s: %w", s.name, s.addr(base), ErrNilDevice)
	}
	if size == 0 {
		return fmt.Errorf("register %s device %T at %s: %w", s.name, dev, s.addr(base), ErrZeroSize)
	}
	if base > s.max || size-1 > s.max-base {
		return fmt.Errorf("register %s device %T at %s size %#x: %w", s.name, dev, s.addr(base), size, ErrOutOfRange)
	}
	last := base + (size - 1)

	s.regMu.Lock()
	defer s.regMu.Unlock()
	old := *s.entries.Load()
	i, _ := slices.BinarySearchFunc(old, base, byBase)
	// Sorted and disjoint: only the neighbours can overlap [base, last].
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(old) {
			continue
		}
		if e := old[j]; e.base <= last && base <= e.last {
			return fmt.Errorf("register %s device %T at [%s, %s]: %w: %T at [%s, %s]",
				s.name, dev, s.addr(base), s.addr(last), ErrOverlap, e.dev, s.addr(e.base), s.addr(e.last))
		}
	}
	next := slices.Insert(slices.Clone(old), i, entry{base: base, last: last, dev: dev, hits: new(atomic.Uint64)})
	s.entries.Store(&next)
	return nil
}

// unregister removes the range registered at base for dev. A PCI BAR that
// moves is unregistered from its old address and registered at the new one.
func (s *space) unregister(base uint64, dev devices.Device) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	old := *s.entries.Load()
	i, found := slices.BinarySearchFunc(old, base, byBase)
	if !found || old[i].dev != dev {
		return fmt.Errorf("unregister %s device %T at %s: %w", s.name, dev, s.addr(base), ErrNotRegistered)
	}
	next := slices.Delete(slices.Clone(old), i, i+1)
	s.entries.Store(&next)
	return nil
}

func byBase(e entry, addr uint64) int { return cmp.Compare(e.base, addr) }

// find returns the entry that contains all of [addr, addr+n).
func (s *space) find(addr uint64, n int) (entry, bool) {
	if n <= 0 || addr > s.max || uint64(n-1) > s.max-addr {
		return entry{}, false
	}
	es := *s.entries.Load()
	// The last entry whose base is <= addr is the only candidate.
	i, found := slices.BinarySearchFunc(es, addr, byBase)
	if !found {
		i--
	}
	if i < 0 {
		return entry{}, false
	}
	e := es[i]
	if addr+uint64(n-1) > e.last {
		return entry{}, false
	}
	return e, true
}

func (s *space) read(addr uint64, data []byte) bool {
	if e, ok := s.find(addr, len(data)); ok {
		e.hits.Add(1)
		e.dev.Read(addr-e.base, data)
		return true
	}
	for i := range data {
		data[i] = 0xff
	}
	s.miss(addr, len(data), "read")
	return false
}

func (s *space) write(addr uint64, data []byte) bool {
	if e, ok := s.find(addr, len(data)); ok {
		e.hits.Add(1)
		e.dev.Write(addr-e.base, data)
		return true
	}
	s.miss(addr, len(data), "write")
	return false
}

func (s *space) miss(addr uint64, n int, op string) {
	s.statMu.Lock()
	c, tracked := s.unhandled[addr]
	first := !tracked && len(s.unhandled) < MaxTrackedAddrs
	firstUntracked := false
	switch {
	case tracked || first:
		s.unhandled[addr] = c + 1
	default:
		s.untracked++
		firstUntracked = s.untracked == 1
	}
	s.statMu.Unlock()
	if first {
		s.log.Debug("unhandled "+s.name+" access", "op", op, "addr", s.addr(addr), "len", n)
	}
	if firstUntracked {
		s.log.Debug("unhandled "+s.name+" addresses exceed the tracking limit; counting the rest in total",
			"limit", MaxTrackedAddrs)
	}
}

// hitCounts returns the access counts of the ranges registered now, busiest
// first.
func (s *space) hitCounts() []Hits {
	es := *s.entries.Load()
	out := make([]Hits, 0, len(es))
	for _, e := range es {
		out = append(out, Hits{Base: e.base, Size: e.last - e.base + 1, Device: fmt.Sprintf("%T", e.dev), Count: e.hits.Load()})
	}
	slices.SortStableFunc(out, func(a, b Hits) int { return cmp.Compare(b.Count, a.Count) })
	return out
}

func (s *space) counts() map[uint64]uint64 {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	return maps.Clone(s.unhandled)
}

func (s *space) untrackedCount() uint64 {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	return s.untracked
}
