package devtest

import (
	"bytes"
	"log/slog"
	"sync"
)

// IRQ is a counting fake of devices.IRQLine. It is safe for concurrent use.
type IRQ struct {
	mu     sync.Mutex // guards level, raises, lowers, calls
	level  bool
	raises int // low-to-high transitions
	lowers int // high-to-low transitions
	calls  int
}

// SetLevel records the new level.
func (f *IRQ) SetLevel(high bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if high && !f.level {
		f.raises++
	}
	if !high && f.level {
		f.lowers++
	}
	f.level = high
}

// Level reports the current level.
func (f *IRQ) Level() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.level
}

// Raises reports how many low-to-high transitions happened (edges, for an
// edge-triggered input).
func (f *IRQ) Raises() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raises
}

// Calls reports how many times SetLevel was called.
func (f *IRQ) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Buffer is a goroutine-safe bytes.Buffer (for a test logger or writer).
type Buffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger returns a debug-level text logger writing into a new Buffer.
func Logger() (*slog.Logger, *Buffer) {
	b := &Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// Access is one access a Recorder saw.
type Access struct {
	Write  bool
	Offset uint64
	N      int
}

// Recorder is a fake register block: it records every access and reads as
// its Fill byte.
type Recorder struct {
	Fill byte

	mu   sync.Mutex // guards seen
	seen []Access
}

// Read records a read and fills data with Fill.
func (r *Recorder) Read(offset uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, Access{Offset: offset, N: len(data)})
	for i := range data {
		data[i] = r.Fill
	}
}

// Write records a write.
func (r *Recorder) Write(offset uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, Access{Write: true, Offset: offset, N: len(data)})
}

// Accesses returns a copy of what the Recorder saw, in order.
func (r *Recorder) Accesses() []Access {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Access(nil), r.seen...)
}
