package virtio

import (
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
