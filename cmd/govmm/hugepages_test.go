package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHeapTHPReexecNeeded(t *testing.T) {
	always, madvise := "[always] madvise never\n", "always [madvise] never\n"
	for _, tc := range []struct {
		name    string
		args    []string
		already bool
		mode    string
		want    bool
	}{
		{"run where THP is always", []string{"govmm", "run", "--", "true"}, false, always, true},
		{"already re-executed", []string{"govmm", "run"}, true, always, false},
		{"THP only on madvise", []string{"govmm", "run"}, false, madvise, false},
		{"no THP file", []string{"govmm", "run"}, false, "", false},
		{"another command", []string{"govmm", "bench"}, false, always, false},
		{"no command", []string{"govmm"}, false, always, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, heapTHPReexecNeeded(tc.args, tc.already, tc.mode))
		})
	}
}

func TestHeapTHPEnv(t *testing.T) {
	for _, tc := range []struct {
		env, want []string
	}{
		{[]string{"PATH=/bin"}, []string{"PATH=/bin", "GODEBUG=disablethp=1", disableTHPEnv + "=1"}},
		{[]string{"GODEBUG=gctrace=1", "HOME=/root"}, []string{"HOME=/root", "GODEBUG=gctrace=1,disablethp=1", disableTHPEnv + "=1"}},
		{[]string{"GODEBUG="}, []string{"GODEBUG=disablethp=1", disableTHPEnv + "=1"}},
	} {
		assert.Equal(t, tc.want, heapTHPEnv(tc.env), "heapTHPEnv(%q)", tc.env)
	}
}
