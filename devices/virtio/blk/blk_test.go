package blk

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/virtiotest"
)

const diskSize = 1 << 20

// rig is a block device served by its worker, driven through a fake
// driver's queue in fake guest memory.
type rig struct {
	t          *testing.T
	path       string
	disk       *Disk
	dev        *Device
	drv        *virtiotest.Driver
	kick       *virtio.EventFD
	interrupts chan int
	failures   chan error
}

func newRig(t *testing.T, readOnly bool, eventIdx bool) *rig {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.img")
	img := make([]byte, diskSize)
	for i := range img {
		img[i] = byte(i / SectorSize) // each sector holds its number
	}
	require.NoError(t, os.WriteFile(path, img, 0o644))
	disk, err := OpenDisk(path, readOnly)
	require.NoError(t, err)
	dev, err := New(Config{Disk: disk, Serial: "govmm-test-serial"})
	require.NoError(t, err)
	drv, err := virtiotest.NewDriver(QueueSize, 8<<20)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, drv.Close()) })
	drv.Cfg.EventIdx, drv.Cfg.Indirect = eventIdx, true
	q, err := virtio.NewQueue(drv.Mem, drv.Cfg)
	require.NoError(t, err)
	kick, err := virtio.NewEventFD()
	require.NoError(t, err)
	r := &rig{t: t, path: path, disk: disk, dev: dev, drv: drv, kick: kick,
		interrupts: make(chan int, 1000), failures: make(chan error, 10)}
	require.NoError(t, dev.Activate(&virtio.Activation{
		Queues:    []*virtio.Queue{q},
		Kicks:     []*virtio.EventFD{kick},
		Interrupt: func(q int) { r.interrupts <- q },
		Fail:      func(err error) { r.failures <- err },
	}))
	t.Cleanup(func() {
		dev.Reset()
		assert.NoError(t, kick.Close())
		assert.NoError(t, disk.Close())
	})
	return r
}

func header(typ uint32, sector uint64) []byte {
	h := make([]byte, headerSize)
	binary.LittleEndian.PutUint32(h, typ)
	binary.LittleEndian.PutUint64(h[8:], sector)
	return h
}

// do submits a chain, kicks the device and waits for it to be used.
func (r *rig) do(bufs ...virtiotest.Buf) (head uint16, used virtiotest.Used) {
	r.t.Helper()
	head = r.drv.AddChain(bufs...)
	require.NoError(r.t, r.kick.Signal())
	select {
	case <-r.interrupts:
	case err := <-r.failures:
		r.t.Fatalf("device failed: %v", err)
	case <-time.After(10 * time.Second):
		r.t.Fatal("no interrupt for the request")
	}
	u := r.drv.TakeUsed()
	require.Len(r.t, u, 1)
	require.Equal(r.t, uint32(head), u[0].ID)
	return head, u[0]
}

// status is the status byte of a chain whose last writable buffer is it.
func (r *rig) status(head uint16) byte {
	w := r.drv.Writable(head)
	last := w[len(w)-1]
	return last[len(last)-1]
}

func sectorBytes(n int, fill func(i int) byte) []byte {
	b := make([]byte, n*SectorSize)
	for i := range b {
		b[i] = fill(i / SectorSize)
	}
	return b
}

func TestReadWriteFlush(t *testing.T) {
	r := newRig(t, false, true)

	// IN: sectors 3-4, into two buffers, status in a third.
	head, used := r.do(virtiotest.Buf{Data: header(typeIn, 3)}, virtiotest.Buf{Write: 700}, virtiotest.Buf{Write: 324}, virtiotest.Buf{Write: 1})
	assert.Equal(t, uint32(2*SectorSize+1), used.Len)
	assert.Equal(t, byte(statusOK), r.status(head))
	w := r.drv.Writable(head)
	got := append(append([]byte{}, w[0]...), w[1]...)
	assert.Equal(t, sectorBytes(2, func(i int) byte { return byte(3 + i) }), got)

	// OUT: sector 10, header and data in one buffer.
	data := bytes.Repeat([]byte{0xee}, SectorSize)
	head, used = r.do(virtiotest.Buf{Data: append(header(typeOut, 10), data...)}, virtiotest.Buf{Write: 1})
	assert.Equal(t, uint32(1), used.Len)
	assert.Equal(t, byte(statusOK), r.status(head))

	head, _ = r.do(virtiotest.Buf{Data: header(typeFlush, 0)}, virtiotest.Buf{Write: 1})
	assert.Equal(t, byte(statusOK), r.status(head))

	img, err := os.ReadFile(r.path)
	require.NoError(t, err)
	assert.Equal(t, data, img[10*SectorSize:11*SectorSize], "the write reached the image")
	assert.Equal(t, byte(11), img[11*SectorSize], "and nothing else")
}

