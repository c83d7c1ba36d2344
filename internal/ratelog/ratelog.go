package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults for New.
const (
	DefaultBurst  = 10
	DefaultWindow = time.Second
)

// Logger is a rate-limited slog.Logger. The zero value is not usable; use
// New. It is safe for concurrent use.
type Logger struct {
	l      *slog.Logger
	burst  int
	window time.Duration
	now    func() time.Time

	mu         sync.Mutex // guards start, used and suppressed
	start      time.Time  // beginning of the current window
	used       int        // records emitted in the current window
	suppressed uint64     // records dropped since the last one emitted
}

// New returns a Logger that emits at most DefaultBurst records per
// DefaultWindow through l (slog.Default() when l is nil).
func New(l *slog.Logger) *Logger {
	return NewWithLimit(l, DefaultBurst, DefaultWindow)
}

// NewWithLimit returns a Logger that emits at most burst records per window
// through l (slog.Default() when l is nil). burst < 1 is taken as 1.
func NewWithLimit(l *slog.Logger, burst int, window time.Duration) *Logger {
	if l == nil {
		l = slog.Default()
	}
	if burst < 1 {
		burst = 1
	}
	return &Logger{l: l, burst: burst, window: window, now: time.Now}
}

// Slog returns the underlying logger, for records that must never be
// dropped (the caller then limits them itself, e.g. once per address).
func (r *Logger) Slog() *slog.Logger { return r.l }

// Log emits a record at level unless the window's budget is spent. A record
// emitted after some were dropped carries their number as "suppressed".
func (r *Logger) Log(level slog.Level, msg string, args ...any) {
	ctx := context.Background()
	if !r.l.Enabled(ctx, level) {
		return
	}
	r.mu.Lock()
	now := r.now()
	if now.Sub(r.start) >= r.window {
		r.start, r.used = now, 0
	}
	if r.used >= r.burst {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.used++
	dropped := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	if dropped > 0 {
		args = append(args, slog.Uint64("suppressed", dropped))
	}
	r.l.Log(ctx, level, msg, args...)
}

// Warn logs at slog.LevelWarn, rate-limited.
func (r *Logger) Warn(msg string, args ...any) { r.Log(slog.LevelWarn, msg, args...) }

// Debug logs at slog.LevelDebug, rate-limited.
func (r *Logger) Debug(msg string, args ...any) { r.Log(slog.LevelDebug, msg, args...) }
