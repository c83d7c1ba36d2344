package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a set of measurements.
type Summary struct {
	N      int           `json:"n"`
	Min    time.Duration `json:"min_ns"`
	Median time.Duration `json:"median_ns"`
	P95    time.Duration `json:"p95_ns"`
}

// Summarize returns the summary of ds; the zero Summary for none. The
// median of an even count is the mean of the middle two; P95 is the
// nearest-rank 95th percentile.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	median := s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.95*float64(n))) - 1
	return Summary{N: n, Min: s[0], Median: median, P95: s[rank]}
}

// Ratio is how many times longer b took than a: above 1 means a is faster.
// It is 0 when either is unknown.
func Ratio(a, b time.Duration) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return float64(b) / float64(a)
}

// MedianBytes is the median of bs, 0 for none.
func MedianBytes(bs []uint64) uint64 {
	if len(bs) == 0 {
		return 0
	}
	s := slices.Clone(bs)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}
