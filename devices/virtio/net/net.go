package net

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/internal/ratelog"
)

// Feature bits (virtio 1.2 section 5.1.3).
const (
	featureCsum      = 1 << 0  // VIRTIO_NET_F_CSUM: the guest sends partial checksums
	featureGuestCsum = 1 << 1  // VIRTIO_NET_F_GUEST_CSUM: the guest takes partial checksums
	featureMAC       = 1 << 5  // VIRTIO_NET_F_MAC
	featureGuestTSO4 = 1 << 7  // VIRTIO_NET_F_GUEST_TSO4
	featureGuestTSO6 = 1 << 8  // VIRTIO_NET_F_GUEST_TSO6
	featureGuestECN  = 1 << 9  // VIRTIO_NET_F_GUEST_ECN
	featureHostTSO4  = 1 << 11 // VIRTIO_NET_F_HOST_TSO4
	featureHostTSO6  = 1 << 12 // VIRTIO_NET_F_HOST_TSO6
	featureHostECN   = 1 << 13 // VIRTIO_NET_F_HOST_ECN
	featureMrgRxbuf  = 1 << 15 // VIRTIO_NET_F_MRG_RXBUF
	featureStatus    = 1 << 16 // VIRTIO_NET_F_STATUS
)

const (
	rxQueue   = 0
	txQueue   = 1
	QueueSize = 256
	// configSize covers mac, status and max_virtqueue_pairs (section
	// 5.1.4).
	configSize = 10
	linkUp     = 1 // VIRTIO_NET_S_LINK_UP
	// MaxFrame is the largest frame a chain may carry, header included: a
	// 64 KiB TSO segment with its Ethernet and VLAN headers (the size
	// section 5.1.6.3.1 asks of receive buffers without MRG_RXBUF).
	MaxFrame = VnetHdrSize + 65562
	// numBuffersOffset is num_buffers in struct virtio_net_hdr_v1.
	numBuffersOffset = 10
	// directMin is the frame size after which the worker reads the next
	// frame straight into guest buffers.
	directMin = 16 << 10
	// rxCoalesceFrames is the most frames delivered before the guest is
	// signalled, and rxLowWater the fraction of the receive queue (1 in
	// rxLowWater) left available under which it is signalled at once, to
	// refill in time (see receive).
	rxCoalesceFrames = 16
	rxLowWater       = 4
	// burstFrames is the most frames moved one way before the worker
	// turns to the other (see run).
	burstFrames = 32
)

// Port is the host side of the link: a tap, or a fake in tests.
type Port interface {
	// FD is non-blocking and moves one frame, virtio-net header first,
	// per read or write.
	FD() int
	SetOffload(csum, tso4, tso6, ecn bool) error
}

// Config configures a network device.
type Config struct {
	Port Port
	// MAC is the guest's address; nil means a random locally
	// administered one.
	MAC    net.HardwareAddr
	Logger *slog.Logger
}

// Stats are a device's counters: frames each way and those dropped, and
// how often the worker woke and the driver notified. Each counter moves
// before the guest can see what it counts.
type Stats struct {
	TxFrames  uint64 // frames written to the tap
	TxDropped uint64 // transmit chains too large, or refused by the tap
	RxFrames  uint64 // frames delivered to the guest
	RxDropped uint64 // received frames larger than the guest's buffers
	RxDirect  uint64 // received frames read straight into the guest's buffers
	Wakeups   uint64 // times the worker woke for a kick or the tap
	TxKicks   uint64 // the driver's transmit notifications
	RxKicks   uint64 // the driver's receive-buffer notifications
}

// Device is a virtio network device. It implements virtio.Backend.
type Device struct {
	port   Port
	mac    net.HardwareAddr
	config [configSize]byte
	log    *ratelog.Logger

	txFrames, txDropped, rxFrames, rxDropped, rxDirect, wakeups atomic.Uint64
	txKicks, rxKicks                                            atomic.Uint64

	runner virtio.Runner
}

// New returns a network device on cfg.Port.
func New(cfg Config) (*Device, error) {
	mac := cfg.MAC
	if mac == nil {
		mac = RandomMAC()
	}
	if len(mac) != 6 {
		return nil, fmt.Errorf("virtio-net: MAC %s is not 6 bytes", mac)
	}
	d := &Device{port: cfg.Port, mac: mac, log: ratelog.New(cfg.Logger)}
	copy(d.config[0:6], mac)
	binary.LittleEndian.PutUint16(d.config[6:], linkUp)
	binary.LittleEndian.PutUint16(d.config[8:], 1) // max_virtqueue_pairs
	return d, nil
}

