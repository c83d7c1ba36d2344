package blk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/internal/ratelog"
	"github.com/govmm/govmm/devices/virtio"
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

// Reset implements virtio.Backend: it stops the worker after the request it
// is serving, if any, has completed.
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

	chain   virtio.Chain
	scratch [2][][]byte
	zeroes  []byte
}

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
	for {
		q.SetNotify(false)
		for !w.ctl.Stopping() {
			ok, err := q.Next(&w.chain)
			if err != nil {
				w.act.Fail(err)
				return false
			}
			if !ok {
				break
			}
			written, err := w.serve(&w.chain)
			if err != nil {
				w.act.Fail(err)
				return false
			}
			if err := q.Push(w.chain.Head, written); err != nil {
				w.act.Fail(err)
				return false
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

// serve carries out one request and returns the bytes written into the
// chain. An error is a malformed chain (a driver error).
func (w *worker) serve(c *virtio.Chain) (uint32, error) {
	var hdr [headerSize]byte
	if virtio.CopyFrom(hdr[:], c.Readable) < headerSize {
		return 0, &virtio.GuestError{Reason: fmt.Sprintf("virtio-blk: request %d: header shorter than %d bytes", c.Head, headerSize)}
	}
	data, status, ok := virtio.SplitLast(w.scratch[0], c.Writable, 1)
	if !ok {
		return 0, &virtio.GuestError{Reason: fmt.Sprintf("virtio-blk: request %d: no writable status byte", c.Head)}
	}
	w.scratch[0] = data
	payload, _ := virtio.Skip(w.scratch[1], c.Readable, headerSize)
	w.scratch[1] = payload

	typ := binary.LittleEndian.Uint32(hdr[0:])
	sector := binary.LittleEndian.Uint64(hdr[8:])
	var written uint64
	st := byte(statusOK)
	switch typ {
	case typeIn:
		written, st = w.read(sector, data)
	case typeOut:
		st = w.write(sector, payload)
	case typeFlush:
		st = w.flush()
	case typeGetID:
		written = uint64(virtio.CopyTo(data, w.dev.serial[:]))
	case typeDiscard, typeWriteZeroes:
		st = w.discard(typ, payload)
	default:
		st = statusUnsupp
	}
	status[0] = st
	return uint32(written + 1), nil
}

// extent checks that n bytes at sector lie on the disk and returns their
// byte offset. Neither the multiplication nor the sum can overflow.
func (w *worker) extent(sector, n uint64) (int64, bool) {
	size := w.dev.disk.Size()
	if n%SectorSize != 0 || sector > size/SectorSize {
		return 0, false
	}
	off := sector * SectorSize
	if n > size-off {
		return 0, false
	}
	return int64(off), true
}

func (w *worker) read(sector uint64, bufs [][]byte) (uint64, byte) {
	n := totalLen(bufs)
	off, ok := w.extent(sector, n)
	if !ok {
		w.dev.log.Debug("virtio-blk: read outside the disk", "sector", sector, "bytes", n)
		return 0, statusIOErr
	}
	got, err := preadvFull(w.dev.disk.f, bufs, off)
	if err != nil {
		w.dev.log.Warn("virtio-blk: read", "disk", w.dev.disk.Path(), "sector", sector, "err", err)
		return uint64(got), statusIOErr
	}
	return uint64(got), statusOK
}

func (w *worker) write(sector uint64, bufs [][]byte) byte {
	if w.dev.disk.ReadOnly() {
		return statusIOErr
	}
	n := totalLen(bufs)
	off, ok := w.extent(sector, n)
	if !ok {
		w.dev.log.Debug("virtio-blk: write outside the disk", "sector", sector, "bytes", n)
		return statusIOErr
	}
	if err := pwritevFull(w.dev.disk.f, bufs, off); err != nil {
		w.dev.log.Warn("virtio-blk: write", "disk", w.dev.disk.Path(), "sector", sector, "err", err)
		return statusIOErr
	}
	return statusOK
}

func (w *worker) flush() byte {
	if w.dev.disk.ReadOnly() {
		return statusOK
	}
	if err := unix.Fdatasync(int(w.dev.disk.f.Fd())); err != nil {
		w.dev.log.Warn("virtio-blk: flush", "disk", w.dev.disk.Path(), "err", err)
		return statusIOErr
	}
	return statusOK
}

// discard serves DISCARD and WRITE_ZEROES: a list of segments, each a
// sector, a count and flags (section 5.2.6, struct
// virtio_blk_discard_write_zeroes).
func (w *worker) discard(typ uint32, payload [][]byte) byte {
	if w.dev.disk.ReadOnly() {
		return statusIOErr
	}
	n := totalLen(payload)
	if n == 0 || n%discardSegSize != 0 || n/discardSegSize > maxDiscardSegs {
		return statusUnsupp
	}
	var segs [maxDiscardSegs * discardSegSize]byte
	virtio.CopyFrom(segs[:n], payload)
	fd := int(w.dev.disk.f.Fd())
	for i := uint64(0); i < n; i += discardSegSize {
		sector := binary.LittleEndian.Uint64(segs[i:])
		count := uint64(binary.LittleEndian.Uint32(segs[i+8:]))
		flags := binary.LittleEndian.Uint32(segs[i+12:])
		off, ok := w.extent(sector, count*SectorSize)
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
				err = w.writeZeroes(off, length)
			}
		default:
			err = unix.Fallocate(fd, unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, off, length)
			if errors.Is(err, unix.EOPNOTSUPP) {
				err = w.writeZeroes(off, length)
			}
		}
		if err != nil {
			w.dev.log.Warn("virtio-blk: discard or write zeroes", "disk", w.dev.disk.Path(), "sector", sector, "err", err)
			return statusIOErr
		}
	}
	return statusOK
}

func (w *worker) writeZeroes(off, length int64) error {
	if w.zeroes == nil {
		w.zeroes = make([]byte, 1<<20)
	}
	for length > 0 {
		n := min(length, int64(len(w.zeroes)))
		if _, err := w.dev.disk.f.WriteAt(w.zeroes[:n], off); err != nil {
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
