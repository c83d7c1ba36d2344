package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// parseSize reads a memory size as users of QEMU and Firecracker write it:
// a whole number with an optional binary suffix K, M, G or T (KiB, MiB,
// GiB, TiB; "MB", "MiB" and lower case are accepted too). A bare number is
// MiB, as with QEMU's -m. Zero, fractions, negative numbers and overflow
// are errors.
func parseSize(s string) (uint64, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty size")
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("size %q: want a whole number with an optional K, M, G or T suffix, like 512M or 2G", orig)
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", orig, err)
	}
	var shift uint
	switch strings.ToUpper(strings.TrimSpace(s[i:])) {
	case "K", "KB", "KIB":
		shift = 10
	case "", "M", "MB", "MIB":
		shift = 20
	case "G", "GB", "GIB":
		shift = 30
	case "T", "TB", "TIB":
		shift = 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q: use K, M, G or T, like 512M or 2G", orig, s[i:])
	}
	if n == 0 {
		return 0, fmt.Errorf("size %q: must be more than zero", orig)
	}
	if n > math.MaxUint64>>shift {
		return 0, fmt.Errorf("size %q: too large", orig)
	}
	return n << shift, nil
}
