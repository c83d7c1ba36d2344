package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    uint64
		wantErr string
	}{
		{in: "512M", want: 512 << 20},
		{in: "1G", want: 1 << 30},
		{in: "1536M", want: 1536 << 20},
		{in: "256", want: 256 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "64mb", want: 64 << 20},
		{in: "1048576K", want: 1 << 30},
		{in: " 1T ", want: 1 << 40},
		{in: "0", wantErr: "more than zero"},
		{in: "0G", wantErr: "more than zero"},
		{in: "lots", wantErr: "want a whole number"},
		{in: "", wantErr: "empty size"},
		{in: "-1G", wantErr: "want a whole number"},
		{in: "1.5G", wantErr: "unknown unit"},
		{in: "12Q", wantErr: "unknown unit"},
		{in: "99999999999999999999", wantErr: "out of range"},
		{in: "17179869184T", wantErr: "too large"},
	} {
		got, err := parseSize(tc.in)
		if tc.wantErr != "" {
			assert.ErrorContains(t, err, tc.wantErr, "parseSize(%q)", tc.in)
			continue
		}
		require.NoError(t, err, "parseSize(%q)", tc.in)
		assert.Equal(t, tc.want, got, "parseSize(%q) = %d, want %d", tc.in, got, tc.want)
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"512M", "1G", "0", "lots", "18446744073709551615K"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil {
			assert.NotZero(t, n)
		}
	})
}
