package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
)

// Memory is guest RAM as a queue reaches it: memory.Guest implements it.
// Slice fails for any range that is not entirely RAM (device regions and
// holes included).
type Memory interface {
	Slice(gpa, n uint64) ([]byte, error)
}

// MaxQueueSize is the largest split virtqueue (virtio 1.2 section 2.7:
// "Queue Size ... the maximum Queue Size value is 32768").
const MaxQueueSize = 32768

// Descriptor flags (virtio 1.2 section 2.7.5).
const (
	descFNext     = 1
	descFWrite    = 2
	descFIndirect = 4
)

// Ring flags (virtio 1.2 sections 2.7.6 and 2.7.8).
const (
	availFNoInterrupt = 1
	usedFNoNotify     = 1
)

const (
	descSize       = 16
	usedElemSize   = 8
	ringHeaderSize = 4 // flags, idx
	// MaxChainBytes bounds the total length of a chain's buffers: the used
	// ring's len field is 32 bits.
	MaxChainBytes = math.MaxUint32
)

// QueueConfig is what the driver programmed for one queue (virtio 1.2
// section 4.1.4.3: queue_size, queue_desc, queue_driver, queue_device) and
// the features negotiated that change how the queue works.
type QueueConfig struct {
	Size  uint16
	Desc  uint64 // descriptor table
	Avail uint64 // driver area: the available ring
	Used  uint64 // device area: the used ring
	// EventIdx is VIRTIO_F_EVENT_IDX: notifications and interrupts are
	// suppressed with used_event and avail_event instead of the flags.
	EventIdx bool
	// Indirect is VIRTIO_F_INDIRECT_DESC.
	Indirect bool
}

// GuestError is a violation of the virtio specification by the driver.
// It is never a host failure: the device logs it (rate-limited), asks for a
// reset and keeps the VMM running.
type GuestError struct {
	Reason string
}

func (e *GuestError) Error() string { return "virtqueue: driver error: " + e.Reason }

func guestErrorf(format string, args ...any) *GuestError {
	return &GuestError{Reason: fmt.Sprintf(format, args...)}
}

// ErrBroken is returned by every call on a queue that earlier met a
// GuestError, until it is reset.
var ErrBroken = errors.New("virtqueue: broken by an earlier driver error; the device needs a reset")

// Chain is one validated descriptor chain: the buffers the driver made
// available, in order, split into those the device reads and those it
// writes. The slices alias guest RAM.
type Chain struct {
	// Head is the index of the chain's first descriptor: what Queue.Push
	// returns to the driver.
	Head     uint16
	Readable [][]byte
	Writable [][]byte
}

// ReadableLen and WritableLen are the total sizes of the two kinds of
// buffer; they fit in 32 bits.
func (c *Chain) ReadableLen() uint64 { return totalLen(c.Readable) }

// WritableLen is the total size of the device-writable buffers.
func (c *Chain) WritableLen() uint64 { return totalLen(c.Writable) }

func totalLen(bufs [][]byte) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(len(b))
	}
	return n
}

func (c *Chain) reset(head uint16) {
	c.Head = head
	clear(c.Readable)
	clear(c.Writable)
	c.Readable, c.Writable = c.Readable[:0], c.Writable[:0]
}

// Queue is the device side of one split virtqueue.
type Queue struct {
	mem      Memory
	size     uint16
	eventIdx bool
	indirect bool
	desc     []byte // size descriptors
	avail    []byte // flags, idx, ring[size], used_event
	used     []byte // flags, idx, ring[size], avail_event

	nextAvail uint16 // the next available ring entry to take
	nextUsed  uint16 // the used index as last published
	// signalled is the used index at the last interrupt (EVENT_IDX), and
	// signalledValid false until there has been one.
	signalled      uint16
	signalledValid bool
	broken         bool

	// fence is the target of the atomic operation Fence uses as a full
	// memory barrier (see fence).
	fenceWord atomic.Uint32
}

// NewQueue checks cfg and maps the rings (virtio 1.2 section 2.7: "Alignment
// and size requirements": descriptor table 16, available ring 2, used ring 4).
// The error is a *GuestError when cfg breaks the rules.
func NewQueue(mem Memory, cfg QueueConfig) (*Queue, error) {
	if cfg.Size == 0 || cfg.Size&(cfg.Size-1) != 0 || cfg.Size > MaxQueueSize {
		return nil, guestErrorf("queue size %d is not a power of two from 1 to %d", cfg.Size, MaxQueueSize)
	}
	n := uint64(cfg.Size)
	rings := []struct {
		name        string
		addr        uint64
		size, align uint64
		out         *[]byte
	}{
		{"descriptor table", cfg.Desc, descSize * n, 16, nil},
		{"available ring", cfg.Avail, ringHeaderSize + 2*n + 2, 2, nil},
		{"used ring", cfg.Used, ringHeaderSize + usedElemSize*n + 2, 4, nil},
	}
	q := &Queue{mem: mem, size: cfg.Size, eventIdx: cfg.EventIdx, indirect: cfg.Indirect}
	rings[0].out, rings[1].out, rings[2].out = &q.desc, &q.avail, &q.used
	for _, r := range rings {
		if r.addr%r.align != 0 {
			return nil, guestErrorf("%s at %#x is not %d-byte aligned", r.name, r.addr, r.align)
		}
		b, err := mem.Slice(r.addr, r.size)
		if err != nil {
			return nil, guestErrorf("%s at %#x (%d bytes) is not in RAM: %v", r.name, r.addr, r.size, err)
		}
		*r.out = b
	}
	// The device's indices start at 0, as the driver's do after a reset
	// (section 2.7.13), whatever the rings' memory holds.
	return q, nil
}

