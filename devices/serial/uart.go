package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/ratelog"
)

const (
	// RXFIFOSize is the capacity of the receive FIFO. It is larger than the
	// chip's 16 bytes: input is never lost to overrun (Enqueue pushes back
	// instead), so a deeper FIFO only means fewer wake-ups of the feeder.
	RXFIFOSize = 64

	// DefaultOutputBuffer is the default capacity, in bytes, of the queue
	// between THR and the output writer.
	DefaultOutputBuffer = 64 << 10
)

// ErrClosed is returned by EnqueueWait once the UART is closed.
var ErrClosed = errors.New("UART closed")

// Config configures a UART. The zero value is a UART with no interrupt
// line whose output is discarded.
type Config struct {
	// IRQ is the UART's interrupt line (COM1: ISA IRQ 4). nil: none.
	IRQ devices.IRQLine
	// Output receives the transmitted bytes. nil: io.Discard. It is written
	// from the UART's own goroutine, never from a vCPU.
	Output io.Writer
	// OutputBuffer is the capacity in bytes of the transmit queue in front
	// of Output; bytes that find it full are dropped. <= 0:
	// DefaultOutputBuffer.
	OutputBuffer int
	// Logger receives rate-limited reports of invalid accesses and output
	// errors. nil: slog.Default().
	Logger *slog.Logger
}

// Stats are a UART's counters.
type Stats struct {
	TXBytes       uint64 // bytes handed to the output writer
	TXDropped     uint64 // bytes dropped: queue full, writer failed, or UART closed
	TXWriteErrors uint64 // failed output Write calls
	RXBytes       uint64 // bytes accepted by Enqueue/EnqueueWait
	RXOverruns    uint64 // loopback bytes lost to a full receive FIFO (LSR.OE)
	BadAccesses   uint64 // accesses at offsets outside the 8 registers
}

// UART is an emulated 16550A. It implements devices.Device over 8 ports.
// Create it with New; it is safe for concurrent use.
type UART struct {
	irq devices.IRQLine
	out *output
	log *ratelog.Logger

	mu          sync.Mutex // guards every field below
	ier         byte
	lcr         byte
	mcr         byte
	fcr         byte
	scr         byte
	dll, dlm    byte
	lsrErr      byte // sticky LSR error bits, cleared by an LSR read
	msrDelta    byte // MSR change bits, cleared by an MSR read
	thrPending  bool // THRE interrupt armed (cleared by an IIR read that reports it)
	rx          [RXFIFOSize]byte
	rxHead      int
	rxLen       int
	lastRX      byte          // RBR's value once the FIFO is empty
	irqHigh     bool          // level last given to irq
	space       chan struct{} // closed when the FIFO frees space; nil if nobody waits
	closed      bool
	closedCh    chan struct{} // closed by Close
	rxBytes     uint64
	overruns    uint64
	badAccesses uint64
}

// New returns a UART in its reset state and starts its output goroutine;
// call Close to stop it.
func New(cfg Config) *UART {
	irq := cfg.IRQ
	if irq == nil {
		irq = devices.NoIRQ{}
	}
	w := cfg.Output
	if w == nil {
		w = io.Discard
	}
	size := cfg.OutputBuffer
	if size <= 0 {
		size = DefaultOutputBuffer
	}
	log := ratelog.New(cfg.Logger)
	return &UART{
		irq:      irq,
		out:      newOutput(w, size, log),
		log:      log,
		lcr:      resetLCR,
		dll:      resetDLL,
		closedCh: make(chan struct{}),
	}
}

// Read reads len(data) consecutive registers starting at offset, as an ISA
// bus splits a wide access into byte cycles.
func (u *UART) Read(offset uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i := range data {
		data[i] = u.readReg(offset + uint64(i))
	}
	u.updateIRQ()
}

// Write writes data to consecutive registers starting at offset.
func (u *UART) Write(offset uint64, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for i, v := range data {
		u.writeReg(offset+uint64(i), v)
	}
	u.updateIRQ()
}

func (u *UART) dlab() bool { return u.lcr&lcrDLAB != 0 }

