package memory

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapAligned maps size bytes of anonymous, lazily reserved memory whose
// start is a multiple of align (a power of two): it maps align bytes more
// and unmaps the slack on either side.
func mapAligned(size, align uintptr) ([]byte, error) {
	total := size + align
	p, err := unix.MmapPtr(-1, 0, nil, total, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, err
	}
	// SAFETY: p is the start of a mapping of total bytes; head and size
	// keep every pointer below inside it, and the slack is unmapped only
	// once nothing refers to it.
	head := (align - uintptr(p)&(align-1)) & (align - 1)
	if head > 0 {
		if err := unix.MunmapPtr(p, head); err != nil {
			unix.MunmapPtr(p, total)
			return nil, err
		}
	}
	start := unsafe.Add(p, head)
	if tail := total - head - size; tail > 0 {
		if err := unix.MunmapPtr(unsafe.Add(start, size), tail); err != nil {
			unix.MunmapPtr(start, size+tail)
			return nil, err
		}
	}
	return unsafe.Slice((*byte)(start), size), nil
}

// unmap releases a mapping made by mapAligned.
func unmap(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	// SAFETY: b is a whole mapping from mapAligned; nothing uses it after.
	return unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b)))
}

// hostAddress is where b starts in govmm's address space, for alignment
// checks.
func hostAddress(b []byte) uintptr {
	return uintptr(unsafe.Pointer(unsafe.SliceData(b)))
}
