package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/internal/ratelog"
)

// Feature bits (virtio 1.2 section 5.2.3).
const (
	featureSegMax      = 1 << 2
	featureRO          = 1 << 5
	featureBlkSize     = 1 << 6
	featureFlush       = 1 << 9
	featureDiscard     = 1 << 13
	featureWriteZeroes = 1 << 14
)

// Request types and status values (virtio 1.2 section 5.2.6).
const (
	typeIn          = 0
	typeOut         = 1
	typeFlush       = 4
	typeGetID       = 8
	typeDiscard     = 11
	typeWriteZeroes = 13

	statusOK     = 0
	statusIOErr  = 1
	statusUnsupp = 2
)

const (
	headerSize = 16 // struct virtio_blk_req: type, reserved, sector
	// IDSize is the length of the GET_ID answer (VIRTIO_BLK_ID_BYTES).
	IDSize = 20
	// discardSegSize is struct virtio_blk_discard_write_zeroes.
	discardSegSize = 16
	// maxDiscardSegs bounds the segments of one DISCARD or WRITE_ZEROES.
	maxDiscardSegs = 32
	// QueueSize is the size of the device's one queue.
	QueueSize = 256
	// configSize covers struct virtio_blk_config up to
	// write_zeroes_may_unmap and its padding (section 5.2.4).
	configSize = 60
)

// Config configures a block device.
type Config struct {
	Disk *Disk
	// Serial is what GET_ID answers (at most 20 bytes; shorter is
	// NUL-padded).
	Serial string
	Logger *slog.Logger
}

// Device is a virtio block device. It implements virtio.Backend.
type Device struct {
	disk   *Disk
	serial [IDSize]byte
	config [configSize]byte
	log    *ratelog.Logger

	runner virtio.Runner
}

// New returns a block device for cfg.Disk.
func New(cfg Config) (*Device, error) {
	if len(cfg.Serial) > IDSize {
		return nil, fmt.Errorf("disk %s: serial %q is longer than %d bytes", cfg.Disk.Path(), cfg.Serial, IDSize)
	}
	d := &Device{disk: cfg.Disk, log: ratelog.New(cfg.Logger)}
	copy(d.serial[:], cfg.Serial)
	le := binary.LittleEndian
	le.PutUint64(d.config[0:], cfg.Disk.Size()/SectorSize) // capacity
	le.PutUint32(d.config[12:], QueueSize-2)               // seg_max: the header and status take two descriptors
	le.PutUint32(d.config[20:], SectorSize)                // blk_size
	le.PutUint16(d.config[34:], 1)                         // num_queues
	if !cfg.Disk.ReadOnly() {
		sectors := uint32(1<<32-1) / SectorSize * SectorSize
		le.PutUint32(d.config[36:], sectors)        // max_discard_sectors
		le.PutUint32(d.config[40:], maxDiscardSegs) // max_discard_seg
		le.PutUint32(d.config[44:], 1)              // discard_sector_alignment
		le.PutUint32(d.config[48:], sectors)        // max_write_zeroes_sectors
		le.PutUint32(d.config[52:], maxDiscardSegs) // max_write_zeroes_seg
		d.config[56] = 1                            // write_zeroes_may_unmap
	}
	return d, nil
}

// Type implements virtio.Backend.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeBlock }

// Features implements virtio.Backend. FLUSH is always offered: the guest
// then knows the device has a write cache and flushes what must last.
func (d *Device) Features() uint64 {
	f := uint64(featureSegMax | featureBlkSize | featureFlush)
	if d.disk.ReadOnly() {
		f |= featureRO
	} else {
		f |= featureDiscard | featureWriteZeroes
	}
	return f
}

// QueueSizes implements virtio.Backend.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize} }

// ConfigSize implements virtio.Backend.
func (d *Device) ConfigSize() int { return configSize }

// ReadConfig implements virtio.Backend.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < configSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig implements virtio.Backend: nothing is writable (writeback
// is not offered).
func (d *Device) WriteConfig(offset uint64, data []byte) {
	d.log.Debug("virtio-blk: write to read-only configuration", "offset", offset)
}

// Activate implements virtio.Backend: it starts the device's worker.
func (d *Device) Activate(a *virtio.Activation) error {
	if a.Queues[0] == nil {
		return errors.New("virtio-blk: the driver did not enable the request queue")
	}
	err := d.runner.Start(func(vw *virtio.Worker) {
		w := &worker{dev: d, act: a, queue: a.Queues[0], ctl: vw, waiter: virtio.NewWaiter(vw.StopFD(), a.Kicks[:1])}
		w.run()
	})
	if err != nil {
		return fmt.Errorf("virtio-blk: %w", err)
	}
	return nil
}

