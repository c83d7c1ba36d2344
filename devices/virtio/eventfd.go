package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// EventFD is a Linux eventfd: a counter one side signals and the other
// waits on. The transport gives each queue one: KVM signals it directly
// when the guest writes the queue's notify address (ioeventfd), and the
// transport signals it when such a write reaches user space instead.
type EventFD struct{ fd int }

// NewEventFD returns a non-blocking eventfd.
func NewEventFD() (*EventFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	return &EventFD{fd: fd}, nil
}

// FD is the descriptor, for KVM_IOEVENTFD and KVM_IRQFD.
func (e *EventFD) FD() int { return e.fd }

// Signal adds one to the counter, waking a waiter.
func (e *EventFD) Signal() error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	for {
		_, err := unix.Write(e.fd, one[:])
		switch {
		case err == nil, errors.Is(err, unix.EAGAIN): // EAGAIN: the counter is saturated, so signalled anyway
			return nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return fmt.Errorf("signal eventfd: %w", err)
		}
	}
}

// Drain resets the counter and reports whether it was signalled.
func (e *EventFD) Drain() bool { return e.DrainCount() > 0 }

// DrainCount is Drain that returns how many signals were pending: an
// eventfd's counter adds up the writes (eventfd(2)), so for a queue's
// notifier it is the number of notifications since the last drain.
func (e *EventFD) DrainCount() uint64 {
	var buf [8]byte
	for {
		n, err := unix.Read(e.fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n != len(buf) {
			return 0
		}
		return binary.NativeEndian.Uint64(buf[:])
	}
}

// Close closes the descriptor.
func (e *EventFD) Close() error {
	if err := unix.Close(e.fd); err != nil {
		return fmt.Errorf("close eventfd: %w", err)
	}
	return nil
}

// Runner runs a device's one worker goroutine, from Activate to Reset.
// The zero value is ready for use.
type Runner struct {
	mu sync.Mutex // guards w
	w  *Worker
}

// Worker is what a running worker sees of its Runner.
type Worker struct {
	stop     *EventFD
	stopping atomic.Bool
	done     chan struct{}
}

// Stopping reports whether Reset has begun. A worker checks it between
// requests and returns, so that a guest that keeps its queues full cannot
// hold a reset (or the VM's end) up.
func (w *Worker) Stopping() bool { return w.stopping.Load() }

// StopFD becomes readable when Reset begins: a worker polls it with its
// queues' kicks.
func (w *Worker) StopFD() int { return w.stop.FD() }

// Start runs run on a new goroutine.
func (r *Runner) Start(run func(w *Worker)) error {
	stop, err := NewEventFD()
	if err != nil {
		return err
	}
	w := &Worker{stop: stop, done: make(chan struct{})}
	r.mu.Lock()
	r.w = w
	r.mu.Unlock()
	go func() {
		defer close(w.done)
		run(w)
	}()
	return nil
}

// Stop tells the running worker, if any, to stop and returns once it has:
// after the request it was serving, if any, completed.
func (r *Runner) Stop() error {
	r.mu.Lock()
	w := r.w
	r.w = nil
	r.mu.Unlock()
	if w == nil {
		return nil
	}
	w.stopping.Store(true)
	err := w.stop.Signal()
	<-w.done
	return errors.Join(err, w.stop.Close())
}

// Waiter blocks a device worker until one of its queues is kicked or it is
// told to stop: one goroutine per device, woken by events, never polling
// on a timer.
type Waiter struct {
	kicks []*EventFD
	fds   []unix.PollFd
}

// NewWaiter waits on kicks, one per queue (nil entries are skipped), and on
// stopFD (Worker.StopFD).
func NewWaiter(stopFD int, kicks []*EventFD) *Waiter {
	w := &Waiter{kicks: kicks}
	w.fds = append(w.fds, unix.PollFd{Fd: int32(stopFD), Events: unix.POLLIN})
	for _, k := range kicks {
		fd := int32(-1) // poll skips negative descriptors
		if k != nil {
			fd = int32(k.fd)
		}
		w.fds = append(w.fds, unix.PollFd{Fd: fd, Events: unix.POLLIN})
	}
	return w
}

// Wait blocks until a kick or a stop. It returns the queues kicked (their
// counters drained) in kicked, reused between calls, and false once the
// worker is told to stop.
func (w *Waiter) Wait(kicked []bool) ([]bool, bool, error) {
	kicked = append(kicked[:0], make([]bool, len(w.kicks))...)
	YieldBeforeWait()
	for {
		_, err := unix.Poll(w.fds, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return kicked, false, fmt.Errorf("poll queue eventfds: %w", err)
		}
		if w.fds[0].Revents != 0 {
			return kicked, false, nil
		}
		any := false
		for i, k := range w.kicks {
			if k != nil && w.fds[i+1].Revents != 0 && k.Drain() {
				kicked[i], any = true, true
			}
		}
		if any {
			return kicked, true, nil
		}
	}
}

// YieldBeforeWait lets the Go scheduler start a new time slice for the
// calling device worker; workers call it each time before they block.
//
// A worker that only ever blocks in system calls never goes through the
// scheduler, so after 10 ms the runtime's monitor thread (sysmon) takes it
// for a long-running goroutine: it retakes its P in the next system call,
// and each retake keeps sysmon polling every 20 µs. Measured in the nested
// harness during the io benchmark, sysmon took 10-12% of a CPU; with a
// yield per wakeup, 3%. A yield is far cheaper than the wakeups it saves.
// Yielding at most once a millisecond kept sysmon as low, but its one
// benchmark run was behind this form's on every row; that decides little
// at the harness's noise, so the form the published figures were measured
// with stays.
func YieldBeforeWait() { runtime.Gosched() }
