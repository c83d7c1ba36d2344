package net

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
)

// fakePort is one end of a SOCK_SEQPACKET pair: like a tap, one frame per
// read or write. The test holds the other end, the "host".
type fakePort struct {
	fd int

	mu       sync.Mutex
	offloads [][4]bool
}

func (p *fakePort) FD() int { return p.fd }
func (p *fakePort) SetOffload(csum, tso4, tso6, ecn bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.offloads = append(p.offloads, [4]bool{csum, tso4, tso6, ecn})
	return nil
}

// netRig has both queues in one fake guest memory: the rx ring in the
// first half, the tx ring in the second.
type netRig struct {
	t          *testing.T
	dev        *Device
	port       *fakePort
	host       int
	rx, tx     *virtiotest.Driver
	kicks      []*virtio.EventFD
	interrupts chan int
	failures   chan error

	mu sync.Mutex
	// rxSignalled is the receive queue's used index at each of its
	// interrupts, as the device sent them.
	rxSignalled []uint16
}

func newNetRig(t *testing.T, features uint64) *netRig {
	t.Helper()
	return newNetRigEventIdx(t, features, true)
}

// newNetRigEventIdx is newNetRig with or without VIRTIO_F_EVENT_IDX:
// without it, and with interrupts never disabled, every interrupt the
// device decides on reaches the driver.
func newNetRigEventIdx(t *testing.T, features uint64, eventIdx bool) *netRig {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	// Room for large frames in the socket buffers.
	for _, fd := range fds {
		require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20))
	}
	port := &fakePort{fd: fds[0]}
	dev, err := New(Config{Port: port})
	require.NoError(t, err)
	r := &netRig{t: t, dev: dev, port: port, host: fds[1], interrupts: make(chan int, 1000), failures: make(chan error, 10)}
	var queues []*virtio.Queue
	for range 2 {
		d, err := virtiotest.NewDriver(QueueSize, 4<<20)
		require.NoError(t, err)
		t.Cleanup(func() { assert.NoError(t, d.Close()) })
		d.Cfg.EventIdx, d.Cfg.Indirect = eventIdx, true
		q, err := virtio.NewQueue(d.Mem, d.Cfg)
		require.NoError(t, err)
		queues = append(queues, q)
		k, err := virtio.NewEventFD()
		require.NoError(t, err)
		r.kicks = append(r.kicks, k)
		if r.rx == nil {
			r.rx = d
		} else {
			r.tx = d
		}
	}
	require.NoError(t, dev.Activate(&virtio.Activation{
		Features: features,
		Queues:   queues,
		Kicks:    r.kicks,
		Interrupt: func(q int) {
			if q == rxQueue {
				r.mu.Lock()
				r.rxSignalled = append(r.rxSignalled, r.rx.UsedIdx())
				r.mu.Unlock()
			}
			r.interrupts <- q
		},
		Fail: func(err error) { r.failures <- err },
	}))
	t.Cleanup(func() {
		dev.Reset()
		for _, k := range r.kicks {
			k.Close()
		}
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return r
}

// frame is a virtio-net header (all zero but num_buffers garbage, which
// the device must overwrite) followed by n payload bytes.
func frame(n int, seed byte) []byte {
	b := make([]byte, VnetHdrSize+n)
	b[numBuffersOffset], b[numBuffersOffset+1] = 0xaa, 0xbb
	for i := range n {
		b[VnetHdrSize+i] = seed + byte(i*7)
	}
	return b
}

func (r *netRig) waitInterrupt(queue int) {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case q := <-r.interrupts:
			if q == queue {
				return
			}
		case err := <-r.failures:
			r.t.Fatalf("device failed: %v", err)
		case <-deadline:
			r.t.Fatalf("no interrupt on queue %d", queue)
		}
	}
}

// usedAtLeast collects used entries from q until it has n or ten seconds
// pass: the device signals as completions happen, so the first interrupt
// may come before the last entry.
func (r *netRig) usedAtLeast(q *virtiotest.Driver, n int) []virtiotest.Used {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var used []virtiotest.Used
	for len(used) < n && time.Now().Before(deadline) {
		used = append(used, q.TakeUsed()...)
		if len(used) < n {
			time.Sleep(5 * time.Millisecond)
		}
	}
	return used
}