// RandomMAC returns a random unicast, locally administered MAC address.
// An address needs to be unlikely to collide, not unpredictable: math/rand's
// generator (seeded from the kernel's randomness) is enough, and spares the
// VMM process crypto/rand's FIPS machinery.
func RandomMAC() net.HardwareAddr {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	b[0] = b[0]&^0x01 | 0x02
	return net.HardwareAddr(b[:6])
}

// MAC is the guest's address.
func (d *Device) MAC() net.HardwareAddr { return d.mac }

// Stats returns the device's counters.
func (d *Device) Stats() Stats {
	return Stats{TxFrames: d.txFrames.Load(), TxDropped: d.txDropped.Load(), RxFrames: d.rxFrames.Load(),
		RxDropped: d.rxDropped.Load(), RxDirect: d.rxDirect.Load(), Wakeups: d.wakeups.Load(),
		TxKicks: d.txKicks.Load(), RxKicks: d.rxKicks.Load()}
}

// Type implements virtio.Backend.
func (d *Device) Type() virtio.DeviceType { return virtio.TypeNet }

// Features implements virtio.Backend.
func (d *Device) Features() uint64 {
	return featureCsum | featureGuestCsum | featureMAC | featureGuestTSO4 | featureGuestTSO6 | featureGuestECN |
		featureHostTSO4 | featureHostTSO6 | featureHostECN | featureMrgRxbuf | featureStatus
}

// QueueSizes implements virtio.Backend: receive, transmit.
func (d *Device) QueueSizes() []uint16 { return []uint16{QueueSize, QueueSize} }

// ConfigSize implements virtio.Backend.
func (d *Device) ConfigSize() int { return configSize }

// ReadConfig implements virtio.Backend.
func (d *Device) ReadConfig(offset uint64, data []byte) {
	clear(data)
	if offset < configSize {
		copy(data, d.config[offset:])
	}
}

// WriteConfig implements virtio.Backend: nothing is writable (the MAC is
// writable only with VIRTIO_NET_F_CTRL_MAC_ADDR, not offered).
func (d *Device) WriteConfig(offset uint64, data []byte) {
	d.log.Debug("virtio-net: write to read-only configuration", "offset", offset)
}

// Activate implements virtio.Backend.
func (d *Device) Activate(a *virtio.Activation) error {
	if a.Queues[rxQueue] == nil || a.Queues[txQueue] == nil {
		return errors.New("virtio-net: the driver did not enable both queues")
	}
	f := a.Features
	if err := d.port.SetOffload(f&featureGuestCsum != 0, f&featureGuestTSO4 != 0, f&featureGuestTSO6 != 0, f&featureGuestECN != 0); err != nil {
		return fmt.Errorf("virtio-net: %w", err)
	}
	err := d.runner.Start(func(vw *virtio.Worker) {
		w := &worker{
			dev: d, act: a, rx: a.Queues[rxQueue], tx: a.Queues[txQueue], ctl: vw,
			mergeable: f&featureMrgRxbuf != 0, frame: make([]byte, MaxFrame),
		}
		w.run()
	})
	if err != nil {
		return fmt.Errorf("virtio-net: %w", err)
	}
	return nil
}

// Reset implements virtio.Backend: it stops the worker between frames.
func (d *Device) Reset() {
	if err := d.runner.Stop(); err != nil {
		d.log.Warn("virtio-net: stop worker", "err", err)
	}
	// Offloads the next driver has not accepted must not reach it.
	if err := d.port.SetOffload(false, false, false, false); err != nil {
		d.log.Warn("virtio-net: reset offloads", "err", err)
	}
}

// worker moves frames both ways between activation and reset.
type worker struct {
	dev       *Device
	act       *virtio.Activation
	rx, tx    *virtio.Queue
	ctl       *virtio.Worker
	mergeable bool

	chain virtio.Chain
	// frame holds a received frame that has not been delivered; pending
	// is its length (0: none).
	frame   []byte
	pending int
	broken  bool
	// first, skip and iov are scratch slices of buffer slices; heads
	// and room the chains receiveDirect took and their sizes.
	first, skip, iov [][]byte
	heads            []uint16
	room             []uint64
	// lastFrame is the size of the last frame received: receiveDirect
	// is tried only after large ones.
	lastFrame int
}