// Size is the number of descriptors.
func (q *Queue) Size() uint16 { return q.size }

// Broken reports whether the queue met a driver error.
func (q *Queue) Broken() bool { return q.broken }

// fence is a full memory barrier: on amd64 the locked read-modify-write of
// an atomic add orders every earlier load and store before every later one,
// for the compiler as well as the CPU. The rings are shared with vCPUs that
// run concurrently, and Go has no standalone fence.
func (q *Queue) fence() { q.fenceWord.Add(1) }

func (q *Queue) availIdx() uint16 { return binary.LittleEndian.Uint16(q.avail[2:]) }
func (q *Queue) availFlags() uint16 {
	return binary.LittleEndian.Uint16(q.avail[0:])
}
func (q *Queue) usedEvent() uint16 {
	return binary.LittleEndian.Uint16(q.avail[ringHeaderSize+2*int(q.size):])
}

func (q *Queue) fail(err *GuestError) error {
	q.broken = true
	return err
}

// Pending reports whether the driver has made chains available that Next
// has not yet taken. It validates the available index.
func (q *Queue) Pending() (bool, error) {
	n, err := q.Available()
	return n > 0, err
}

// Available returns how many chains the driver has made available that
// Next has not yet taken. It validates the available index.
func (q *Queue) Available() (uint16, error) {
	if q.broken {
		return 0, ErrBroken
	}
	q.fence()
	idx := q.availIdx()
	d := idx - q.nextAvail
	if d > q.size {
		// Section 2.7.13.3: the driver adds at most Size chains ahead of
		// the device; anything else is a corrupt index.
		return 0, q.fail(guestErrorf("available index jumped from %d to %d (queue size %d)", q.nextAvail, idx, q.size))
	}
	return d, nil
}

// Next takes the next available chain into c (reusing its slices) and
// returns true, or returns false when there is none. An error means the
// driver broke the rules; the queue is broken from then on.
func (q *Queue) Next(c *Chain) (bool, error) {
	ok, err := q.Pending()
	if !ok || err != nil {
		return false, err
	}
	// The ring entry is read after the index (Pending's fence orders it).
	slot := ringHeaderSize + 2*int(q.nextAvail%q.size)
	head := binary.LittleEndian.Uint16(q.avail[slot:])
	if head >= q.size {
		return false, q.fail(guestErrorf("available ring entry %d names descriptor %d of %d", q.nextAvail, head, q.size))
	}
	c.reset(head)
	if err := q.walk(c, head); err != nil {
		return false, q.fail(err)
	}
	q.nextAvail++
	// avail_event is left alone: the device asks for notifications only
	// when it is about to wait for them (SetNotify), so a driver adding
	// chains while the device is busy taking them does not notify (exit
	// to the VMM) for each.
	return true, nil
}

