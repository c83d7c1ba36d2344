package memory

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

const (
	// PageSize is the granularity of guest memory regions: the x86 page,
	// which is also what KVM requires of memory slot addresses and sizes.
	PageSize = 4096

	// MMIOHoleStart is where the 32-bit MMIO window begins: guest RAM
	// above 3 GiB is relocated above 4 GiB to make room for it.
	MMIOHoleStart = 0xC000_0000
	// MMIOHoleEnd is the end of the 32-bit MMIO window (4 GiB), where
	// high RAM starts.
	MMIOHoleEnd = 1 << 32
)

// ErrOutOfBounds is wrapped by every error reporting an access to guest
// physical addresses that no single region backs.
var ErrOutOfBounds = errors.New("guest physical range not backed by guest memory")

// Range is a span of guest-physical address space: [GPA, GPA+Size).
type Range struct {
	GPA  uint64
	Size uint64
}

// End returns the first address past r. Callers validate that it does not
// overflow (Layout and NewRanges do).
func (r Range) End() uint64 { return r.GPA + r.Size }

// Region is a range of guest RAM and the host memory backing it; Host has
// exactly the region's size.
type Region struct {
	GPA  uint64
	Host []byte
}

// Size returns the region's length in bytes.
func (r Region) Size() uint64 { return uint64(len(r.Host)) }

// End returns the first guest-physical address past the region.
func (r Region) End() uint64 { return r.GPA + r.Size() }

// Guest is a guest's RAM. Its regions are fixed at construction, so Slice,
// ReadAt and WriteAt may be used concurrently; Close must not race with
// them.
type Guest struct {
	regions []Region // sorted by GPA, non-overlapping, non-empty
	mapped  bool     // regions come from mmap and are unmapped by Close
}

// Layout returns where New places size bytes of RAM: [0, size) when it fits
// below MMIOHoleStart, otherwise [0, MMIOHoleStart) plus the rest from
// MMIOHoleEnd up. size must be a non-zero multiple of PageSize.
func Layout(size uint64) ([]Range, error) {
	switch {
	case size == 0:
		return nil, errors.New("guest memory size is zero")
	case size%PageSize != 0:
		return nil, fmt.Errorf("guest memory size %#x is not a multiple of the %#x-byte page size", size, PageSize)
	case size <= MMIOHoleStart:
		return []Range{{GPA: 0, Size: size}}, nil
	}
	high := size - MMIOHoleStart
	if high > math.MaxUint64-MMIOHoleEnd {
		return nil, fmt.Errorf("guest memory size %#x does not fit in the address space above the mmio hole", size)
	}
	return []Range{
		{GPA: 0, Size: MMIOHoleStart},
		{GPA: MMIOHoleEnd, Size: high},
	}, nil
}

// New allocates size bytes of guest RAM laid out by Layout.
func New(size uint64) (*Guest, error) {
	ranges, err := Layout(size)
	if err != nil {
		return nil, fmt.Errorf("new guest memory: %w", err)
	}
	return NewRanges(ranges)
}

// HugePageSize is the size of an x86-64 transparent huge page (a PMD).
const HugePageSize = 2 << 20

// NewRanges allocates guest RAM for each range. Ranges must be non-empty,
// page aligned, and must not overlap or wrap past the top of the address
// space. Each range is an anonymous private mapping reserved lazily
// (MAP_NORESERVE): host memory is consumed only as the guest touches it.
//
// Each mapping starts on a 2 MiB boundary and asks for transparent huge
// pages (MADV_HUGEPAGE, for hosts where THP is "madvise" only). KVM maps a
// guest page with a 2 MiB nested-page-table entry only where the host page
// is huge and guest-physical and host-virtual addresses agree modulo 2 MiB;
// an mmap placed anywhere (Linux before 6.7 does not align large
// anonymous mappings) leaves the guest on 4 KiB entries, and every TLB
// miss walks two full page-table trees. Measured in the nested harness:
// the guest's in-place XZ decompression ran 1.5x slower that way.
func NewRanges(ranges []Range) (*Guest, error) {
	sorted, err := validateRanges(ranges)
	if err != nil {
		return nil, fmt.Errorf("new guest memory: %w", err)
	}
	g := &Guest{mapped: true}
	for _, r := range sorted {
		if r.Size > math.MaxInt {
			return nil, closeAfter(g, fmt.Errorf("new guest memory: region at %#x of %#x bytes is too large to map", r.GPA, r.Size))
		}
		host, err := mapAligned(uintptr(r.Size), HugePageSize)
		if err != nil {
			return nil, closeAfter(g, fmt.Errorf("new guest memory: map %#x bytes for [%#x, %#x): %w", r.Size, r.GPA, r.End(), err))
		}
		g.regions = append(g.regions, Region{GPA: r.GPA, Host: host})
		// EINVAL: a kernel without THP; the guest works on small pages.
		_ = unix.Madvise(host, unix.MADV_HUGEPAGE)
	}
	return g, nil
}