func (w *worker) fail(err error) {
	w.broken = true
	w.act.Fail(err)
}

func (w *worker) run() {
	const (
		pollStop = iota
		pollRxKick
		pollTxKick
		pollTap
	)
	fds := []unix.PollFd{
		pollStop:   {Fd: int32(w.ctl.StopFD()), Events: unix.POLLIN},
		pollRxKick: {Fd: int32(w.act.Kicks[rxQueue].FD()), Events: unix.POLLIN},
		pollTxKick: {Fd: int32(w.act.Kicks[txQueue].FD()), Events: unix.POLLIN},
		pollTap:    {Fd: int32(w.dev.port.FD()), Events: unix.POLLIN},
	}
	// Both directions are served once at the start: the driver may have
	// notified before activation. After that, only what poll reports:
	// every system call counts when the VMM itself runs under a software
	// CPU, as in the nested harness.
	doTx, doRx := true, true
	wantTap := true
	for {
		// Each direction gets at most burstFrames frames before the worker
		// looks at the other: a bulk stream one way must not hold up the
		// ACKs going the other, which pace it (QEMU's tap backend, too,
		// stops reading after 50 frames).
		txMore := false
		if doTx && !w.broken {
			txMore = w.transmit()
		}
		if doRx && !w.broken {
			wantTap = w.receive()
		}
		// Backpressure: the tap is not polled while the guest has no
		// buffers for what it would read.
		fds[pollTap].Fd = -1
		if wantTap && !w.broken {
			fds[pollTap].Fd = int32(w.dev.port.FD())
		}
		// With transmit chains left, only a look: they are served next.
		timeout := -1
		if txMore {
			timeout = 0
		}
		virtio.YieldBeforeWait()
		var ready int
		for {
			var err error
			ready, err = unix.Poll(fds, timeout)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				w.dev.log.Warn("virtio-net: poll", "err", err)
				return
			}
			break
		}
		if fds[pollStop].Revents != 0 {
			return
		}
		if ready > 0 { // not the mere look between transmit bursts
			w.dev.wakeups.Add(1)
		}
		doTx, doRx = txMore, fds[pollTap].Revents != 0
		if fds[pollTxKick].Revents != 0 {
			n := w.act.Kicks[txQueue].DrainCount()
			w.dev.txKicks.Add(n)
			doTx = doTx || n > 0
		}
		if fds[pollRxKick].Revents != 0 {
			n := w.act.Kicks[rxQueue].DrainCount()
			w.dev.rxKicks.Add(n)
			doRx = doRx || n > 0
		}
	}
}

// transmit writes available transmit chains to the tap, up to burstFrames
// of them. It returns true if it stopped there with more available (and
// notifications still off), false once the queue is empty with
// notifications on.
func (w *worker) transmit() bool {
	q := w.tx
	sent := 0
	for !w.ctl.Stopping() {
		q.SetNotify(false)
		for !w.ctl.Stopping() {
			if sent == burstFrames {
				return true
			}
			ok, err := q.Next(&w.chain)
			if err != nil {
				w.fail(err)
				return false
			}
			if !ok {
				break
			}
			w.send(&w.chain)
			sent++
			if err := q.Push(w.chain.Head, 0); err != nil {
				w.fail(err)
				return false
			}
			// Unlike receive, completions are offered as they happen: a
			// guest's TCP sends more of a socket's data only as the
			// buffers of what it sent come back (TCP small queues).
			if q.NeedsInterrupt() {
				w.act.Interrupt(txQueue)
			}
		}
		q.SetNotify(true)
		more, err := q.Pending()
		if err != nil {
			w.fail(err)
			return false
		}
		if !more {
			break
		}
	}
	return false
}

// send writes one frame, header first, to the tap; frames the tap cannot
// take are dropped, as a NIC drops on a full or broken link.
func (w *worker) send(c *virtio.Chain) {
	n := c.ReadableLen()
	if n < VnetHdrSize || n > MaxFrame {
		w.dev.txDropped.Add(1)
		w.dev.log.Debug("virtio-net: transmit chain of bad size dropped", "bytes", n)
		return
	}
	bufs := c.Readable
	if len(bufs) > 1024 { // UIO_MAXIOV
		w.dev.txDropped.Add(1)
		return
	}
	for {
		_, err := unix.Writev(w.dev.port.FD(), bufs)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// EINVAL: a header the kernel rejects; EAGAIN, EIO: the
			// tap is full or down.
			w.dev.txDropped.Add(1)
			w.dev.log.Debug("virtio-net: frame dropped by the tap", "err", err)
			return
		}
		w.dev.txFrames.Add(1)
		return
	}
}

