package virtio_test

import (
	"testing"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
)

// BenchmarkQueueRoundTrip is the device's share of one request: take a
// three-buffer chain (a block request's shape), return it, decide on the
// interrupt.
func BenchmarkQueueRoundTrip(b *testing.B) {
	for _, indirect := range []bool{false, true} {
		name := "direct"
		if indirect {
			name = "indirect"
		}
		b.Run(name, func(b *testing.B) {
			d, err := virtiotest.NewDriver(256, 4<<20)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			d.Cfg.EventIdx, d.Cfg.Indirect = true, indirect
			q, err := virtio.NewQueue(d.Mem, d.Cfg)
			if err != nil {
				b.Fatal(err)
			}
			add := d.AddChain
			if indirect {
				add = d.AddIndirectChain
			}
			head := add(virtiotest.Buf{Data: make([]byte, 16)}, virtiotest.Buf{Write: 4096}, virtiotest.Buf{Write: 1})
			var c virtio.Chain
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				d.Publish(head) // the same chain again: no driver-side allocation
				if ok, err := q.Next(&c); !ok || err != nil {
					b.Fatal(ok, err)
				}
				if err := q.Push(c.Head, 4097); err != nil {
					b.Fatal(err)
				}
				q.NeedsInterrupt()
			}
		})
	}
}
