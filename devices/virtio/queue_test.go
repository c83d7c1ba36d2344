package virtio_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
	"github.com/govmm/govmm/memory"
)

func newDriver(t *testing.T, size uint16) *virtiotest.Driver {
	t.Helper()
	d, err := virtiotest.NewDriver(size, 1<<20)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, d.Close()) })
	return d
}

func newQueue(t *testing.T, d *virtiotest.Driver) *virtio.Queue {
	t.Helper()
	q, err := virtio.NewQueue(d.Mem, d.Cfg)
	require.NoError(t, err)
	return q
}

func TestNewQueueValidates(t *testing.T) {
	d := newDriver(t, 8)
	ramEnd := uint64(len(d.RAM))
	for _, tc := range []struct {
		name string
		edit func(c *virtio.QueueConfig)
		want string
	}{
		{"size 0", func(c *virtio.QueueConfig) { c.Size = 0 }, "queue size 0"},
		{"size not a power of two", func(c *virtio.QueueConfig) { c.Size = 6 }, "queue size 6"},
		{"size above 32768", func(c *virtio.QueueConfig) { c.Size = 65535 }, "queue size 65535"},
		{"descriptors misaligned", func(c *virtio.QueueConfig) { c.Desc += 8 }, "descriptor table at 0x1008 is not 16-byte aligned"},
		{"available ring misaligned", func(c *virtio.QueueConfig) { c.Avail++ }, "not 2-byte aligned"},
		{"used ring misaligned", func(c *virtio.QueueConfig) { c.Used += 2 }, "not 4-byte aligned"},
		{"descriptors past RAM", func(c *virtio.QueueConfig) { c.Desc = ramEnd - 16 }, "descriptor table at"},
		{"available ring past RAM", func(c *virtio.QueueConfig) { c.Avail = ramEnd - 4 }, "available ring at"},
		{"used ring in a device region", func(c *virtio.QueueConfig) { c.Used = 0xfebf0000 }, "used ring at 0xfebf0000"},
		{"used ring wraps the address space", func(c *virtio.QueueConfig) { c.Used = ^uint64(3) }, "not in RAM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := d.Cfg
			tc.edit(&cfg)
			_, err := virtio.NewQueue(d.Mem, cfg)
			var ge *virtio.GuestError
			require.ErrorAs(t, err, &ge)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	for _, size := range []uint16{1, 2, 256, 32768} {
		d, err := virtiotest.NewDriver(size, 2<<20)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, d.Close()) })
		_, err = virtio.NewQueue(d.Mem, d.Cfg)
		assert.NoError(t, err, "size %d", size)
	}
}

func TestChainsInOrder(t *testing.T) {
	for _, indirect := range []bool{false, true} {
		d := newDriver(t, 4)
		d.Cfg.Indirect = indirect
		q := newQueue(t, d)
		add := d.AddChain
		if indirect {
			add = d.AddIndirectChain
		}
		// More chains than the queue has entries, over several rounds, so
		// the indices wrap the ring.
		for round := range 5 {
			heads := []uint16{
				add(virtiotest.Buf{Data: []byte("head")}, virtiotest.Buf{Data: []byte{byte(round)}}, virtiotest.Buf{Write: 3}),
				add(virtiotest.Buf{Write: 8}),
			}
			var c virtio.Chain
			ok, err := q.Next(&c)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, heads[0], c.Head)
			assert.Equal(t, [][]byte{[]byte("head"), {byte(round)}}, c.Readable)
			require.Len(t, c.Writable, 1)
			assert.Equal(t, uint64(3), c.WritableLen())
			assert.Equal(t, uint64(5), c.ReadableLen())
			copy(c.Writable[0], "abc")
			require.NoError(t, q.Push(c.Head, 3))

			ok, err = q.Next(&c)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, heads[1], c.Head)
			assert.Empty(t, c.Readable, "the slices of the earlier chain are reused, not kept")
			require.NoError(t, q.Push(c.Head, 0))

			ok, err = q.Next(&c)
			require.NoError(t, err)
			assert.False(t, ok, "round %d: nothing more is available", round)

			assert.Equal(t, []virtiotest.Used{{ID: uint32(heads[0]), Len: 3}, {ID: uint32(heads[1])}}, d.TakeUsed())
			assert.Equal(t, "abc", string(d.Writable(heads[0])[0]))
		}
		assert.False(t, q.Broken())
	}
}