func TestGetID(t *testing.T) {
	r := newRig(t, false, false)
	head, used := r.do(virtiotest.Buf{Data: header(typeGetID, 0)}, virtiotest.Buf{Write: IDSize + 1})
	assert.Equal(t, uint32(IDSize+1), used.Len)
	id := r.drv.Writable(head)[0][:IDSize]
	assert.Equal(t, "govmm-test-serial", strings.TrimRight(string(id), "\x00"))
}

// TestRequestsThatFail are well-formed chains whose request cannot be
// served: they complete with an error status and the device carries on.
func TestRequestsThatFail(t *testing.T) {
	const sectors = diskSize / SectorSize
	for _, tc := range []struct {
		name     string
		readOnly bool
		bufs     []virtiotest.Buf
		want     byte
	}{
		{"read past the end", false, []virtiotest.Buf{{Data: header(typeIn, sectors-1)}, {Write: 2 * SectorSize}, {Write: 1}}, statusIOErr},
		{"read at a huge sector", false, []virtiotest.Buf{{Data: header(typeIn, 1<<62)}, {Write: SectorSize}, {Write: 1}}, statusIOErr},
		{"read at the last sector number", false, []virtiotest.Buf{{Data: header(typeIn, ^uint64(0))}, {Write: SectorSize}, {Write: 1}}, statusIOErr},
		{"read of a partial sector", false, []virtiotest.Buf{{Data: header(typeIn, 0)}, {Write: 100}, {Write: 1}}, statusIOErr},
		{"write past the end", false, []virtiotest.Buf{{Data: header(typeOut, sectors)}, {Data: make([]byte, SectorSize)}, {Write: 1}}, statusIOErr},
		{"write to a read-only disk", true, []virtiotest.Buf{{Data: header(typeOut, 0)}, {Data: make([]byte, SectorSize)}, {Write: 1}}, statusIOErr},
		{"discard on a read-only disk", true, []virtiotest.Buf{{Data: header(typeDiscard, 0)}, {Data: make([]byte, 16)}, {Write: 1}}, statusIOErr},
		{"unknown request", false, []virtiotest.Buf{{Data: header(99, 0)}, {Write: 1}}, statusUnsupp},
		{"discard segment past the end", false, []virtiotest.Buf{{Data: header(typeDiscard, 0)}, {Data: discardSeg(sectors-1, 2, 0)}, {Write: 1}}, statusIOErr},
		{"discard with a huge count", false, []virtiotest.Buf{{Data: header(typeDiscard, 0)}, {Data: discardSeg(1, 0xffffffff, 0)}, {Write: 1}}, statusIOErr},
		{"discard with the unmap flag", false, []virtiotest.Buf{{Data: header(typeDiscard, 0)}, {Data: discardSeg(1, 1, 1)}, {Write: 1}}, statusIOErr},
		{"discard of a partial segment", false, []virtiotest.Buf{{Data: header(typeDiscard, 0)}, {Data: make([]byte, 10)}, {Write: 1}}, statusUnsupp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.readOnly, false)
			before, err := os.ReadFile(r.path)
			require.NoError(t, err)
			head, _ := r.do(tc.bufs...)
			assert.Equal(t, tc.want, r.status(head))
			after, err := os.ReadFile(r.path)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(before, after), "the image must not change")
			// And the device still works.
			head, _ = r.do(virtiotest.Buf{Data: header(typeIn, 1)}, virtiotest.Buf{Write: SectorSize}, virtiotest.Buf{Write: 1})
			assert.Equal(t, byte(statusOK), r.status(head))
			assert.Equal(t, byte(1), r.drv.Writable(head)[0][0])
		})
	}
}

func discardSeg(sector uint64, count, flags uint32) []byte {
	b := make([]byte, discardSegSize)
	binary.LittleEndian.PutUint64(b, sector)
	binary.LittleEndian.PutUint32(b[8:], count)
	binary.LittleEndian.PutUint32(b[12:], flags)
	return b
}