func (r *netRig) hostRead() []byte {
	r.t.Helper()
	buf := make([]byte, 1<<17)
	fds := []unix.PollFd{{Fd: int32(r.host), Events: unix.POLLIN}}
	_, err := unix.Poll(fds, 10000)
	require.NoError(r.t, err)
	n, err := unix.Read(r.host, buf)
	require.NoError(r.t, err)
	return buf[:n]
}

func TestTransmit(t *testing.T) {
	r := newNetRig(t, featureMrgRxbuf)
	f := frame(1500, 1)
	// Header and payload in separate buffers, as Linux sends them.
	head := r.tx.AddChain(virtiotest.Buf{Data: f[:VnetHdrSize]}, virtiotest.Buf{Data: f[VnetHdrSize:]})
	require.NoError(t, r.kicks[txQueue].Signal())
	assert.Equal(t, f, r.hostRead())
	r.waitInterrupt(txQueue)
	assert.Equal(t, []virtiotest.Used{{ID: uint32(head)}}, r.tx.TakeUsed())
	// The one notification is counted once the worker has read it (it may
	// have sent the frame before it looked).
	assert.Eventually(t, func() bool { return r.dev.Stats().TxKicks == 1 }, 10*time.Second, 5*time.Millisecond)
	assert.Equal(t, uint64(1), r.dev.Stats().TxFrames)
}

func TestTransmitDropsBadFrames(t *testing.T) {
	r := newNetRig(t, 0)
	// Shorter than a header, then longer than any frame; both are used
	// (returned to the driver) and counted, and a good one still goes.
	r.tx.AddChain(virtiotest.Buf{Data: make([]byte, 5)})
	r.tx.AddChain(virtiotest.Buf{Data: make([]byte, MaxFrame)}, virtiotest.Buf{Data: make([]byte, 1)})
	good := frame(64, 9)
	r.tx.AddChain(virtiotest.Buf{Data: good})
	require.NoError(t, r.kicks[txQueue].Signal())
	assert.Equal(t, good, r.hostRead())
	r.waitInterrupt(txQueue)
	assert.Len(t, r.usedAtLeast(r.tx, 3), 3)
	assert.Equal(t, uint64(2), r.dev.Stats().TxDropped)
	assert.Equal(t, uint64(1), r.dev.Stats().TxFrames, "the good frame")
}

func TestReceiveMergeable(t *testing.T) {
	r := newNetRig(t, featureMrgRxbuf)
	heads := []uint16{r.rx.AddChain(virtiotest.Buf{Write: 2048}), r.rx.AddChain(virtiotest.Buf{Write: 2048})}
	f := frame(3000, 3)
	_, err := unix.Write(r.host, f)
	require.NoError(t, err)
	require.NoError(t, r.kicks[rxQueue].Signal())
	r.waitInterrupt(rxQueue)
	used := r.rx.TakeUsed()
	require.Equal(t, []virtiotest.Used{{ID: uint32(heads[0]), Len: 2048}, {ID: uint32(heads[1]), Len: uint32(len(f) - 2048)}}, used)
	got := append(append([]byte{}, r.rx.Writable(heads[0])[0]...), r.rx.Writable(heads[1])[0][:len(f)-2048]...)
	assert.Equal(t, uint16(2), binary.LittleEndian.Uint16(got[numBuffersOffset:]), "num_buffers")
	assert.Equal(t, f[VnetHdrSize:], got[VnetHdrSize:])
}

// TestReceiveBackpressure: a frame that arrives before the guest has
// buffers waits (the tap is not drained meanwhile) and is delivered, whole,
// once buffers come.
func TestReceiveBackpressure(t *testing.T) {
	r := newNetRig(t, featureMrgRxbuf)
	first, second := frame(1000, 5), frame(200, 6)
	for _, f := range [][]byte{first, second} {
		_, err := unix.Write(r.host, f)
		require.NoError(t, err)
	}
	// Half the buffer the first frame needs: nothing may be delivered.
	r.rx.AddChain(virtiotest.Buf{Write: 500})
	require.NoError(t, r.kicks[rxQueue].Signal())
	time.Sleep(100 * time.Millisecond)
	assert.Empty(t, r.rx.TakeUsed())
	// The device holds the first frame and has not read the second.
	queued, err := unix.IoctlGetInt(r.port.fd, unix.SIOCINQ)
	require.NoError(t, err)
	assert.Equal(t, len(second), queued, "the second frame waits in the port")

	r.rx.AddChain(virtiotest.Buf{Write: 2048})
	r.rx.AddChain(virtiotest.Buf{Write: 2048})
	require.NoError(t, r.kicks[rxQueue].Signal())
	r.waitInterrupt(rxQueue)
	used := r.usedAtLeast(r.rx, 3)
	require.Len(t, used, 3)
	assert.Equal(t, []uint32{500, uint32(len(first) - 500), uint32(len(second))}, []uint32{used[0].Len, used[1].Len, used[2].Len})
	assert.Zero(t, r.dev.Stats().RxDropped)
}