// TestHostileChains feeds the queue what a hostile driver might write. Each
// must end in a GuestError, never a panic or a hang, and leave the queue
// broken until reset.
func TestHostileChains(t *testing.T) {
	const size = 8
	for _, tc := range []struct {
		name     string
		indirect bool // VIRTIO_F_INDIRECT_DESC negotiated
		setup    func(d *virtiotest.Driver)
		want     string
	}{
		{name: "available index jumps", setup: func(d *virtiotest.Driver) {
			d.AddChain(virtiotest.Buf{Data: []byte{1}})
			d.SetAvailIdx(size + 1)
		}, want: "available index jumped from 0 to 9"},
		{name: "available index goes backwards", setup: func(d *virtiotest.Driver) {
			d.SetAvailIdx(0xffff)
		}, want: "available index jumped"},
		{name: "head out of range", setup: func(d *virtiotest.Driver) {
			d.SetAvailEntry(0, size)
			d.SetAvailIdx(1)
		}, want: "names descriptor 8 of 8"},
		{name: "next out of range", setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, 0x10000, 4, virtiotest.FlagNext, 0xffff)
			d.Publish(0)
		}, want: "chains to 65535, beyond the table's 8"},
		{name: "self loop", setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 3, 0x10000, 4, virtiotest.FlagNext, 3)
			d.Publish(3)
		}, want: "visits more than 8 descriptors"},
		{name: "long loop", setup: func(d *virtiotest.Driver) {
			for i := range uint16(size) {
				d.WriteDesc(0, i, 0x10000, 4, virtiotest.FlagNext, (i+1)%size)
			}
			d.Publish(5)
		}, want: "visits more than 8 descriptors"},
		{name: "buffer outside RAM", setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, 0xfebf0000, 4, 0, 0)
			d.Publish(0)
		}, want: "buffer at 0xfebf0000"},
		{name: "buffer straddles the end of RAM", setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, uint64(len(d.RAM))-2, 4, 0, 0)
			d.Publish(0)
		}, want: "not in RAM"},
		{name: "buffer address wraps", setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, ^uint64(0), 2, 0, 0)
			d.Publish(0)
		}, want: "not in RAM"},
		{name: "readable after writable", setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, 0x10000, 4, virtiotest.FlagWrite|virtiotest.FlagNext, 1)
			d.WriteDesc(0, 1, 0x10000, 4, 0, 0)
			d.Publish(0)
		}, want: "device-readable descriptor 1 after a device-writable one"},
		{name: "indirect not negotiated", setup: func(d *virtiotest.Driver) {
			d.AddIndirectChain(virtiotest.Buf{Data: []byte{1}})
		}, want: "VIRTIO_F_INDIRECT_DESC was not negotiated"},
		{name: "indirect inside indirect", indirect: true, setup: func(d *virtiotest.Driver) {
			table := d.Alloc(16)
			d.WriteDesc(table, 0, table, 16, virtiotest.FlagIndirect, 0)
			d.WriteDesc(0, 0, table, 16, virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "indirect descriptor inside an indirect table"},
		{name: "indirect with next", indirect: true, setup: func(d *virtiotest.Driver) {
			table := d.Alloc(16)
			d.WriteDesc(table, 0, 0x10000, 4, 0, 0)
			d.WriteDesc(0, 0, table, 16, virtiotest.FlagIndirect|virtiotest.FlagNext, 1)
			d.Publish(0)
		}, want: "also has NEXT set"},
		{name: "indirect after a buffer", indirect: true, setup: func(d *virtiotest.Driver) {
			table := d.Alloc(16)
			d.WriteDesc(table, 0, 0x10000, 4, 0, 0)
			d.WriteDesc(0, 0, 0x10000, 4, virtiotest.FlagNext, 1)
			d.WriteDesc(0, 1, table, 16, virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "follows other buffers"},
		{name: "indirect table of zero bytes", indirect: true, setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, 0x10000, 0, virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "not a whole, non-zero number of descriptors"},
		{name: "indirect table of a partial descriptor", indirect: true, setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, 0x10000, 24, virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "not a whole, non-zero number of descriptors"},
		{name: "indirect table outside RAM", indirect: true, setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, 0xfee00000, 32, virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "indirect table at 0xfee00000"},
		{name: "indirect table too large", indirect: true, setup: func(d *virtiotest.Driver) {
			d.WriteDesc(0, 0, 0x10000, 16*(virtio.MaxQueueSize+1), virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "larger than 32768"},
		{name: "indirect loop", indirect: true, setup: func(d *virtiotest.Driver) {
			table := d.Alloc(32)
			d.WriteDesc(table, 0, 0x10000, 4, virtiotest.FlagNext, 1)
			d.WriteDesc(table, 1, 0x10000, 4, virtiotest.FlagNext, 0)
			d.WriteDesc(0, 0, table, 32, virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "visits more than 2 descriptors"},
		{name: "indirect next beyond its table", indirect: true, setup: func(d *virtiotest.Driver) {
			table := d.Alloc(32)
			d.WriteDesc(table, 0, 0x10000, 4, virtiotest.FlagNext, 2)
			d.WriteDesc(0, 0, table, 32, virtiotest.FlagIndirect, 0)
			d.Publish(0)
		}, want: "chains to 2, beyond the table's 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, size)
			d.Cfg.Indirect = tc.indirect
			q := newQueue(t, d)
			tc.setup(d)
			var c virtio.Chain
			ok, err := q.Next(&c)
			assert.False(t, ok)
			var ge *virtio.GuestError
			require.ErrorAs(t, err, &ge)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, q.Broken())

			// Broken stays broken: nothing more is handed out or published.
			_, err = q.Next(&c)
			assert.ErrorIs(t, err, virtio.ErrBroken)
			assert.ErrorIs(t, q.Push(0, 0), virtio.ErrBroken)
			assert.False(t, q.NeedsInterrupt())
			assert.Empty(t, d.TakeUsed())
		})
	}
}

// TestChainOver4GiB needs buffers that are really in RAM, so it uses
// mmap'd guest memory larger than 4 GiB (reserved, never touched).
func TestChainOver4GiB(t *testing.T) {
	mem, err := memory.New(6 << 30)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, mem.Close()) })
	cfg := virtio.QueueConfig{Size: 4, Desc: 0x1000, Avail: 0x2000, Used: 0x3000}
	desc := func(i int, addr uint64, length uint32, flags, next uint16) {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint64(b, addr)
		binary.LittleEndian.PutUint32(b[8:], length)
		binary.LittleEndian.PutUint16(b[12:], flags)
		binary.LittleEndian.PutUint16(b[14:], next)
		_, err := mem.WriteAt(b, int64(cfg.Desc)+16*int64(i))
		require.NoError(t, err)
	}
	// 3 GiB + 2 GiB: each in RAM (below the hole and above 4 GiB), the
	// sum past what the used ring's 32-bit length can say.
	desc(0, 0, 3<<30-1<<20, virtiotest.FlagNext, 1)
	desc(1, 4<<30, 2<<30, 0, 0)
	require.NoError(t, mem.WriteUint16(cfg.Avail+2, 1))
	q, err := virtio.NewQueue(mem, cfg)
	require.NoError(t, err)
	var c virtio.Chain
	_, err = q.Next(&c)
	var ge *virtio.GuestError
	require.ErrorAs(t, err, &ge)
	assert.Contains(t, err.Error(), "more than 4 GiB")
}

func TestZeroLengthBuffersAreAllowed(t *testing.T) {
	d := newDriver(t, 4)
	q := newQueue(t, d)
	d.AddChain(virtiotest.Buf{Data: []byte{}}, virtiotest.Buf{Data: []byte("x")})
	var c virtio.Chain
	ok, err := q.Next(&c)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, [][]byte{{}, []byte("x")}, c.Readable)
}