func TestDiscardAndWriteZeroes(t *testing.T) {
	r := newRig(t, false, false)
	head, _ := r.do(virtiotest.Buf{Data: header(typeWriteZeroes, 0)},
		virtiotest.Buf{Data: append(discardSeg(4, 2, 0), discardSeg(20, 1, 1)...)}, virtiotest.Buf{Write: 1})
	assert.Equal(t, byte(statusOK), r.status(head))
	head, _ = r.do(virtiotest.Buf{Data: header(typeDiscard, 0)}, virtiotest.Buf{Data: discardSeg(30, 8, 0)}, virtiotest.Buf{Write: 1})
	assert.Equal(t, byte(statusOK), r.status(head))
	img, err := os.ReadFile(r.path)
	require.NoError(t, err)
	zero := make([]byte, SectorSize)
	assert.Equal(t, byte(3), img[3*SectorSize])
	assert.Equal(t, zero, img[4*SectorSize:5*SectorSize])
	assert.Equal(t, zero, img[5*SectorSize:6*SectorSize])
	assert.Equal(t, byte(6), img[6*SectorSize])
	assert.Equal(t, zero, img[20*SectorSize:21*SectorSize])
	assert.Len(t, img, diskSize, "the image keeps its size")
}

// TestMalformedChains are driver errors: the device asks for a reset and
// nothing reaches the image.
func TestMalformedChains(t *testing.T) {
	for _, tc := range []struct {
		name string
		bufs []virtiotest.Buf
		want string
	}{
		{"no status byte", []virtiotest.Buf{{Data: header(typeIn, 0)}}, "no writable status byte"},
		{"short header", []virtiotest.Buf{{Data: []byte{0, 0, 0, 0}}, {Write: 1}}, "header shorter than 16 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, false, false)
			r.drv.AddChain(tc.bufs...)
			require.NoError(t, r.kick.Signal())
			select {
			case err := <-r.failures:
				assert.Contains(t, err.Error(), tc.want)
			case <-time.After(10 * time.Second):
				t.Fatal("the device did not report the driver error")
			}
			assert.Empty(t, r.drv.TakeUsed())
		})
	}
}

func TestManyRequestsWrapTheRing(t *testing.T) {
	r := newRig(t, false, true)
	for i := range 3 * QueueSize {
		sector := uint64(i % (diskSize / SectorSize))
		head, _ := r.do(virtiotest.Buf{Data: header(typeIn, sector)}, virtiotest.Buf{Write: SectorSize}, virtiotest.Buf{Write: 1})
		require.Equal(t, byte(statusOK), r.status(head))
		require.Equal(t, byte(sector), r.drv.Writable(head)[0][0])
	}
}

func TestOpenDiskErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.img")
	require.NoError(t, os.WriteFile(good, make([]byte, 4096), 0o644))
	odd := filepath.Join(dir, "odd.img")
	require.NoError(t, os.WriteFile(odd, make([]byte, 1000), 0o644))
	empty := filepath.Join(dir, "empty.img")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))

	for _, tc := range []struct {
		name     string
		path     string
		readOnly bool
		want     string
	}{
		{"missing", filepath.Join(dir, "nope.img"), false, "no such file"},
		{"directory", dir, true, "not a regular file or block device"},
		{"odd size", odd, false, "size 1000 is not a multiple of 512"},
		{"empty", empty, false, "the image is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenDisk(tc.path, tc.readOnly)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Contains(t, err.Error(), tc.path)
		})
	}

	t.Run("locking", func(t *testing.T) {
		rw, err := OpenDisk(good, false)
		require.NoError(t, err)
		_, err = OpenDisk(good, false)
		assert.ErrorIs(t, err, ErrLocked, "a second writer")
		_, err = OpenDisk(good, true)
		assert.ErrorIs(t, err, ErrLocked, "a reader beside a writer")
		require.NoError(t, rw.Close())

		ro1, err := OpenDisk(good, true)
		require.NoError(t, err)
		ro2, err := OpenDisk(good, true)
		require.NoError(t, err, "readers share")
		_, err = OpenDisk(good, false)
		assert.ErrorIs(t, err, ErrLocked, "a writer beside readers")
		require.NoError(t, ro1.Close())
		require.NoError(t, ro2.Close())
	})

	t.Run("read-only image asked read-write", func(t *testing.T) {
		for _, err := range []error{unix.EROFS, unix.EACCES, unix.EPERM} {
			got := openError("/images/ro.img", false, &os.PathError{Op: "open", Path: "/images/ro.img", Err: err})
			assert.ErrorIs(t, got, err)
			assert.Contains(t, got.Error(), "add ,readonly to --disk")
			assert.NotContains(t, openError("/images/ro.img", true, err).Error(), "add ,readonly", "already read-only")
		}
		assert.NotContains(t, openError("/x", false, unix.ENOENT).Error(), "readonly")
	})
}