func TestReceiveWithoutMergeableDropsTooLargeFrames(t *testing.T) {
	r := newNetRig(t, 0)
	small := r.rx.AddChain(virtiotest.Buf{Write: 100})
	big := r.rx.AddChain(virtiotest.Buf{Write: VnetHdrSize}, virtiotest.Buf{Write: 4096})
	for _, f := range [][]byte{frame(500, 1), frame(500, 2)} {
		_, err := unix.Write(r.host, f)
		require.NoError(t, err)
	}
	require.NoError(t, r.kicks[rxQueue].Signal())
	r.waitInterrupt(rxQueue)
	used := r.usedAtLeast(r.rx, 2)
	require.Equal(t, []virtiotest.Used{{ID: uint32(small)}, {ID: uint32(big), Len: VnetHdrSize + 500}}, used)
	assert.Equal(t, uint64(1), r.dev.Stats().RxDropped)
	assert.Equal(t, uint64(1), r.dev.Stats().RxFrames, "the frame that fit")
	w := r.rx.Writable(big)
	assert.Equal(t, uint16(1), binary.LittleEndian.Uint16(w[0][numBuffersOffset:]))
	assert.True(t, bytes.Equal(frame(500, 2)[VnetHdrSize:], w[1][:500]))
}

func TestReceiveChainWithoutRoomForHeaderIsADriverError(t *testing.T) {
	r := newNetRig(t, featureMrgRxbuf)
	r.rx.AddChain(virtiotest.Buf{Write: 4})
	_, err := unix.Write(r.host, frame(10, 0))
	require.NoError(t, err)
	require.NoError(t, r.kicks[rxQueue].Signal())
	select {
	case err := <-r.failures:
		assert.Contains(t, err.Error(), "no room for the 12-byte header")
	case <-time.After(10 * time.Second):
		t.Fatal("no driver error reported")
	}
}

func TestOffloadsFollowFeatures(t *testing.T) {
	r := newNetRig(t, featureGuestCsum|featureGuestTSO4|featureMrgRxbuf)
	r.dev.Reset()
	r.port.mu.Lock()
	defer r.port.mu.Unlock()
	assert.Equal(t, [][4]bool{{true, true, false, false}, {false, false, false, false}}, r.port.offloads,
		"set at activation from the accepted features, cleared at reset")
}

func TestConfig(t *testing.T) {
	mac := []byte{0x52, 0x54, 0, 1, 2, 3}
	d, err := New(Config{Port: &fakePort{}, MAC: mac})
	require.NoError(t, err)
	b := make([]byte, configSize)
	d.ReadConfig(0, b)
	assert.Equal(t, []byte{0x52, 0x54, 0, 1, 2, 3, 1, 0, 1, 0}, b, "mac, status LINK_UP, one queue pair")
	random := RandomMAC()
	assert.Equal(t, byte(0x02), random[0]&0x03, "unicast, locally administered")
}

// TestReceiveWaitsForEnoughBuffers: a frame larger than the buffers left
// must not keep the device retrying them (a livelock seen nested: the
// guest never got the interrupt for the frames before it, so it never
// refilled). The earlier frame is signalled; the large one follows the
// refill.
func TestReceiveWaitsForEnoughBuffers(t *testing.T) {
	r := newNetRig(t, featureMrgRxbuf)
	r.rx.AddChain(virtiotest.Buf{Write: 2048})
	r.rx.AddChain(virtiotest.Buf{Write: 2048})
	small, large := frame(100, 1), frame(3000, 2)
	for _, f := range [][]byte{small, large} {
		_, err := unix.Write(r.host, f)
		require.NoError(t, err)
	}
	require.NoError(t, r.kicks[rxQueue].Signal())
	r.waitInterrupt(rxQueue)
	used := r.rx.TakeUsed()
	require.Len(t, used, 1, "only the small frame fits so far")
	assert.Equal(t, uint32(len(small)), used[0].Len)

	r.rx.AddChain(virtiotest.Buf{Write: 2048})
	require.NoError(t, r.kicks[rxQueue].Signal())
	r.waitInterrupt(rxQueue)
	used = r.rx.TakeUsed()
	require.Len(t, used, 2, "the large frame in the two buffers now there")
	assert.Equal(t, uint32(len(large)), used[0].Len+used[1].Len)
}

