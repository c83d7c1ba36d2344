package blk

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// iovMax is Linux's limit on buffers per preadv or pwritev (UIO_MAXIOV);
// an indirect table may hold more.
const iovMax = 1024

// preadvFull fills bufs from f at off with preadv, retrying short reads. A
// read past the end of the file is io.ErrUnexpectedEOF.
func preadvFull(f *os.File, bufs [][]byte, off int64) (int, error) {
	fd := int(f.Fd())
	total := 0
	for len(bufs) > 0 {
		n, err := unix.Preadv(fd, bufs[:min(len(bufs), iovMax)], off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, io.ErrUnexpectedEOF
		}
		total += n
		off += int64(n)
		bufs = advance(bufs, n)
	}
	return total, nil
}

// pwritevFull writes bufs to f at off with pwritev, retrying short writes.
func pwritevFull(f *os.File, bufs [][]byte, off int64) error {
	fd := int(f.Fd())
	for len(bufs) > 0 {
		n, err := unix.Pwritev(fd, bufs[:min(len(bufs), iovMax)], off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		bufs = advance(bufs, n)
	}
	return nil
}

// advance drops the first n bytes of bufs (and empty buffers).
func advance(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}