func (u *UART) readReg(off uint64) byte {
	switch off {
	case offRBR:
		if u.dlab() {
			return u.dll
		}
		return u.pop()
	case offIER:
		if u.dlab() {
			return u.dlm
		}
		return u.ier
	case offIIR:
		id := u.pendingID()
		if id == iirTHRE {
			// Reading IIR clears a THRE interrupt it reports (Table IV).
			u.thrPending = false
		}
		if u.fcr&fcrEnable != 0 {
			id |= iirFIFOsOn
		}
		return id
	case offLCR:
		return u.lcr
	case offMCR:
		return u.mcr
	case offLSR:
		v := lsrTHRE | lsrTEMT | u.lsrErr
		if u.rxLen > 0 {
			v |= lsrDR
		}
		u.lsrErr = 0
		return v
	case offMSR:
		v := u.modemInputs() | u.msrDelta
		u.msrDelta = 0
		return v
	case offSCR:
		return u.scr
	}
	u.bad("read", off)
	return 0xff
}

func (u *UART) writeReg(off uint64, v byte) {
	switch off {
	case offRBR:
		if u.dlab() {
			u.dll = v
			return
		}
		u.transmit(v)
	case offIER:
		if u.dlab() {
			u.dlm = v
			return
		}
		old := u.ier
		u.ier = v & ierMask
		// Enabling ETBEI while THR is empty (always, here) raises THRE.
		// Linux's startup code checks that toggling ETBEI re-asserts it.
		// Like QEMU and Bochs, re-arm on the 0->1 transition only.
		if u.ier&ierTHRE != 0 && old&ierTHRE == 0 {
			u.thrPending = true
		}
	case offIIR:
		u.writeFCR(v)
	case offLCR:
		u.lcr = v
	case offMCR:
		u.writeMCR(v)
	case offLSR, offMSR:
		// Read-only status registers (LSR writes are a factory test mode).
	case offSCR:
		u.scr = v
	default:
		u.bad("write", off)
	}
}

// transmit sends one byte written to THR: to the output queue, or in
// loopback mode (§8.7, MCR bit 4) back into the receive FIFO. Either way THR
// is empty again at once, which re-arms the THRE interrupt.
func (u *UART) transmit(v byte) {
	if u.mcr&mcrLoop != 0 {
		if !u.push(v) {
			u.lsrErr |= lsrOE
			u.overruns++
		}
	} else {
		u.out.push(v)
	}
	u.thrPending = true
}

// writeFCR applies a FIFO control write (§8.4). Changing the enable bit, or
// setting a reset bit, empties the FIFO concerned; the transmit FIFO is
// always empty here.
func (u *UART) writeFCR(v byte) {
	if (v^u.fcr)&fcrEnable != 0 || v&fcrRXReset != 0 {
		u.clearRX()
	}
	u.fcr = v &^ (fcrRXReset | fcrTXReset) // reset bits are self-clearing
}

// writeMCR applies a modem control write (§8.7) and records, in MSR's low
// nibble, the changes it causes to the modem inputs (§8.8).
func (u *UART) writeMCR(v byte) {
	before := u.modemInputs()
	u.mcr = v & mcrMask
	after := u.modemInputs()
	changed := before ^ after
	if changed&msrCTS != 0 {
		u.msrDelta |= msrDCTS
	}
	if changed&msrDSR != 0 {
		u.msrDelta |= msrDDSR
	}
	if before&msrRI != 0 && after&msrRI == 0 {
		u.msrDelta |= msrTERI
	}
	if changed&msrDCD != 0 {
		u.msrDelta |= msrDDCD
	}
}

// modemInputs returns MSR's high nibble: the outputs looped back in loopback
// mode, otherwise an idle, present modem.
func (u *UART) modemInputs() byte {
	if u.mcr&mcrLoop == 0 {
		return msrIdle
	}
	var v byte
	if u.mcr&mcrRTS != 0 {
		v |= msrCTS
	}
	if u.mcr&mcrDTR != 0 {
		v |= msrDSR
	}
	if u.mcr&mcrOUT1 != 0 {
		v |= msrRI
	}
	if u.mcr&mcrOUT2 != 0 {
		v |= msrDCD
	}
	return v
}

// pendingID returns the IIR identification of the highest-priority pending
// interrupt (Table IV), without the FIFO bits.
func (u *UART) pendingID() byte {
	switch {
	case u.ier&ierRLS != 0 && u.lsrErr != 0:
		return iirRLS
	case u.ier&ierRDA != 0 && u.rxLen > 0:
		return iirRDA
	case u.ier&ierTHRE != 0 && u.thrPending:
		return iirTHRE
	case u.ier&ierMS != 0 && u.msrDelta != 0:
		return iirMS
	}
	return iirNone
}

