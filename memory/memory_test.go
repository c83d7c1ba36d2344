package memory

import (
	"bytes"
	"io"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

var _ io.ReaderAt = (*Guest)(nil)
var _ io.WriterAt = (*Guest)(nil)

func TestLayout(t *testing.T) {
	tests := []struct {
		name    string
		size    uint64
		want    []Range
		wantErr string
	}{
		{name: "one page", size: PageSize, want: []Range{{0, PageSize}}},
		{name: "small", size: 64 * mib, want: []Range{{0, 64 * mib}}},
		{name: "exactly up to the hole", size: MMIOHoleStart, want: []Range{{0, MMIOHoleStart}}},
		{name: "one page past the hole start", size: MMIOHoleStart + PageSize,
			want: []Range{{0, MMIOHoleStart}, {MMIOHoleEnd, PageSize}}},
		{name: "8 GiB", size: 8 * gib, want: []Range{{0, 3 * gib}, {4 * gib, 5 * gib}}},
		{name: "largest that fits", size: math.MaxUint64 - MMIOHoleEnd + MMIOHoleStart + 1 - PageSize,
			want: []Range{{0, MMIOHoleStart}, {MMIOHoleEnd, math.MaxUint64 - MMIOHoleEnd + 1 - PageSize}}},
		{name: "zero", size: 0, wantErr: "zero"},
		{name: "unaligned", size: PageSize + 1, wantErr: "not a multiple"},
		{name: "too large for the address space", size: math.MaxUint64 - PageSize + 1, wantErr: "does not fit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Layout(tc.size)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
			var total uint64
			for _, r := range got {
				total += r.Size
				assert.False(t, r.GPA < MMIOHoleEnd && r.End() > MMIOHoleStart, "range %+v overlaps the mmio hole", r)
			}
			assert.Equal(t, tc.size, total)
		})
	}
}

// testGuest builds a Guest over heap buffers with the same shape as New's
// high-memory layout, but scaled down: RAM at [0, 64 KiB) and
// [1 MiB, 1 MiB + 8 KiB), and an adjacent region at [1 MiB + 8 KiB,
// 1 MiB + 12 KiB), plus one page right below the top of the address space.
func testGuest(t *testing.T) *Guest {
	t.Helper()
	g, err := FromBytes(
		Region{GPA: mib, Host: fill(8*kib, 0x10)},
		Region{GPA: 0, Host: fill(64*kib, 0x00)},
		Region{GPA: mib + 8*kib, Host: fill(4*kib, 0x20)},
		Region{GPA: math.MaxUint64 - 2*PageSize + 1, Host: fill(PageSize, 0x30)},
	)
	require.NoError(t, err)
	return g
}

// fill returns n bytes whose value at i is base+i (mod 256), so a slice's
// first byte identifies where it came from.
func fill(n int, base byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = base + byte(i)
	}
	return b
}

func TestSlice(t *testing.T) {
	const top = math.MaxUint64 - 2*PageSize + 1 // start of the highest page
	tests := []struct {
		name      string
		gpa, n    uint64
		wantFirst byte // expected first byte when n > 0
		wantErr   bool
	}{
		{name: "first byte", gpa: 0, n: 1, wantFirst: 0x00},
		{name: "whole low region", gpa: 0, n: 64 * kib, wantFirst: 0x00},
		{name: "inside low region", gpa: 0x1234, n: 16, wantFirst: 0x34},
		{name: "last byte of low region", gpa: 64*kib - 1, n: 1, wantFirst: 0xff},
		{name: "one past the end of low region", gpa: 64*kib - 1, n: 2, wantErr: true},
		{name: "starts in the gap", gpa: 64 * kib, n: 1, wantErr: true},
		{name: "ends in the next region", gpa: mib - 1, n: 2, wantErr: true},
		{name: "crossing the gap", gpa: 0, n: mib + 1, wantErr: true},
		{name: "start of high region", gpa: mib, n: 8 * kib, wantFirst: 0x10},
		{name: "crossing adjacent regions", gpa: mib + 8*kib - 1, n: 2, wantErr: true},
		{name: "adjacent region", gpa: mib + 8*kib, n: 4 * kib, wantFirst: 0x20},
		{name: "past all memory", gpa: 2 * mib, n: 1, wantErr: true},
		{name: "top page", gpa: top, n: PageSize, wantFirst: 0x30},
		{name: "top page plus one", gpa: top, n: PageSize + 1, wantErr: true},
		{name: "overflow", gpa: top + 1, n: math.MaxUint64, wantErr: true},
		{name: "overflow by one", gpa: math.MaxUint64, n: 1, wantErr: true},
		{name: "huge length", gpa: 0, n: math.MaxUint64, wantErr: true},
		{name: "zero length at start", gpa: 0, n: 0},
		{name: "zero length inside", gpa: mib + 5, n: 0},
		{name: "zero length at end of a region", gpa: 64 * kib, n: 0},
		{name: "zero length in the gap", gpa: 64*kib + 1, n: 0, wantErr: true},
		{name: "zero length at the end of the top region", gpa: top + PageSize, n: 0},
		{name: "zero length at the top of the address space", gpa: math.MaxUint64, n: 0, wantErr: true},
		{name: "zero length past all memory", gpa: 3 * mib, n: 0, wantErr: true},
	}
	g := testGuest(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := g.Slice(tc.gpa, tc.n)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrOutOfBounds)
				assert.Contains(t, err.Error(), "0x", "error should name the address in hex")
				assert.Nil(t, b)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, b)
			require.Len(t, b, int(tc.n))
			assert.Equal(t, int(tc.n), cap(b), "capacity must not reach past the range")
			if tc.n > 0 {
				assert.Equal(t, tc.wantFirst, b[0])
			}
		})
	}
}