// receive moves frames from the tap into receive buffers until the tap is
// empty or the buffers run out. It reports whether to wait for the tap
// (true) or for the guest to add buffers (false).
func (w *worker) receive() bool {
	q := w.rx
	// While there are buffers the guest need not notify its refills.
	q.SetNotify(false)
	// Interrupt coalescing, as a NIC's rx-frames setting: the guest is
	// signalled when the burst ends (the tap is empty, the guest's buffers
	// ran out, the worker stops), after rxCoalesceFrames frames, or when
	// its buffers run low, whichever comes first. Each interrupt costs
	// the guest an exit and a NAPI poll (much more when it runs nested):
	// signalled a frame at a time, a bulk download took as many receive
	// interrupts as under QEMU or more; coalesced, about half as many.
	// Waiting for the burst's end alone would let the ring run dry
	// before the guest starts refilling it.
	sinceSignal := 0
	signal := func() {
		sinceSignal = 0
		if !w.broken && q.NeedsInterrupt() {
			w.act.Interrupt(rxQueue)
		}
	}
	defer func() {
		if sinceSignal > 0 {
			signal()
		}
	}()
	sinceBurst := 0
	delivered := func() {
		sinceBurst++
		sinceSignal++
		if sinceSignal >= rxCoalesceFrames {
			signal()
			return
		}
		left, err := q.Available()
		if err != nil {
			w.fail(err)
			return
		}
		if left < q.Size()/rxLowWater {
			signal()
		}
	}
	for !w.ctl.Stopping() && !w.broken {
		if sinceBurst == burstFrames {
			return true // the tap is polled again, and is still readable
		}
		if w.pending == 0 && w.mergeable && w.lastFrame >= directMin {
			// In a bulk stream (the last frame was large), read the
			// frame straight into the guest's buffers, if they can hold
			// the largest one. Small frames (ACKs, requests) are cheaper
			// to copy than taking chains for 64 KiB and giving most
			// back.
			got, wait, err := w.receiveDirect()
			if err != nil {
				w.fail(err)
				return false
			}
			if wait {
				return true
			}
			if got {
				delivered()
				continue
			}
		}
		if w.pending == 0 {
			n, err := unix.Read(w.dev.port.FD(), w.frame)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				return true
			}
			if err != nil {
				w.dev.log.Warn("virtio-net: read tap", "err", err)
				return true
			}
			if n < VnetHdrSize {
				continue
			}
			w.pending = n
			w.lastFrame = n
		}
		had, err := q.Available()
		if err != nil {
			w.fail(err)
			return false
		}
		ok, err := w.deliver(w.frame[:w.pending])
		if err != nil {
			w.fail(err)
			return false
		}
		if !ok {
			// Not enough buffers for this frame: ask to be told of more
			// than there are now, and go on only if some came
			// meanwhile. (Retrying with the same too few buffers would
			// spin, and keep the guest from the interrupt it needs to
			// refill.)
			q.NotifyOnMore()
			now, err := q.Available()
			if err != nil {
				w.fail(err)
				return false
			}
			if now <= had {
				return false
			}
			continue
		}
		w.pending = 0
		delivered()
	}
	return false
}