// Reset implements virtio.Backend: it stops the worker after the batch of
// requests it is serving, if any, has completed.
func (d *Device) Reset() {
	if err := d.runner.Stop(); err != nil {
		d.log.Warn("virtio-blk: stop worker", "err", err)
	}
}

// worker serves the request queue between activation and reset.
type worker struct {
	dev    *Device
	act    *virtio.Activation
	queue  *virtio.Queue
	ctl    *virtio.Worker
	waiter *virtio.Waiter

	// reqs are the requests of the batch being served, reused from one
	// batch to the next.
	reqs []request
}

// request is one request of a batch: its chain, and what serving it gave.
type request struct {
	chain virtio.Chain
	// data and payload are scratch slices of the chain's buffers.
	data, payload [][]byte
	written       uint32
	err           error // a malformed chain (a driver error)
}

// Batches: the worker takes every request available (up to batchMax) and
// serves them at once, up to maxParallel at a time, on goroutines of its
// own. A guest with several requests in flight (the block layer splits a
// large read; a database keeps a queue depth) then has them served on as
// many host CPUs as it keeps busy, as QEMU's thread pool and io_uring
// backends do; the requests complete together, with one interrupt. A
// single request is served on the worker itself, without a hand-off. The
// queue itself stays the worker's alone. Requests whose buffers overlap
// in guest memory race with each other there, as they would on real
// hardware: the guest gets what it asked for, and nothing outside its RAM
// is touched.
const (
	batchMax    = 64
	maxParallel = 8
)

func (w *worker) run() {
	var kicked []bool
	for {
		// Serve what is there first: the driver may have notified before
		// activation, and after enabling notifications more may have come.
		if !w.drain() {
			// The queue is broken; wait for the reset.
			for {
				var ok bool
				var err error
				if kicked, ok, err = w.waiter.Wait(kicked); !ok || err != nil {
					return
				}
			}
		}
		var ok bool
		var err error
		kicked, ok, err = w.waiter.Wait(kicked)
		if err != nil {
			w.dev.log.Warn("virtio-blk: wait for requests", "err", err)
			return
		}
		if !ok {
			return
		}
	}
}

// drain serves requests until the queue is empty with notifications on. It
// returns false if the driver broke the queue.
func (w *worker) drain() bool {
	q := w.queue
	if w.reqs == nil {
		w.reqs = make([]request, batchMax)
	}
	for {
		q.SetNotify(false)
		for !w.ctl.Stopping() {
			n := 0
			for n < batchMax {
				ok, err := q.Next(&w.reqs[n].chain)
				if err != nil {
					w.act.Fail(err)
					return false
				}
				if !ok {
					break
				}
				n++
			}
			if n == 0 {
				break
			}
			batch := w.reqs[:n]
			serveAll(w.dev, batch)
			for i := range batch {
				r := &batch[i]
				if r.err != nil {
					w.act.Fail(r.err)
					return false
				}
				if err := q.Push(r.chain.Head, r.written); err != nil {
					w.act.Fail(err)
					return false
				}
			}
			if q.NeedsInterrupt() {
				w.act.Interrupt(0)
			}
		}
		if w.ctl.Stopping() {
			return true
		}
		q.SetNotify(true)
		more, err := q.Pending()
		if err != nil {
			w.act.Fail(err)
			return false
		}
		if !more {
			return true
		}
	}
}

// serveAll serves every request of batch and returns when all are done:
// one on the calling goroutine, more on up to maxParallel-1 helpers, each
// taking the next request not yet taken. Should the helpers be slow to
// start, the caller serves what they have not taken.
func serveAll(d *Device, batch []request) {
	if len(batch) == 1 {
		d.serve(&batch[0])
		return
	}
	var next atomic.Int32
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(batch) {
				return
			}
			d.serve(&batch[i])
		}
	}
	var wg sync.WaitGroup
	for range min(len(batch), maxParallel) - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// serve carries out one request and records in r the bytes written into
// its chain, or the driver error that made it impossible.
func (d *Device) serve(r *request) {
	c := &r.chain
	r.written, r.err = 0, nil
	var hdr [headerSize]byte
	if virtio.CopyFrom(hdr[:], c.Readable) < headerSize {
		r.err = &virtio.GuestError{Reason: fmt.Sprintf("virtio-blk: request %d: header shorter than %d bytes", c.Head, headerSize)}
		return
	}
	data, status, ok := virtio.SplitLast(r.data, c.Writable, 1)
	if !ok {
		r.err = &virtio.GuestError{Reason: fmt.Sprintf("virtio-blk: request %d: no writable status byte", c.Head)}
		return
	}
	r.data = data
	payload, _ := virtio.Skip(r.payload, c.Readable, headerSize)
	r.payload = payload

	typ := binary.LittleEndian.Uint32(hdr[0:])
	sector := binary.LittleEndian.Uint64(hdr[8:])
	var written uint64
	st := byte(statusOK)
	switch typ {
	case typeIn:
		written, st = d.read(sector, data)
	case typeOut:
		st = d.write(sector, payload)
	case typeFlush:
		st = d.flush()
	case typeGetID:
		written = uint64(virtio.CopyTo(data, d.serial[:]))
	case typeDiscard, typeWriteZeroes:
		st = d.discard(typ, payload)
	default:
		st = statusUnsupp
	}
	status[0] = st
	r.written = uint32(written + 1)
}

