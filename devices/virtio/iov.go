package virtio

// Helpers for devices that treat a chain's buffers as one byte stream.

// CopyFrom copies up to len(dst) bytes from the start of bufs and returns
// how many it copied.
func CopyFrom(dst []byte, bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(dst) {
			break
		}
		n += copy(dst[n:], b)
	}
	return n
}

// CopyTo copies src into bufs from their start and returns how many bytes
// fit.
func CopyTo(bufs [][]byte, src []byte) int {
	n := 0
	for _, b := range bufs {
		if n == len(src) {
			break
		}
		n += copy(b, src[n:])
	}
	return n
}

// Skip returns bufs without their first n bytes (the slices alias bufs'
// memory; dst is reused) and false if bufs hold fewer than n bytes.
func Skip(dst, bufs [][]byte, n uint64) ([][]byte, bool) {
	dst = dst[:0]
	for _, b := range bufs {
		if n >= uint64(len(b)) {
			n -= uint64(len(b))
			continue
		}
		dst = append(dst, b[n:])
		n = 0
	}
	return dst, n == 0
}

// SplitLast returns bufs without their last n bytes, and those n bytes, or
// false if bufs hold fewer than n bytes. The last bytes must lie in one
// buffer (a device's status byte or footer does, in every driver).
func SplitLast(dst, bufs [][]byte, n uint64) (head [][]byte, last []byte, ok bool) {
	dst = dst[:0]
	if len(bufs) == 0 || uint64(len(bufs[len(bufs)-1])) < n {
		// Zero-length trailing buffers are allowed before the footer's.
		for len(bufs) > 0 && len(bufs[len(bufs)-1]) == 0 {
			bufs = bufs[:len(bufs)-1]
		}
		if len(bufs) == 0 || uint64(len(bufs[len(bufs)-1])) < n {
			return dst, nil, false
		}
	}
	lastBuf := bufs[len(bufs)-1]
	cut := uint64(len(lastBuf)) - n
	dst = append(dst, bufs[:len(bufs)-1]...)
	if cut > 0 {
		dst = append(dst, lastBuf[:cut])
	}
	return dst, lastBuf[cut:], true
}