// TestReceiveDirect: in a bulk stream (after a large frame), with buffers
// for the largest frame available, a frame is read straight into them; the
// chains it did not need are given back and used for the next one.
func TestReceiveDirect(t *testing.T) {
	r := newNetRig(t, featureMrgRxbuf)
	var heads []uint16
	for range 60 { // 120 KiB: room for a 64 KiB frame after the first
		heads = append(heads, r.rx.AddChain(virtiotest.Buf{Write: 2048}))
	}
	large, first, second := frame(20000, 6), frame(3000, 7), frame(100, 8)
	for _, f := range [][]byte{large, first, second} {
		_, err := unix.Write(r.host, f)
		require.NoError(t, err)
	}
	require.NoError(t, r.kicks[rxQueue].Signal())
	r.waitInterrupt(rxQueue)
	const largeChains = 10 // 20012 bytes in 2 KiB buffers
	used := r.usedAtLeast(r.rx, largeChains+3)
	require.Len(t, used, largeChains+3)
	assert.Equal(t, []virtiotest.Used{
		{ID: uint32(heads[largeChains]), Len: 2048}, {ID: uint32(heads[largeChains+1]), Len: uint32(len(first) - 2048)},
		{ID: uint32(heads[largeChains+2]), Len: uint32(len(second))},
	}, used[largeChains:], "each frame goes to the first chains the one before did not need")
	assert.Equal(t, uint64(1), r.dev.Stats().RxDirect, "the frame after the large one was read straight in")
	got := append(append([]byte{}, r.rx.Writable(heads[largeChains])[0]...), r.rx.Writable(heads[largeChains+1])[0][:len(first)-2048]...)
	assert.Equal(t, uint16(2), binary.LittleEndian.Uint16(got[numBuffersOffset:]), "num_buffers")
	assert.Equal(t, first[VnetHdrSize:], got[VnetHdrSize:])
	one := r.rx.Writable(heads[largeChains+2])[0]
	assert.Equal(t, uint16(1), binary.LittleEndian.Uint16(one[numBuffersOffset:]))
	assert.Equal(t, second[VnetHdrSize:], one[VnetHdrSize:len(second)])
}

// TestReceiveStream streams frames of every size through the device to a
// driver that behaves like Linux's: it refills what the device used and
// notifies only when the device asked (avail_event), and the device
// interrupts only when the driver asked (used_event). A notification asked
// for too late, or an interrupt not sent, stalls the stream.
func TestReceiveStream(t *testing.T) {
	for _, bufSize := range []uint32{1536, 4096} {
		t.Run(fmt.Sprint(bufSize), func(t *testing.T) {
			r := newNetRig(t, featureMrgRxbuf)
			const chains, frames = 200, 300
			for range chains {
				r.rx.AddChain(virtiotest.Buf{Write: bufSize})
			}
			require.NoError(t, r.kicks[rxQueue].Signal())

			rng := rand.New(rand.NewPCG(1, 2))
			var sent [][]byte
			for i := range frames {
				n := 50 + rng.IntN(65000)
				if i%3 == 0 {
					n = 50 + rng.IntN(1500)
				}
				sent = append(sent, frame(n, byte(i)))
			}
			go func() {
				for _, f := range sent {
					for {
						_, err := unix.Write(r.host, f)
						if errors.Is(err, unix.EAGAIN) {
							time.Sleep(time.Millisecond)
							continue
						}
						if err != nil {
							return
						}
						break
					}
				}
			}()

			// The driver: on each interrupt, reassemble frames from the
			// used chains, then give the chains back.
			var got []byte
			var frameBufs int
			received := 0
			for received < frames {
				// Like Linux's virtqueue_enable_cb and virtqueue_poll:
				// TakeUsed asks for an interrupt at the next used entry,
				// and the driver sleeps only if nothing came meanwhile.
				used := r.rx.TakeUsed()
				if len(used) == 0 {
					select {
					case <-r.interrupts:
					case err := <-r.failures:
						t.Fatalf("device failed: %v", err)
					case <-time.After(10 * time.Second):
						t.Fatalf("stalled after %d of %d frames", received, frames)
					}
					continue
				}
				old := r.rx.AvailIdx()
				for _, u := range used {
					buf := r.rx.Writable(uint16(u.ID))[0][:u.Len]
					if frameBufs == 0 {
						frameBufs = int(binary.LittleEndian.Uint16(buf[numBuffersOffset:]))
						require.Positive(t, frameBufs)
						got = append(got[:0], buf...)
					} else {
						got = append(got, buf...)
					}
					frameBufs--
					if frameBufs == 0 {
						want := sent[received]
						require.Equal(t, len(want), len(got), "frame %d", received)
						require.True(t, bytes.Equal(want[VnetHdrSize:], got[VnetHdrSize:]), "frame %d", received)
						received++
					}
					r.rx.Publish(uint16(u.ID)) // the same buffer, again
				}
				if r.rx.NeedsKick(old) {
					require.NoError(t, r.kicks[rxQueue].Signal())
				}
			}
			assert.Zero(t, r.dev.Stats().RxDropped)
			if bufSize == 4096 {
				assert.Positive(t, r.dev.Stats().RxDirect, "the stream used both receive paths")
			}
		})
	}
}