// closeAfter releases what a failed constructor had mapped and returns err
// together with any failure to do so.
func closeAfter(g *Guest, err error) error {
	if cerr := g.Close(); cerr != nil {
		return multierror.Append(err, cerr)
	}
	return err
}

// FromBytes builds a Guest over caller-owned buffers, for device-model
// tests that need guest memory without mmap. Close does not free them.
// Such memory lives on the Go heap and must never be registered with KVM.
func FromBytes(regions ...Region) (*Guest, error) {
	ranges := make([]Range, len(regions))
	for i, r := range regions {
		ranges[i] = Range{GPA: r.GPA, Size: r.Size()}
	}
	if _, err := validateRanges(ranges); err != nil {
		return nil, fmt.Errorf("guest memory from bytes: %w", err)
	}
	g := &Guest{regions: append([]Region(nil), regions...)}
	sort.Slice(g.regions, func(i, j int) bool { return g.regions[i].GPA < g.regions[j].GPA })
	return g, nil
}

// validateRanges checks ranges and returns them sorted by address.
func validateRanges(ranges []Range) ([]Range, error) {
	if len(ranges) == 0 {
		return nil, errors.New("no memory ranges")
	}
	sorted := append([]Range(nil), ranges...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].GPA < sorted[j].GPA })
	for i, r := range sorted {
		switch {
		case r.Size == 0:
			return nil, fmt.Errorf("range at %#x is empty", r.GPA)
		case r.GPA%PageSize != 0 || r.Size%PageSize != 0:
			return nil, fmt.Errorf("range at %#x of %#x bytes is not page aligned", r.GPA, r.Size)
		case r.GPA+r.Size < r.GPA:
			return nil, fmt.Errorf("range at %#x of %#x bytes wraps past the top of the address space", r.GPA, r.Size)
		case i > 0 && sorted[i-1].End() > r.GPA:
			return nil, fmt.Errorf("range [%#x, %#x) overlaps [%#x, %#x)", sorted[i-1].GPA, sorted[i-1].End(), r.GPA, r.End())
		}
	}
	return sorted, nil
}

// Close unmaps all regions. Slices obtained earlier must not be used
// afterwards. Closing twice is a no-op.
func (g *Guest) Close() error {
	var result *multierror.Error
	if g.mapped {
		for _, r := range g.regions {
			if err := unmap(r.Host); err != nil {
				result = multierror.Append(result, fmt.Errorf("unmap guest memory [%#x, %#x): %w", r.GPA, r.End(), err))
			}
		}
	}
	g.regions = nil
	return result.ErrorOrNil()
}

// Regions returns the regions in ascending address order, for registering
// with the hypervisor (one KVM memory slot each). The Host slices alias
// guest memory; the returned slice itself is a copy.
func (g *Guest) Regions() []Region {
	return append([]Region(nil), g.regions...)
}

// Size returns the total amount of guest RAM in bytes.
func (g *Guest) Size() uint64 {
	var n uint64
	for _, r := range g.regions {
		n += r.Size()
	}
	return n
}

// find returns the region holding the byte at gpa.
func (g *Guest) find(gpa uint64) (Region, bool) {
	// The first region ending after gpa holds it if it starts at or
	// below it.
	i := sort.Search(len(g.regions), func(i int) bool { return g.regions[i].End() > gpa })
	if i < len(g.regions) && g.regions[i].GPA <= gpa {
		return g.regions[i], true
	}
	return Region{}, false
}

