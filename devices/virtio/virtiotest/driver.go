// Package virtiotest is the driver side of a split virtqueue in fake guest
// memory, for testing the virtio devices without a guest: it lays out the
// rings, makes chains available (well-formed ones, or anything a hostile
// driver might write) and reads back what the device used.
package virtiotest

import (
	"encoding/binary"
	"fmt"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/memory"
)

// Descriptor flags (virtio 1.2 section 2.7.5).
const (
	FlagNext     = 1
	FlagWrite    = 2
	FlagIndirect = 4
)

// Buf is one buffer of a chain: Data for the device to read, or (when
// Write is non-zero) that many bytes for the device to fill.
type Buf struct {
	Data  []byte
	Write uint32
}

// Used is one used ring element.
type Used struct {
	ID, Len uint32
}

// Driver owns guest memory at GPA 0 holding one queue's rings, followed by
// a bump-allocated heap for buffers and indirect tables.
type Driver struct {
	Mem  *memory.Guest
	RAM  []byte
	Size uint16
	Cfg  virtio.QueueConfig

	heap     uint64
	nextDesc uint16
	availIdx uint16
	usedSeen uint16
	writable map[uint16][][]byte // head -> its writable buffers, in order
}

// NewDriver lays out a queue of size entries (rings at 4 KiB-aligned
// addresses) in ramSize bytes (below 3 GiB) of RAM at GPA 0. The RAM is
// mmap'd, as a VM's is, not on the Go heap: the driver and the device share
// it without Go synchronisation, as a guest and govmm do, which the race
// detector would otherwise report. Close frees it.
func NewDriver(size uint16, ramSize uint64) (*Driver, error) {
	mem, err := memory.New(ramSize)
	if err != nil {
		return nil, err
	}
	ram := mem.Regions()[0].Host
	n := uint64(size)
	desc := uint64(0x1000)
	avail := align(desc+16*n, 0x1000)
	used := align(avail+6+2*n, 0x1000)
	heap := align(used+6+8*n, 0x1000)
	if heap >= ramSize {
		mem.Close()
		return nil, fmt.Errorf("virtiotest: %d bytes of RAM are too few for a queue of %d", ramSize, size)
	}
	return &Driver{
		Mem: mem, RAM: ram, Size: size,
		Cfg:      virtio.QueueConfig{Size: size, Desc: desc, Avail: avail, Used: used},
		heap:     heap,
		writable: map[uint16][][]byte{},
	}, nil
}

// Close frees the driver's RAM.
func (d *Driver) Close() error { return d.Mem.Close() }