// updateIRQ drives the line high exactly while an interrupt is pending.
func (u *UART) updateIRQ() {
	high := u.pendingID() != iirNone
	if high != u.irqHigh {
		u.irqHigh = high
		u.irq.SetLevel(high)
	}
}

func (u *UART) push(v byte) bool {
	if u.rxLen == len(u.rx) {
		return false
	}
	u.rx[(u.rxHead+u.rxLen)%len(u.rx)] = v
	u.rxLen++
	return true
}

func (u *UART) pop() byte {
	if u.rxLen == 0 {
		return u.lastRX
	}
	u.lastRX = u.rx[u.rxHead]
	u.rxHead = (u.rxHead + 1) % len(u.rx)
	u.rxLen--
	u.wakeFeeders()
	return u.lastRX
}

func (u *UART) clearRX() {
	u.rxHead, u.rxLen = 0, 0
	u.wakeFeeders()
}

// wakeFeeders wakes the EnqueueWait callers waiting for FIFO space.
func (u *UART) wakeFeeders() {
	if u.space != nil {
		close(u.space)
		u.space = nil
	}
}

func (u *UART) bad(op string, off uint64) {
	u.badAccesses++
	u.log.Warn("serial: access outside the UART registers", "op", op, "offset", off)
}

// Enqueue offers input bytes to the receive FIFO without blocking and
// returns how many it took (a prefix of b); the caller retries the rest
// later, e.g. through EnqueueWait. It raises the receive interrupt when
// enabled. After Close it takes nothing.
func (u *UART) Enqueue(b []byte) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.enqueueLocked(b)
}

func (u *UART) enqueueLocked(b []byte) int {
	if u.closed {
		return 0
	}
	n := 0
	for _, v := range b {
		if !u.push(v) {
			break
		}
		n++
	}
	u.rxBytes += uint64(n)
	u.updateIRQ()
	return n
}

// EnqueueWait feeds all of b to the receive FIFO, blocking the calling
// goroutine (never a vCPU) while the FIFO is full until the guest reads
// from it. It returns how many bytes were taken and, if not all of them,
// why: ctx's error, or ErrClosed once the UART is closed. Several feeders
// may wait at once, but their bytes then interleave.
func (u *UART) EnqueueWait(ctx context.Context, b []byte) (int, error) {
	total := 0
	for {
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			return total, fmt.Errorf("enqueue serial input: %w", ErrClosed)
		}
		total += u.enqueueLocked(b[total:])
		if total == len(b) {
			u.mu.Unlock()
			return total, nil
		}
		if u.space == nil {
			u.space = make(chan struct{})
		}
		space := u.space
		u.mu.Unlock()

		select {
		case <-space:
		case <-u.closedCh:
		case <-ctx.Done():
			return total, fmt.Errorf("enqueue serial input: %w", ctx.Err())
		}
	}
}

// Close stops input, flushes the queued output into the writer and stops
// the output goroutine. It blocks until the writer has taken every queued
// byte; use Shutdown to bound the wait. Bytes the guest writes afterwards
// are dropped and counted. Close is idempotent.
func (u *UART) Close() error {
	return u.Shutdown(context.Background())
}

// Shutdown is Close with a deadline: if ctx ends before the writer has taken
// the queued output, it returns ctx's error and leaves the output goroutine
// blocked in the writer, to exit once that Write returns (close the writer
// to make it return).
func (u *UART) Shutdown(ctx context.Context) error {
	u.mu.Lock()
	if !u.closed {
		u.closed = true
		close(u.closedCh)
		u.wakeFeeders()
	}
	u.mu.Unlock()
	return u.out.close(ctx)
}

// Stats returns a snapshot of the UART's counters.
func (u *UART) Stats() Stats {
	written, dropped, errs := u.out.stats()
	u.mu.Lock()
	defer u.mu.Unlock()
	return Stats{
		TXBytes:       written,
		TXDropped:     dropped,
		TXWriteErrors: errs,
		RXBytes:       u.rxBytes,
		RXOverruns:    u.overruns,
		BadAccesses:   u.badAccesses,
	}
}
