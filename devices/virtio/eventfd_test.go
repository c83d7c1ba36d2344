package virtio

import (
	"time"

	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEventFDDrainCountsSignals(t *testing.T) {
	e, err := NewEventFD()
	require.NoError(t, err)
	defer e.Close()
	assert.Zero(t, e.DrainCount(), "nothing pending: a non-blocking read finds nothing")
	for range 3 {
		require.NoError(t, e.Signal())
	}
	assert.Equal(t, uint64(3), e.DrainCount())
	assert.False(t, e.Drain(), "the drain reset the counter")
	require.NoError(t, e.Signal())
	assert.True(t, e.Drain())
}

// TestYielderYieldsAtMostOncePerInterval: a worker waking often yields once
// per yieldEvery, not at every wait.
func TestYielderYieldsAtMostOncePerInterval(t *testing.T) {
	var y Yielder
	y.BeforeWait()
	first := y.last
	require.False(t, first.IsZero(), "the first wait yields")
	y.BeforeWait()
	assert.Equal(t, first, y.last, "too soon for another")
	time.Sleep(2 * yieldEvery)
	y.BeforeWait()
	assert.True(t, y.last.After(first), "due again")
}