func TestSliceAliasesGuestMemory(t *testing.T) {
	g := testGuest(t)
	b, err := g.Slice(0x100, 4)
	require.NoError(t, err)
	copy(b, "abcd")
	got := make([]byte, 4)
	n, err := g.ReadAt(got, 0x100)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	assert.Equal(t, []byte("abcd"), got)
}

func TestReadWriteAt(t *testing.T) {
	tests := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantErr bool
	}{
		{name: "inside a region", off: 0x10, n: 32, wantN: 32},
		{name: "spanning adjacent regions", off: mib + 8*kib - 4, n: 8, wantN: 8},
		{name: "running into the gap", off: 64*kib - 4, n: 8, wantN: 4, wantErr: true},
		{name: "starting in the gap", off: 64 * kib, n: 1, wantN: 0, wantErr: true},
		{name: "negative offset", off: -1, n: 1, wantN: 0, wantErr: true},
		{name: "running past all memory", off: mib + 12*kib - 2, n: 4, wantN: 2, wantErr: true},
		{name: "empty", off: 64 * kib, n: 0, wantN: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := testGuest(t)
			data := bytes.Repeat([]byte{0xa5}, tc.n)
			n, err := g.WriteAt(data, tc.off)
			assert.Equal(t, tc.wantN, n)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrOutOfBounds)
			} else {
				require.NoError(t, err)
			}

			got := make([]byte, tc.n)
			n, err = g.ReadAt(got, tc.off)
			assert.Equal(t, tc.wantN, n)
			if tc.wantErr {
				require.ErrorIs(t, err, ErrOutOfBounds)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, data[:tc.wantN], got[:n])
		})
	}
}

func TestSectionReader(t *testing.T) {
	g := testGuest(t)
	r := io.NewSectionReader(g, mib, 8*kib+4*kib)
	all, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Len(t, all, 12*kib)
	assert.Equal(t, byte(0x10), all[0])
	assert.Equal(t, byte(0x20), all[8*kib])
}

func TestUintHelpers(t *testing.T) {
	g := testGuest(t)
	require.NoError(t, g.WriteUint16(0x200, 0xbeef))
	require.NoError(t, g.WriteUint32(0x210, 0xdeadbeef))
	require.NoError(t, g.WriteUint64(0x220, 0x0123456789abcdef))

	v16, err := g.ReadUint16(0x200)
	require.NoError(t, err)
	assert.Equal(t, uint16(0xbeef), v16)
	v32, err := g.ReadUint32(0x210)
	require.NoError(t, err)
	assert.Equal(t, uint32(0xdeadbeef), v32)
	v64, err := g.ReadUint64(0x220)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x0123456789abcdef), v64)

	raw := make([]byte, 2)
	_, err = g.ReadAt(raw, 0x200)
	require.NoError(t, err)
	assert.Equal(t, []byte{0xef, 0xbe}, raw, "guest memory is little-endian")

	_, err = g.ReadUint64(64*kib - 4)
	require.ErrorIs(t, err, ErrOutOfBounds)
	require.ErrorIs(t, g.WriteUint32(64*kib-2, 1), ErrOutOfBounds)
}