func align(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// Alloc returns the address of n fresh bytes of RAM (16-byte aligned).
func (d *Driver) Alloc(n uint64) uint64 {
	addr := align(d.heap, 16)
	if addr+n > uint64(len(d.RAM)) {
		panic(fmt.Sprintf("virtiotest: out of fake RAM allocating %d bytes", n))
	}
	d.heap = addr + n
	return addr
}

// WriteDesc writes descriptor i of the table at table (the queue's own when
// table is 0) with any values at all.
func (d *Driver) WriteDesc(table uint64, i uint16, addr uint64, length uint32, flags, next uint16) {
	if table == 0 {
		table = d.Cfg.Desc
	}
	b := d.RAM[table+16*uint64(i):]
	binary.LittleEndian.PutUint64(b[0:], addr)
	binary.LittleEndian.PutUint32(b[8:], length)
	binary.LittleEndian.PutUint16(b[12:], flags)
	binary.LittleEndian.PutUint16(b[14:], next)
}

// Publish puts head in the next available ring entry and advances the
// available index.
func (d *Driver) Publish(head uint16) {
	binary.LittleEndian.PutUint16(d.RAM[d.Cfg.Avail+4+2*uint64(d.availIdx%d.Size):], head)
	d.availIdx++
	d.SetAvailIdx(d.availIdx)
}

// AvailIdx is the available index the driver has published.
func (d *Driver) AvailIdx() uint16 { return d.availIdx }

// NeedsKick reports whether a driver that published chains from index old
// up to the current one must notify the device: the device's avail_event
// with EVENT_IDX (virtio 1.2 section 2.7.10, vring_need_event), its
// NO_NOTIFY flag otherwise. Drivers that kick only then, as Linux does,
// expose a device that asks for notifications too late.
func (d *Driver) NeedsKick(old uint16) bool {
	now := d.availIdx
	if d.Cfg.EventIdx {
		event := d.AvailEvent()
		return now-event-1 < now-old
	}
	return d.UsedFlags()&1 == 0
}

// SetAvailIdx writes the available index (a hostile driver may write any).
func (d *Driver) SetAvailIdx(idx uint16) {
	binary.LittleEndian.PutUint16(d.RAM[d.Cfg.Avail+2:], idx)
}

// SetAvailEntry writes available ring entry slot (modulo the size).
func (d *Driver) SetAvailEntry(slot, head uint16) {
	binary.LittleEndian.PutUint16(d.RAM[d.Cfg.Avail+4+2*uint64(slot%d.Size):], head)
}

// SetAvailFlags writes the available ring's flags (1: no interrupt).
func (d *Driver) SetAvailFlags(flags uint16) {
	binary.LittleEndian.PutUint16(d.RAM[d.Cfg.Avail:], flags)
}

// SetUsedEvent writes used_event (EVENT_IDX).
func (d *Driver) SetUsedEvent(v uint16) {
	binary.LittleEndian.PutUint16(d.RAM[d.Cfg.Avail+4+2*uint64(d.Size):], v)
}

// AvailEvent reads avail_event (EVENT_IDX), which the device writes.
func (d *Driver) AvailEvent() uint16 {
	return binary.LittleEndian.Uint16(d.RAM[d.Cfg.Used+4+8*uint64(d.Size):])
}

// UsedFlags reads the used ring's flags (1: no notify).
func (d *Driver) UsedFlags() uint16 { return binary.LittleEndian.Uint16(d.RAM[d.Cfg.Used:]) }

// UsedIdx reads the used index.
func (d *Driver) UsedIdx() uint16 { return binary.LittleEndian.Uint16(d.RAM[d.Cfg.Used+2:]) }

// AddChain writes a well-formed chain of bufs into fresh descriptors of the
// queue's table and publishes it. It returns the head.
func (d *Driver) AddChain(bufs ...Buf) uint16 {
	head := d.nextDesc
	var writable [][]byte
	for k, b := range bufs {
		i := d.nextDesc
		d.nextDesc = (d.nextDesc + 1) % d.Size
		addr, length, flags := d.buffer(b)
		if b.Write != 0 {
			writable = append(writable, d.RAM[addr:addr+uint64(length)])
		}
		var next uint16
		if k < len(bufs)-1 {
			flags |= FlagNext
			next = d.nextDesc
		}
		d.WriteDesc(0, i, addr, length, flags, next)
	}
	d.writable[head] = writable
	d.Publish(head)
	return head
}

// AddIndirectChain writes bufs into a fresh indirect table, points one
// descriptor of the queue's table at it and publishes that.
func (d *Driver) AddIndirectChain(bufs ...Buf) uint16 {
	table := d.Alloc(16 * uint64(len(bufs)))
	var writable [][]byte
	for k, b := range bufs {
		addr, length, flags := d.buffer(b)
		if b.Write != 0 {
			writable = append(writable, d.RAM[addr:addr+uint64(length)])
		}
		var next uint16
		if k < len(bufs)-1 {
			flags |= FlagNext
			next = uint16(k + 1)
		}
		d.WriteDesc(table, uint16(k), addr, length, flags, next)
	}
	head := d.nextDesc
	d.nextDesc = (d.nextDesc + 1) % d.Size
	d.WriteDesc(0, head, table, uint32(16*len(bufs)), FlagIndirect, 0)
	d.writable[head] = writable
	d.Publish(head)
	return head
}

func (d *Driver) buffer(b Buf) (addr uint64, length uint32, flags uint16) {
	if b.Write != 0 {
		return d.Alloc(uint64(b.Write)), b.Write, FlagWrite
	}
	addr = d.Alloc(uint64(len(b.Data)))
	copy(d.RAM[addr:], b.Data)
	return addr, uint32(len(b.Data)), 0
}

// TakeUsed returns the used elements the device published since the last
// call. With EVENT_IDX it then asks for an interrupt at the next one, as
// Linux's virtqueue_get_buf does.
func (d *Driver) TakeUsed() []Used {
	var out []Used
	for idx := d.UsedIdx(); d.usedSeen != idx; d.usedSeen++ {
		e := d.RAM[d.Cfg.Used+4+8*uint64(d.usedSeen%d.Size):]
		out = append(out, Used{ID: binary.LittleEndian.Uint32(e), Len: binary.LittleEndian.Uint32(e[4:])})
	}
	if d.Cfg.EventIdx {
		d.SetUsedEvent(d.usedSeen)
	}
	return out
}

// Writable returns the writable buffers of the chain at head (as added by
// AddChain or AddIndirectChain), aliasing fake RAM.
func (d *Driver) Writable(head uint16) [][]byte { return d.writable[head] }
