package bus

import (
	"io"
	"log/slog"
	"testing"
)

type nopDevice struct{}

func (nopDevice) Read(_ uint64, data []byte) {
	for i := range data {
		data[i] = 0
	}
}
func (nopDevice) Write(uint64, []byte) {}

// BenchmarkPIODispatch is the cost the bus adds to every port I/O exit:
// the vCPU loop calls it once per byte of a serial console's output.
func BenchmarkPIODispatch(b *testing.B) {
	p := NewPIO(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i, base := range []Port{0x60, 0x64, 0x70, 0xcf8, 0x3f8, 0x3f0, 0xf4, 0x80, 0x600, 0x604} {
		if err := p.Register(base, 1+uint32(i%4), nopDevice{}); err != nil {
			b.Fatal(err)
		}
	}
	data := make([]byte, 1)
	b.ReportAllocs()
	for b.Loop() {
		p.Write(0x3f8, data)
		p.Read(0x3fd, data)
	}
}
