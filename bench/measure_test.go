package bench

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const smapsSample = `00400000-00c00000 r-xp 00000000 fe:01 123 /usr/bin/govmm
Size:               8192 kB
Rss:                3000 kB
Pss:                3000 kB
Private_Clean:      3000 kB
Private_Dirty:         0 kB
7f0000000000-7f0020000000 rw-p 00000000 00:00 0
Size:             524288 kB
Rss:               40960 kB
Pss:               40960 kB
Private_Dirty:     40960 kB
7f1000000000-7f1000100000 rw-p 00000000 00:00 0
Size:               1024 kB
Rss:                1024 kB
Private_Dirty:       900 kB
VmFlags: rd wr mr mw me ac
`

func TestParseSmaps(t *testing.T) {
	use, err := parseSmaps(strings.NewReader(smapsSample), 512<<20)
	require.NoError(t, err)
	assert.Equal(t, uint64(3000+40960+1024)<<10, use.rss)
	assert.Equal(t, uint64(40960)<<10, use.guest)
	assert.Equal(t, uint64(900)<<10, use.ownDirty, "the heap's dirty pages; not the executable's, not guest RAM's")
	s := Sample{RSS: use.rss, GuestRSS: use.guest}
	assert.Equal(t, uint64(4024)<<10, s.Overhead())

	use, err = parseSmaps(strings.NewReader(smapsSample), 1<<30)
	require.NoError(t, err)
	assert.Zero(t, use.guest, "no mapping is as large as the guest")
	assert.Equal(t, uint64(40960+900)<<10, use.ownDirty)
}

// TestMeasureAProcess times a real process that prints the marker: the
// same code path as a VMM, without one.
func TestMeasureAProcess(t *testing.T) {
	s, err := Measure(context.Background(), Run{
		Args:    []string{"sh", "-c", "echo booting; sleep 0.2; echo 'govmm-agent: started'; sleep 0.2"},
		Marker:  []byte("govmm-agent: started"),
		OKCodes: []int{0},
	})
	require.NoError(t, err)
	assert.Greater(t, s.ToInit.Seconds(), 0.15)
	assert.Greater(t, s.ToExit, s.ToInit)
	assert.NotZero(t, s.RSS)

	_, err = Measure(context.Background(), Run{Args: []string{"sh", "-c", "exit 4"}, Marker: []byte("x"), OKCodes: []int{0}})
	assert.ErrorContains(t, err, "exited with 4")
	_, err = Measure(context.Background(), Run{Args: []string{"true"}, Marker: []byte("never"), OKCodes: []int{0}})
	assert.ErrorContains(t, err, "never printed")
}
