package ratelog

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/govmm/govmm/internal/devtest"
)

func TestBurstAndWindow(t *testing.T) {
	logger, buf := devtest.Logger()
	r := NewWithLimit(logger, 3, time.Second)
	now := time.Unix(1000, 0)
	r.now = func() time.Time { return now }

	for range 10 {
		r.Warn("guest misbehaves")
	}
	got := strings.Count(buf.String(), "guest misbehaves")
	assert.Equal(t, 3, got, "records in the first window: got %d, want 3", got)

	now = now.Add(time.Second)
	r.Warn("guest misbehaves")
	out := buf.String()
	assert.Equal(t, 4, strings.Count(out, "guest misbehaves"), "records after the window: got %q", out)
	assert.Contains(t, out, "suppressed=7", "got %q, want the dropped count", out)

	r.Debug("below level")
	r.Log(slog.LevelInfo, "info")
	assert.Contains(t, buf.String(), "below level")
}

func TestDisabledLevelCostsNothing(t *testing.T) {
	buf := &devtest.Buffer{}
	r := NewWithLimit(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelError})), 1, time.Hour)
	for range 5 {
		r.Warn("hidden")
	}
	r.Log(slog.LevelError, "shown")
	out := buf.String()
	assert.NotContains(t, out, "hidden")
	assert.Contains(t, out, "shown")
	assert.NotContains(t, out, "suppressed", "disabled records must not count as suppressed: %q", out)
}
