package serial

import (
	"io"
	"testing"
)

// BenchmarkTransmit is what a guest's console output costs the vCPU per
// byte: a THR write and the LSR poll the 8250 driver does before it.
func BenchmarkTransmit(b *testing.B) {
	u := New(Config{Output: io.Discard})
	defer u.Close()
	thr, lsr := []byte{'x'}, make([]byte, 1)
	b.ReportAllocs()
	b.SetBytes(1)
	for b.Loop() {
		u.Read(5, lsr)
		u.Write(0, thr)
	}
}