// TestResetWithRequestsInFlight: a reset while the queue is full returns
// once the request in hand is done; nothing is served after it.
func TestResetWithRequestsInFlight(t *testing.T) {
	r := newRig(t, false, false)
	const requests = QueueSize / 3 // three descriptors each
	for i := range requests {
		r.drv.AddChain(virtiotest.Buf{Data: header(typeIn, uint64(i%64))}, virtiotest.Buf{Write: 32 << 10}, virtiotest.Buf{Write: 1})
	}
	require.NoError(t, r.kick.Signal())
	done := make(chan struct{})
	go func() {
		r.dev.Reset()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reset did not return")
	}
	served := len(r.drv.TakeUsed())
	assert.LessOrEqual(t, served, requests)
	// The worker is gone: a new request stays unanswered.
	require.NoError(t, r.kick.Signal())
	time.Sleep(50 * time.Millisecond)
	assert.Empty(t, r.drv.TakeUsed())
}

// TestBatchServedTogether: requests made available together are served as
// one batch (on several goroutines, one interrupt), each with its own
// data, beyond one batch's worth too.
func TestBatchServedTogether(t *testing.T) {
	for _, tc := range []struct {
		name       string
		requests   int
		interrupts int
	}{
		{"one request", 1, 1},
		{"a batch", 40, 1},
		{"more than a batch", 3*batchMax + 5, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, false, false)
			heads := make([]uint16, tc.requests)
			for i := range heads {
				sector := uint64(i % 64)
				if i%2 == 0 {
					heads[i] = r.drv.AddIndirectChain(virtiotest.Buf{Data: header(typeIn, sector)}, virtiotest.Buf{Write: SectorSize}, virtiotest.Buf{Write: 1})
				} else {
					// Writes go past the sectors read, each to its own.
					data := bytes.Repeat([]byte{byte(i)}, SectorSize)
					heads[i] = r.drv.AddIndirectChain(virtiotest.Buf{Data: append(header(typeOut, uint64(1024+i)), data...)}, virtiotest.Buf{Write: 1})
				}
			}
			require.NoError(t, r.kick.Signal())
			var used []virtiotest.Used
			interrupts := 0
			for len(used) < tc.requests {
				select {
				case <-r.interrupts:
					interrupts++
					used = append(used, r.drv.TakeUsed()...)
				case err := <-r.failures:
					t.Fatalf("device failed: %v", err)
				case <-time.After(10 * time.Second):
					t.Fatalf("%d of %d requests used", len(used), tc.requests)
				}
			}
			assert.Len(t, used, tc.requests)
			// The last batch's interrupt may follow its entries.
			for interrupts < tc.interrupts {
				select {
				case <-r.interrupts:
					interrupts++
					continue
				case <-time.After(time.Second):
				}
				break
			}
			time.Sleep(20 * time.Millisecond)
			assert.Equal(t, tc.interrupts, interrupts+len(r.interrupts), "one interrupt per batch")
			img, err := os.ReadFile(r.path)
			require.NoError(t, err)
			for i, head := range heads {
				require.Equal(t, byte(statusOK), r.status(head), "request %d", i)
				if i%2 == 0 {
					assert.Equal(t, byte(i%64), r.drv.Writable(head)[0][0], "request %d read its sector", i)
				} else {
					off := (1024 + i) * SectorSize
					assert.Equal(t, bytes.Repeat([]byte{byte(i)}, SectorSize), img[off:off+SectorSize], "request %d wrote its sector", i)
				}
			}
		})
	}
}

// TestBatchWithMalformedRequest: a driver error anywhere in a batch fails
// the device; the rest of the batch does no harm.
func TestBatchWithMalformedRequest(t *testing.T) {
	r := newRig(t, false, false)
	for i := range 8 {
		if i == 5 {
			r.drv.AddIndirectChain(virtiotest.Buf{Data: header(typeIn, 0)})
			continue
		}
		r.drv.AddIndirectChain(virtiotest.Buf{Data: header(typeIn, uint64(i))}, virtiotest.Buf{Write: SectorSize}, virtiotest.Buf{Write: 1})
	}
	require.NoError(t, r.kick.Signal())
	select {
	case err := <-r.failures:
		assert.Contains(t, err.Error(), "no writable status byte")
	case <-time.After(10 * time.Second):
		t.Fatal("the device did not report the driver error")
	}
	assert.LessOrEqual(t, len(r.drv.TakeUsed()), 5, "nothing from the malformed request on")
}