func TestNewRangesValidation(t *testing.T) {
	tests := []struct {
		name    string
		ranges  []Range
		wantErr string
	}{
		{name: "none", ranges: nil, wantErr: "no memory ranges"},
		{name: "empty range", ranges: []Range{{0, 0}}, wantErr: "empty"},
		{name: "unaligned address", ranges: []Range{{1, PageSize}}, wantErr: "not page aligned"},
		{name: "unaligned size", ranges: []Range{{0, PageSize + 1}}, wantErr: "not page aligned"},
		{name: "overlap", ranges: []Range{{PageSize, 2 * PageSize}, {0, 2 * PageSize}}, wantErr: "overlaps"},
		{name: "wraps", ranges: []Range{{math.MaxUint64 - PageSize + 1, PageSize}}, wantErr: "wraps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewRanges(tc.ranges)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, g)
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name      string
		size      uint64
		wantRange []Range
	}{
		{name: "small", size: 2 * mib, wantRange: []Range{{0, 2 * mib}}},
		// MAP_NORESERVE makes the 3 GiB low region cost address space
		// only; the test touches a few pages.
		{name: "above the hole", size: MMIOHoleStart + 2*mib,
			wantRange: []Range{{0, MMIOHoleStart}, {MMIOHoleEnd, 2 * mib}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.size)
			require.NoError(t, err)
			t.Cleanup(func() { require.NoError(t, g.Close()) })

			assert.Equal(t, tc.size, g.Size())
			regions := g.Regions()
			require.Len(t, regions, len(tc.wantRange))
			for i, r := range regions {
				assert.Equal(t, tc.wantRange[i], Range{GPA: r.GPA, Size: r.Size()})
				// Fresh anonymous memory reads as zero and is writable at
				// both ends.
				for _, gpa := range []uint64{r.GPA, r.End() - 8} {
					v, err := g.ReadUint64(gpa)
					require.NoError(t, err)
					assert.Zero(t, v)
					require.NoError(t, g.WriteUint64(gpa, gpa|1))
					v, err = g.ReadUint64(gpa)
					require.NoError(t, err)
					assert.Equal(t, gpa|1, v)
				}
			}
			if len(regions) > 1 {
				_, err := g.Slice(MMIOHoleStart-4, 8)
				require.ErrorIs(t, err, ErrOutOfBounds, "a range crossing into the hole must fail")
				_, err = g.Slice(MMIOHoleStart, 1)
				require.ErrorIs(t, err, ErrOutOfBounds, "the hole itself is not RAM")
			}
		})
	}
}

func TestCloseTwice(t *testing.T) {
	g, err := New(PageSize)
	require.NoError(t, err)
	require.NoError(t, g.Close())
	require.NoError(t, g.Close())
	_, err = g.Slice(0, 1)
	require.ErrorIs(t, err, ErrOutOfBounds, "closed memory has no regions")
}

func TestFromBytesValidation(t *testing.T) {
	_, err := FromBytes(Region{GPA: 0, Host: make([]byte, PageSize)}, Region{GPA: 0, Host: make([]byte, PageSize)})
	require.ErrorContains(t, err, "overlaps")
	_, err = FromBytes(Region{GPA: 0, Host: make([]byte, 100)})
	require.ErrorContains(t, err, "not page aligned")
}

// TestNewAlignsForHugePages: every region starts on a huge-page boundary in
// govmm's address space, as in guest-physical space, so KVM can map it with
// 2 MiB entries; the whole region is usable and unmaps cleanly.
func TestNewAlignsForHugePages(t *testing.T) {
	for _, size := range []uint64{64 << 20, 64<<20 + 4096, 130 << 20} {
		g, err := New(size)
		require.NoError(t, err)
		for _, r := range g.Regions() {
			assert.Zero(t, hostAddress(r.Host)%HugePageSize, "region at %#x starts at host %#x", r.GPA, hostAddress(r.Host))
			assert.Zero(t, r.GPA%HugePageSize)
			r.Host[0], r.Host[len(r.Host)-1] = 1, 2
		}
		require.NoError(t, g.Close())
	}
}
