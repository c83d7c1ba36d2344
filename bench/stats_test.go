package bench

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func ms(ns ...int) []time.Duration {
	var out []time.Duration
	for _, n := range ns {
		out = append(out, time.Duration(n)*time.Millisecond)
	}
	return out
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want Summary
	}{
		{in: nil, want: Summary{}},
		{in: ms(7), want: Summary{N: 1, Min: ms(7)[0], Median: ms(7)[0], P95: ms(7)[0]}},
		{in: ms(30, 10, 20), want: Summary{N: 3, Min: ms(10)[0], Median: ms(20)[0], P95: ms(30)[0]}},
		{in: ms(40, 10, 30, 20), want: Summary{N: 4, Min: ms(10)[0], Median: ms(25)[0], P95: ms(40)[0]}},
		{
			in:   ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20),
			want: Summary{N: 20, Min: ms(1)[0], Median: 10500 * time.Microsecond, P95: ms(19)[0]},
		},
	} {
		assert.Equal(t, tc.want, Summarize(tc.in), "Summarize(%v)", tc.in)
	}
	in := ms(3, 1, 2)
	Summarize(in)
	assert.Equal(t, ms(3, 1, 2), in, "the input is not reordered")
}

func TestRatioAndMedianBytes(t *testing.T) {
	assert.InDelta(t, 1.5, Ratio(ms(100)[0], ms(150)[0]), 1e-9)
	assert.Zero(t, Ratio(0, ms(1)[0]))
	assert.Zero(t, Ratio(ms(1)[0], 0))
	assert.Equal(t, uint64(0), MedianBytes(nil))
	assert.Equal(t, uint64(2), MedianBytes([]uint64{3, 1, 2}))
	assert.Equal(t, uint64(15), MedianBytes([]uint64{10, 20}))
}