// extent checks that n bytes at sector lie on the disk and returns their
// byte offset. Neither the multiplication nor the sum can overflow.
func (d *Device) extent(sector, n uint64) (int64, bool) {
	size := d.disk.Size()
	if n%SectorSize != 0 || sector > size/SectorSize {
		return 0, false
	}
	off := sector * SectorSize
	if n > size-off {
		return 0, false
	}
	return int64(off), true
}

func (d *Device) read(sector uint64, bufs [][]byte) (uint64, byte) {
	n := totalLen(bufs)
	off, ok := d.extent(sector, n)
	if !ok {
		d.log.Debug("virtio-blk: read outside the disk", "sector", sector, "bytes", n)
		return 0, statusIOErr
	}
	got, err := preadvFull(d.disk.f, bufs, off)
	if err != nil {
		d.log.Warn("virtio-blk: read", "disk", d.disk.Path(), "sector", sector, "err", err)
		return uint64(got), statusIOErr
	}
	return uint64(got), statusOK
}

func (d *Device) write(sector uint64, bufs [][]byte) byte {
	if d.disk.ReadOnly() {
		return statusIOErr
	}
	n := totalLen(bufs)
	off, ok := d.extent(sector, n)
	if !ok {
		d.log.Debug("virtio-blk: write outside the disk", "sector", sector, "bytes", n)
		return statusIOErr
	}
	if err := pwritevFull(d.disk.f, bufs, off); err != nil {
		d.log.Warn("virtio-blk: write", "disk", d.disk.Path(), "sector", sector, "err", err)
		return statusIOErr
	}
	return statusOK
}

func (d *Device) flush() byte {
	if d.disk.ReadOnly() {
		return statusOK
	}
	if err := unix.Fdatasync(int(d.disk.f.Fd())); err != nil {
		d.log.Warn("virtio-blk: flush", "disk", d.disk.Path(), "err", err)
		return statusIOErr
	}
	return statusOK
}

// discard serves DISCARD and WRITE_ZEROES: a list of segments, each a
// sector, a count and flags (section 5.2.6, struct
// virtio_blk_discard_write_zeroes).
func (d *Device) discard(typ uint32, payload [][]byte) byte {
	if d.disk.ReadOnly() {
		return statusIOErr
	}
	n := totalLen(payload)
	if n == 0 || n%discardSegSize != 0 || n/discardSegSize > maxDiscardSegs {
		return statusUnsupp
	}
	var segs [maxDiscardSegs * discardSegSize]byte
	virtio.CopyFrom(segs[:n], payload)
	fd := int(d.disk.f.Fd())
	for i := uint64(0); i < n; i += discardSegSize {
		sector := binary.LittleEndian.Uint64(segs[i:])
		count := uint64(binary.LittleEndian.Uint32(segs[i+8:]))
		flags := binary.LittleEndian.Uint32(segs[i+12:])
		off, ok := d.extent(sector, count*SectorSize)
		if !ok || (typ == typeDiscard && flags != 0) || flags&^1 != 0 {
			return statusIOErr
		}
		length := int64(count * SectorSize)
		if length == 0 {
			continue
		}
		var err error
		switch {
		case typ == typeDiscard:
			// Discarding is advisory: where holes cannot be punched, the
			// data simply stays.
			err = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = nil
			}
		case flags&1 != 0: // VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP
			err = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = d.writeZeroes(off, length)
			}
		default:
			err = unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, length)
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = d.writeZeroes(off, length)
			}
		}
		if err != nil {
			d.log.Warn("virtio-blk: discard or write zeroes", "disk", d.disk.Path(), "sector", sector, "err", err)
			return statusIOErr
		}
	}
	return statusOK
}

// writeZeroes writes zeroes where the file system can neither punch holes
// nor zero ranges: a rare path, so its buffer is not kept.
func (d *Device) writeZeroes(off, length int64) error {
	zeroes := make([]byte, min(length, 1<<20))
	for length > 0 {
		n := min(length, int64(len(zeroes)))
		if _, err := d.disk.f.WriteAt(zeroes[:n], off); err != nil {
			return err
		}
		off, length = off+n, length-n
	}
	return nil
}

func totalLen(bufs [][]byte) uint64 {
	var n uint64
	for _, b := range bufs {
		n += uint64(len(b))
	}
	return n
}