// TestReceiveCoalescesInterrupts: a burst of frames is signalled every
// rxCoalesceFrames frames and at its end, and at every frame once the
// guest's buffers run low.
func TestReceiveCoalescesInterrupts(t *testing.T) {
	const frames = 40
	seq := func(from, to uint16) []uint16 {
		var s []uint16
		for i := from; i <= to; i++ {
			s = append(s, i)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		buffers int
		want    []uint16 // used index at each interrupt
	}{
		{"plenty of buffers", 200, []uint16{16, 32, 40}},
		// Below a quarter of the queue (64) left from the 7th frame on.
		{"buffers running low", 70, seq(7, frames)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newNetRigEventIdx(t, 0, false)
			// With no buffers yet, the device takes the first frame, holds
			// it and stops reading the port; the rest wait there, and all
			// arrive as one burst once there are buffers.
			_, err := unix.Write(r.host, frame(100, 0))
			require.NoError(t, err)
			assert.Eventually(t, func() bool {
				n, err := unix.IoctlGetInt(r.port.fd, unix.SIOCINQ)
				return err == nil && n == 0
			}, 10*time.Second, time.Millisecond, "the device takes the first frame")
			time.Sleep(50 * time.Millisecond) // and goes back to waiting
			for i := 1; i < frames; i++ {
				_, err := unix.Write(r.host, frame(100, byte(i)))
				require.NoError(t, err)
			}
			for range tc.buffers {
				r.rx.AddChain(virtiotest.Buf{Write: 2048})
			}
			require.NoError(t, r.kicks[rxQueue].Signal())
			used := r.usedAtLeast(r.rx, frames)
			require.Len(t, used, frames)
			for i, u := range used {
				require.Equal(t, uint32(VnetHdrSize+100), u.Len, "frame %d", i)
			}
			assert.Eventually(t, func() bool {
				r.mu.Lock()
				defer r.mu.Unlock()
				return len(r.rxSignalled) >= len(tc.want)
			}, 10*time.Second, 5*time.Millisecond)
			time.Sleep(20 * time.Millisecond) // no more may follow
			r.mu.Lock()
			defer r.mu.Unlock()
			assert.Equal(t, tc.want, r.rxSignalled)
		})
	}
}

// TestTransmitBurstsContinueWithoutKicks: more chains than one burst
// (burstFrames) all go out on one notification: between bursts the worker
// looks at the other direction and comes back by itself.
func TestTransmitBurstsContinueWithoutKicks(t *testing.T) {
	r := newNetRig(t, 0)
	const frames = 3*burstFrames + 5
	for i := range frames {
		r.tx.AddChain(virtiotest.Buf{Data: frame(64, byte(i))})
	}
	require.NoError(t, r.kicks[txQueue].Signal())
	for i := range frames {
		require.Equal(t, frame(64, byte(i)), r.hostRead(), "frame %d", i)
	}
	assert.Len(t, r.usedAtLeast(r.tx, frames), frames)
	assert.Equal(t, uint64(1), r.dev.Stats().TxKicks)
}