func TestPushRejectsBadHead(t *testing.T) {
	d := newDriver(t, 4)
	q := newQueue(t, d)
	err := q.Push(4, 0)
	require.Error(t, err)
	var ge *virtio.GuestError
	assert.False(t, errors.As(err, &ge), "a device bug, not a driver error")
	assert.False(t, q.Broken())
}

func TestInterruptSuppression(t *testing.T) {
	t.Run("flags", func(t *testing.T) {
		d := newDriver(t, 4)
		q := newQueue(t, d)
		require.NoError(t, q.Push(0, 0))
		assert.True(t, q.NeedsInterrupt())
		d.SetAvailFlags(1) // VIRTQ_AVAIL_F_NO_INTERRUPT
		require.NoError(t, q.Push(1, 0))
		assert.False(t, q.NeedsInterrupt())
	})
	t.Run("event index", func(t *testing.T) {
		d := newDriver(t, 8)
		d.Cfg.EventIdx = true
		q := newQueue(t, d)
		d.SetAvailFlags(1) // ignored with EVENT_IDX
		require.NoError(t, q.Push(0, 0))
		assert.True(t, q.NeedsInterrupt(), "the first interrupt is always sent")
		// The driver asks for an interrupt once used index passes 3.
		d.SetUsedEvent(3)
		require.NoError(t, q.Push(1, 0)) // used idx 2
		assert.False(t, q.NeedsInterrupt())
		require.NoError(t, q.Push(2, 0)) // 3
		assert.False(t, q.NeedsInterrupt())
		require.NoError(t, q.Push(3, 0)) // 4: crosses used_event+1
		assert.True(t, q.NeedsInterrupt())
		require.NoError(t, q.Push(4, 0))
		assert.False(t, q.NeedsInterrupt(), "used_event 3 already passed")
	})
}