// receiveDirect reads one frame from the tap into receive chains taken
// beforehand, enough for the largest frame, and gives back those it did not
// fill. It reports got when it delivered a frame, wait when the tap is
// empty; neither means there were too few buffers: the caller then reads
// into its own buffer and delivers from there.
func (w *worker) receiveDirect() (got, wait bool, err error) {
	q := w.rx
	w.iov = w.iov[:0]
	w.heads = w.heads[:0]
	w.room = w.room[:0]
	var total uint64
	for total < MaxFrame {
		ok, err := q.Next(&w.chain)
		if err != nil {
			return false, false, err
		}
		if !ok {
			break
		}
		n := w.chain.WritableLen()
		if len(w.heads) == 0 && n < VnetHdrSize {
			return false, false, &virtio.GuestError{Reason: fmt.Sprintf(
				"virtio-net: receive chain %d has no room for the %d-byte header", w.chain.Head, VnetHdrSize)}
		}
		w.heads = append(w.heads, w.chain.Head)
		w.room = append(w.room, n)
		w.iov = append(w.iov, w.chain.Writable...)
		total += n
	}
	if total < MaxFrame || len(w.iov) > 1024 { // UIO_MAXIOV
		q.Undo(uint16(len(w.heads)))
		return false, false, nil
	}
	n, err := readv(w.dev.port.FD(), w.iov)
	if err != nil || n < VnetHdrSize {
		q.Undo(uint16(len(w.heads)))
		if errors.Is(err, unix.EAGAIN) {
			return false, true, nil
		}
		if err != nil {
			w.dev.log.Warn("virtio-net: read tap", "err", err)
			return false, true, nil
		}
		return false, false, nil // a runt: dropped, try the next
	}
	w.lastFrame = n
	w.dev.rxDirect.Add(1)
	// Which chains the frame filled, and how much of each.
	left := uint64(n)
	used := 0
	for used < len(w.heads) && left > 0 {
		l := min(left, w.room[used])
		w.room[used] = l
		left -= l
		used++
	}
	q.Undo(uint16(len(w.heads) - used))
	var nb [2]byte
	binary.LittleEndian.PutUint16(nb[:], uint16(used))
	field, _ := virtio.Skip(w.skip, w.iov, numBuffersOffset)
	w.skip = field
	virtio.CopyTo(field, nb[:])
	// Counted before the entries are published, so that whoever sees
	// them sees the count too.
	w.dev.rxFrames.Add(1)
	for i := range used {
		if err := q.Push(w.heads[i], uint32(w.room[i])); err != nil {
			return false, false, err
		}
	}
	return true, false, nil
}

// readv reads one frame into bufs.
func readv(fd int, bufs [][]byte) (int, error) {
	for {
		n, err := unix.Readv(fd, bufs)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return n, err
	}
}

// deliver puts frame into as many receive chains as it needs (one, unless
// MRG_RXBUF was negotiated). It returns false, taking nothing, when there
// are not enough chains yet. A frame too large for a single chain without
// MRG_RXBUF is dropped (the driver broke section 5.1.6.3.1).
func (w *worker) deliver(frame []byte) (bool, error) {
	q := w.rx
	var heads [QueueSize]uint16
	var lens [QueueSize]uint32
	taken := 0
	for off := 0; off < len(frame); {
		if taken == len(heads) {
			// More chains than the queue holds and still not done: the
			// buffers are tiny. Drop the frame, keep the buffers.
			q.Undo(uint16(taken))
			w.dev.rxDropped.Add(1)
			return true, nil
		}
		ok, err := q.Next(&w.chain)
		if err != nil {
			return false, err
		}
		if !ok {
			q.Undo(uint16(taken))
			return false, nil
		}
		room := int(min(w.chain.WritableLen(), uint64(len(frame)-off)))
		if taken == 0 {
			if room < VnetHdrSize {
				return false, &virtio.GuestError{Reason: fmt.Sprintf(
					"virtio-net: receive chain %d has no room for the %d-byte header", w.chain.Head, VnetHdrSize)}
			}
			if !w.mergeable && room < len(frame) {
				// Give the chain back empty and drop the frame.
				w.dev.rxDropped.Add(1)
				return true, q.Push(w.chain.Head, 0)
			}
			// The header's buffers, kept for num_buffers below: the
			// chain's own slice is reused by the next Next.
			w.first = append(w.first[:0], w.chain.Writable...)
		}
		n := virtio.CopyTo(w.chain.Writable, frame[off:off+room])
		heads[taken], lens[taken] = w.chain.Head, uint32(n)
		taken++
		off += n
	}
	// num_buffers: how many chains this frame took (section 5.1.6.4).
	var nb [2]byte
	binary.LittleEndian.PutUint16(nb[:], uint16(taken))
	field, _ := virtio.Skip(w.skip, w.first, numBuffersOffset)
	w.skip = field
	virtio.CopyTo(field, nb[:])
	w.dev.rxFrames.Add(1) // before the entries are published, as above
	for i := range taken {
		if err := q.Push(heads[i], lens[i]); err != nil {
			return false, err
		}
	}
	return true, nil
}
