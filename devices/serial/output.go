package serial

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/govmm/govmm/internal/ratelog"
)

// maxChunk bounds how many bytes the drainer hands the writer at once.
const maxChunk = 4096

// output is a bounded byte queue drained into an io.Writer by its own
// goroutine. push never blocks.
type output struct {
	w   io.Writer
	log *ratelog.Logger

	mu      sync.Mutex // guards buf, head, n, closed and the counters below
	buf     []byte     // ring buffer of queued bytes
	head, n int        // start and length of the queued bytes in buf
	closed  bool
	written uint64 // bytes the writer accepted
	dropped uint64 // bytes refused because the queue was full or closed
	errs    uint64 // failed writer calls

	wake chan struct{} // capacity 1: "the queue changed"
	done chan struct{} // closed when the drainer returns
}

func newOutput(w io.Writer, size int, log *ratelog.Logger) *output {
	o := &output{
		w:    w,
		log:  log,
		buf:  make([]byte, size),
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
	}
	go o.drain()
	return o
}

// push queues b, or drops and counts it when the queue is full or closed.
func (o *output) push(b byte) {
	o.mu.Lock()
	if o.closed || o.n == len(o.buf) {
		o.dropped++
		o.mu.Unlock()
		return
	}
	o.buf[(o.head+o.n)%len(o.buf)] = b
	o.n++
	o.mu.Unlock()
	o.signal()
}

func (o *output) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *output) drain() {
	defer close(o.done)
	chunk := make([]byte, maxChunk)
	for {
		o.mu.Lock()
		// Copy out the first contiguous run of queued bytes.
		k := min(o.n, len(o.buf)-o.head, len(chunk))
		copy(chunk, o.buf[o.head:o.head+k])
		o.head = (o.head + k) % len(o.buf)
		o.n -= k
		closed := o.closed
		o.mu.Unlock()

		if k == 0 {
			if closed {
				return
			}
			<-o.wake
			continue
		}
		n, err := o.w.Write(chunk[:k])
		if err == nil && n < k {
			err = io.ErrShortWrite
		}
		o.mu.Lock()
		o.written += uint64(max(n, 0))
		if err != nil {
			o.errs++
			o.dropped += uint64(k - max(n, 0))
		}
		o.mu.Unlock()
		if err != nil {
			o.log.Warn("serial output write failed; bytes dropped", "bytes", k-max(n, 0), "err", err)
		}
	}
}

// close stops accepting bytes and waits until the drainer has handed every
// queued byte to the writer, or ctx ends.
func (o *output) close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.signal()
	select {
	case <-o.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flush serial output: %w", ctx.Err())
	}
}

func (o *output) stats() (written, dropped, errs uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.written, o.dropped, o.errs
}