// Slice returns the n bytes of guest memory at gpa as a slice aliasing guest
// RAM, so that writes to it are seen by the guest. The whole range [gpa,
// gpa+n) must lie inside one region; otherwise, or if gpa+n overflows, the
// error wraps ErrOutOfBounds. A zero-length range is valid anywhere from a
// region's first byte up to and including its end.
func (g *Guest) Slice(gpa, n uint64) ([]byte, error) {
	end := gpa + n
	if end < gpa {
		return nil, fmt.Errorf("guest range at %#x of %#x bytes wraps past the top of the address space: %w", gpa, n, ErrOutOfBounds)
	}
	if n == 0 {
		// An empty range needs only a position: any byte of a region, or
		// the end of one (like b[len(b):] in Go).
		if r, ok := g.find(gpa); ok {
			off := gpa - r.GPA
			return r.Host[off:off:off], nil
		}
		if gpa > 0 {
			if r, ok := g.find(gpa - 1); ok {
				return r.Host[len(r.Host):len(r.Host)], nil
			}
		}
		return nil, fmt.Errorf("empty guest range at %#x is outside guest memory: %w", gpa, ErrOutOfBounds)
	}
	r, ok := g.find(gpa)
	if !ok || end > r.End() {
		return nil, fmt.Errorf("guest range [%#x, %#x) is not inside one guest memory region: %w", gpa, end, ErrOutOfBounds)
	}
	off := gpa - r.GPA
	return r.Host[off : off+n : off+n], nil
}

// ReadAt copies guest memory starting at guest-physical address off into p,
// implementing io.ReaderAt. The range may span regions only where they are
// contiguous; at a gap it stops and reports ErrOutOfBounds with the number
// of bytes copied before it.
func (g *Guest) ReadAt(p []byte, off int64) (int, error) {
	return g.access(p, off, false)
}

// WriteAt copies p into guest memory starting at guest-physical address off,
// implementing io.WriterAt, with the same rules as ReadAt.
func (g *Guest) WriteAt(p []byte, off int64) (int, error) {
	return g.access(p, off, true)
}

func (g *Guest) access(p []byte, off int64, write bool) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("guest address %d is negative: %w", off, ErrOutOfBounds)
	}
	gpa := uint64(off)
	done := 0
	for done < len(p) {
		cur := gpa + uint64(done)
		if cur < gpa {
			return done, fmt.Errorf("guest range at %#x of %#x bytes wraps past the top of the address space: %w", gpa, len(p), ErrOutOfBounds)
		}
		r, ok := g.find(cur)
		if !ok {
			return done, fmt.Errorf("guest address %#x (byte %d of access at %#x) is outside guest memory: %w", cur, done, gpa, ErrOutOfBounds)
		}
		hostOff := cur - r.GPA
		var n int
		if write {
			n = copy(r.Host[hostOff:], p[done:])
		} else {
			n = copy(p[done:], r.Host[hostOff:])
		}
		done += n
	}
	return done, nil
}

// ReadUint16 reads a little-endian 16-bit value at gpa.
func (g *Guest) ReadUint16(gpa uint64) (uint16, error) {
	b, err := g.Slice(gpa, 2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

// ReadUint32 reads a little-endian 32-bit value at gpa.
func (g *Guest) ReadUint32(gpa uint64) (uint32, error) {
	b, err := g.Slice(gpa, 4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

// ReadUint64 reads a little-endian 64-bit value at gpa.
func (g *Guest) ReadUint64(gpa uint64) (uint64, error) {
	b, err := g.Slice(gpa, 8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// WriteUint16 writes v little-endian at gpa.
func (g *Guest) WriteUint16(gpa uint64, v uint16) error {
	b, err := g.Slice(gpa, 2)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint16(b, v)
	return nil
}

// WriteUint32 writes v little-endian at gpa.
func (g *Guest) WriteUint32(gpa uint64, v uint32) error {
	b, err := g.Slice(gpa, 4)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(b, v)
	return nil
}

// WriteUint64 writes v little-endian at gpa.
func (g *Guest) WriteUint64(gpa uint64, v uint64) error {
	b, err := g.Slice(gpa, 8)
	if err != nil {
		return err
	}
	binary.LittleEndian.PutUint64(b, v)
	return nil
}