func TestNotifySuppression(t *testing.T) {
	t.Run("flags", func(t *testing.T) {
		d := newDriver(t, 4)
		q := newQueue(t, d)
		q.SetNotify(false)
		assert.Equal(t, uint16(1), d.UsedFlags())
		q.SetNotify(true)
		assert.Equal(t, uint16(0), d.UsedFlags())
	})
	t.Run("event index", func(t *testing.T) {
		d := newDriver(t, 4)
		d.Cfg.EventIdx = true
		q := newQueue(t, d)
		d.AddChain(virtiotest.Buf{Data: []byte{1}})
		d.AddChain(virtiotest.Buf{Data: []byte{2}})
		var c virtio.Chain
		q.SetNotify(false)
		ok, err := q.Next(&c)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, uint16(0), d.AvailEvent(), "taking a chain does not ask for notifications")
		ok, err = q.Next(&c)
		require.NoError(t, err)
		require.True(t, ok)
		q.SetNotify(true)
		assert.Equal(t, uint16(2), d.AvailEvent(), "notify me when entry 2 is added")
		pending, err := q.Pending()
		require.NoError(t, err)
		assert.False(t, pending)
	})
}

// FuzzQueue lets the fuzzer write the rings and a buffer area of a queue:
// whatever it writes, the queue must not panic or loop, and every chain it
// hands out must lie in RAM and respect the rules.
func FuzzQueue(f *testing.F) {
	f.Add([]byte{}, uint16(1), true, true)
	f.Add([]byte("\x00\x00\x00\x10\x00\x00\x00\x00\x04\x00\x00\x00\x01\x00\x01\x00"), uint16(4), false, true)
	f.Fuzz(func(t *testing.T, rings []byte, availIdx uint16, eventIdx, indirect bool) {
		d, err := virtiotest.NewDriver(8, 64<<10)
		require.NoError(t, err)
		defer d.Close()
		d.Cfg.EventIdx, d.Cfg.Indirect = eventIdx, indirect
		// The fuzzer's bytes cover the descriptor table, the available
		// ring and the start of the heap, where indirect tables may point.
		copy(d.RAM[d.Cfg.Desc:d.Cfg.Desc+128], rings)
		if len(rings) > 128 {
			copy(d.RAM[d.Cfg.Avail:d.Cfg.Avail+22], rings[128:])
		}
		if len(rings) > 150 {
			copy(d.RAM[0x8000:0x9000], rings[150:])
		}
		d.SetAvailIdx(availIdx)
		q, err := virtio.NewQueue(d.Mem, d.Cfg)
		require.NoError(t, err)
		var c virtio.Chain
		for range 20 {
			ok, err := q.Next(&c)
			if err != nil || !ok {
				return
			}
			assert.LessOrEqual(t, c.ReadableLen()+c.WritableLen(), uint64(virtio.MaxChainBytes))
			assert.NoError(t, q.Push(c.Head, 0))
			q.NeedsInterrupt()
		}
	})
}

func TestUndo(t *testing.T) {
	d := newDriver(t, 4)
	d.Cfg.EventIdx = true
	q := newQueue(t, d)
	first := d.AddChain(virtiotest.Buf{Write: 10})
	second := d.AddChain(virtiotest.Buf{Write: 20})
	var c virtio.Chain
	for _, want := range []uint16{first, second} {
		ok, err := q.Next(&c)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, want, c.Head)
	}
	q.Undo(2)
	q.SetNotify(true)
	assert.Equal(t, uint16(0), d.AvailEvent(), "notify me again from the first one on")
	for _, want := range []uint16{first, second} {
		ok, err := q.Next(&c)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, want, c.Head, "handed out again, in order")
	}
}