// walk follows the chain at head, through at most one indirect table.
func (q *Queue) walk(c *Chain, head uint16) *GuestError {
	table, tableLen := q.desc, uint32(q.size)
	i := uint32(head)
	var hops uint32
	var total uint64
	indirect := false
	for {
		hops++
		if hops > tableLen {
			return guestErrorf("chain at descriptor %d visits more than %d descriptors (a loop?)", head, tableLen)
		}
		d := table[i*descSize : (i+1)*descSize]
		addr := binary.LittleEndian.Uint64(d[0:])
		length := binary.LittleEndian.Uint32(d[8:])
		flags := binary.LittleEndian.Uint16(d[12:])
		next := binary.LittleEndian.Uint16(d[14:])

		if flags&descFIndirect != 0 {
			switch {
			case !q.indirect:
				return guestErrorf("indirect descriptor %d, but VIRTIO_F_INDIRECT_DESC was not negotiated", i)
			case indirect:
				return guestErrorf("indirect descriptor inside an indirect table (chain at %d)", head)
			case flags&descFNext != 0:
				return guestErrorf("indirect descriptor %d also has NEXT set", i)
			case length == 0 || length%descSize != 0:
				return guestErrorf("indirect table of %d bytes is not a whole, non-zero number of descriptors", length)
			case length/descSize > MaxQueueSize:
				return guestErrorf("indirect table of %d descriptors is larger than %d", length/descSize, MaxQueueSize)
			}
			t, err := q.mem.Slice(addr, uint64(length))
			if err != nil {
				return guestErrorf("indirect table at %#x (%d bytes) is not in RAM: %v", addr, length, err)
			}
			// Section 2.7.5.3.1: the indirect table must be the whole
			// chain, so nothing came before it either.
			if len(c.Readable)+len(c.Writable) > 0 {
				return guestErrorf("indirect descriptor %d follows other buffers in its chain", i)
			}
			table, tableLen, i, hops, indirect = t, length/descSize, 0, 0, true
			continue
		}

		total += uint64(length)
		if total > MaxChainBytes {
			return guestErrorf("chain at descriptor %d adds up to more than 4 GiB", head)
		}
		buf, err := q.mem.Slice(addr, uint64(length))
		if err != nil {
			return guestErrorf("buffer at %#x (%d bytes) is not in RAM: %v", addr, length, err)
		}
		if flags&descFWrite != 0 {
			c.Writable = append(c.Writable, buf)
		} else {
			if len(c.Writable) > 0 {
				return guestErrorf("device-readable descriptor %d after a device-writable one", i)
			}
			c.Readable = append(c.Readable, buf)
		}
		if flags&descFNext == 0 {
			return nil
		}
		if uint32(next) >= tableLen {
			return guestErrorf("descriptor %d chains to %d, beyond the table's %d", i, next, tableLen)
		}
		i = uint32(next)
	}
}

// Undo gives back the last n chains Next took and nothing has pushed, so
// that Next hands them out again: a device that finds it cannot use them
// yet (a received packet larger than the buffers taken so far) waits for
// more instead.
func (q *Queue) Undo(n uint16) {
	if q.broken || n == 0 {
		return
	}
	q.nextAvail -= n
}

// Push returns the chain at head to the driver with written bytes of its
// writable buffers filled (section 2.7.8), and publishes it.
func (q *Queue) Push(head uint16, written uint32) error {
	if q.broken {
		return ErrBroken
	}
	if head >= q.size {
		return fmt.Errorf("virtqueue: push of descriptor %d of %d", head, q.size)
	}
	slot := ringHeaderSize + usedElemSize*int(q.nextUsed%q.size)
	binary.LittleEndian.PutUint32(q.used[slot:], uint32(head))
	binary.LittleEndian.PutUint32(q.used[slot+4:], written)
	// The element must be visible before the index that publishes it.
	q.fence()
	q.nextUsed++
	binary.LittleEndian.PutUint16(q.used[2:], q.nextUsed)
	return nil
}

// NeedsInterrupt reports whether the driver wants an interrupt for what
// was pushed since the last interrupt (section 2.7.7.2 and 2.7.10), and if
// so records that it is being sent.
func (q *Queue) NeedsInterrupt() bool {
	if q.broken {
		return false
	}
	// The used index was published before the driver's suppression state
	// is read: otherwise an interrupt could be missed.
	q.fence()
	if !q.eventIdx {
		return q.availFlags()&availFNoInterrupt == 0
	}
	old, now := q.signalled, q.nextUsed
	valid := q.signalledValid
	q.signalled, q.signalledValid = now, true
	if !valid {
		return true
	}
	// vring_need_event: interrupt if used_event lies in (old, now].
	event := q.usedEvent()
	return now-event-1 < now-old
}

// SetNotify asks the driver to notify (or not to bother notifying) the
// device of new chains: used.flags NO_NOTIFY, or avail_event with
// EVENT_IDX. After enabling it, the device must check Pending again: the
// driver may have added chains before it saw the request.
func (q *Queue) SetNotify(enabled bool) {
	if q.broken {
		return
	}
	if q.eventIdx {
		// Section 2.7.10: the driver notifies when its index passes
		// avail_event. Enabling sets it to the next chain to take;
		// disabling leaves it behind, where the driver's index has
		// already passed it, so no notification follows.
		if enabled {
			q.setAvailEvent(q.nextAvail)
		}
	} else {
		var flags uint16
		if !enabled {
			flags = usedFNoNotify
		}
		binary.LittleEndian.PutUint16(q.used[0:], flags)
	}
	q.fence()
}

// NotifyOnMore asks the driver to notify the device when it adds chains
// beyond those available now, rather than beyond those taken: for a device
// that cannot use what is there (too few receive buffers for a frame) and
// waits for more. The device must check Available again afterwards.
func (q *Queue) NotifyOnMore() {
	if q.broken {
		return
	}
	if !q.eventIdx {
		q.SetNotify(true)
		return
	}
	q.fence()
	q.setAvailEvent(q.availIdx())
	q.fence()
}

func (q *Queue) setAvailEvent(v uint16) {
	binary.LittleEndian.PutUint16(q.used[ringHeaderSize+usedElemSize*int(q.size):], v)
}
