package serial

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/internal/devtest"
)

// in and out are one-byte port accesses, as Linux's serial_in/serial_out.
func in(u *UART, off uint64) byte {
	b := []byte{0}
	u.Read(off, b)
	return b[0]
}

func out(u *UART, off uint64, v byte) { u.Write(off, []byte{v}) }

func newTestUART(t *testing.T, w io.Writer) (*UART, *devtest.IRQ) {
	t.Helper()
	irq := &devtest.IRQ{}
	logger, _ := devtest.Logger()
	u := New(Config{IRQ: irq, Output: w, Logger: logger})
	t.Cleanup(func() { _ = u.Close() })
	return u, irq
}

// TestLinuxProbe replays the register accesses of Linux's 8250 autoconfig(),
// autoconfig_16550a() and the THRE test in serial8250_do_startup(), and
// checks the conclusions the driver draws: a 16550A with working THRE.
func TestLinuxProbe(t *testing.T) {
	u, _ := newTestUART(t, nil)

	// Scratch register.
	out(u, offSCR, 0xa5)
	assert.Equal(t, byte(0xa5), in(u, offSCR), "scratch register")

	// IER must hold exactly the written low nibble.
	saved := in(u, offIER)
	out(u, offIER, 0)
	got := in(u, offIER) & 0x0f
	assert.Equal(t, byte(0), got, "IER after writing 0: got %#x, want 0", got)
	out(u, offIER, 0x0f)
	got = in(u, offIER) & 0x0f
	assert.Equal(t, byte(0x0f), got, "IER after writing 0x0f: got %#x, want 0x0f", got)
	out(u, offIER, saved)

	// Loopback: MCR = LOOP|OUT2|RTS must read back as DCD|CTS in MSR.
	saveMCR, saveLCR := in(u, offMCR), in(u, offLCR)
	out(u, offMCR, mcrLoop|0x0a)
	got = in(u, offMSR) & 0xf0
	assert.Equal(t, byte(0x90), got, "loopback MSR: got %#x, want 0x90", got)
	out(u, offMCR, saveMCR)

	// FIFO detection: IIR bits 6-7 after enabling the FIFO.
	out(u, offLCR, 0xbf)
	out(u, 2, 0) // EFR on enhanced parts, FCR here
	out(u, offLCR, 0)
	out(u, offIIR, fcrEnable)
	got = in(u, offIIR) >> 6
	require.Equal(t, byte(3), got, "IIR>>6 after FIFO enable: got %d, want 3 (16550A)", got)

	// No EFR behind LCR=0x80 or LCR=0xbf (the register reads non-zero).
	out(u, offLCR, 0x80)
	assert.NotZero(t, in(u, 2), "EFR probe with LCR=0x80: got 0, want a non-EFR value")
	out(u, offLCR, 0xbf)
	assert.NotZero(t, in(u, 2), "EFR probe with LCR=0xbf: got 0, want a non-EFR value")

	// Not a National Semiconductor SuperIO: EXCR1 (offset 2 with LCR=0xe0)
	// does not mirror MCR's LOOP bit.
	out(u, offLCR, 0)
	status1 := in(u, offMCR)
	out(u, offLCR, 0xe0)
	status2 := in(u, 2)
	if (status2^status1)&mcrLoop == 0 {
		out(u, offLCR, 0)
		out(u, offMCR, status1^mcrLoop)
		out(u, offLCR, 0xe0)
		status2 = in(u, 2)
		out(u, offLCR, 0)
		out(u, offMCR, status1)
		assert.Zero(t, (status2^status1)&mcrLoop, "EXCR1 followed MCR LOOP: want no NS SuperIO")
	}

	// Not a 16750: IIR bit 5 stays clear with the 64-byte FIFO bit written,
	// with and without DLAB.
	out(u, offLCR, 0)
	out(u, offIIR, fcrEnable|0x20)
	s1 := in(u, offIIR) & 0xe0
	out(u, offIIR, fcrEnable)
	out(u, offLCR, 0x80)
	out(u, offIIR, fcrEnable|0x20)
	s2 := in(u, offIIR) & 0xe0
	out(u, offIIR, fcrEnable)
	out(u, offLCR, 0)
	assert.Equal(t, byte(0xc0), s1, "IIR & 0xe0 without DLAB: got %#x, want 0xc0", s1)
	assert.Equal(t, byte(0xc0), s2, "IIR & 0xe0 with DLAB: got %#x, want 0xc0", s2)

	// Not an XScale: IER bit 6 does not stick.
	ierSave := in(u, offIER)
	out(u, offIER, ierSave&^0x40)
	out(u, offIER, ierSave|0x40)
	assert.Zero(t, in(u, offIER)&0x40, "IER bit 6 stuck: want a 16550A")
	out(u, offIER, ierSave)

	// Restore and reset as autoconfig() does.
	out(u, offLCR, saveLCR)
	out(u, offMCR, saveMCR)
	out(u, offIIR, fcrEnable)
	out(u, offIIR, fcrEnable|fcrRXReset|fcrTXReset)
	out(u, offIIR, 0)
	in(u, offRBR)
	out(u, offIER, 0)

	// serial8250_do_startup: THRE must be re-asserted when ETBEI is
	// toggled, or the driver falls back to polling (UART_BUG_THRE).
	out(u, offIER, ierTHRE)
	iir1 := in(u, offIIR)
	out(u, offIER, 0)
	out(u, offIER, ierTHRE)
	iir := in(u, offIIR)
	out(u, offIER, 0)
	assert.Zero(t, iir1&iirNone, "first IIR: got %#x, want THRE pending", iir1)
	assert.Zero(t, iir&iirNone, "second IIR: got %#x, want THRE re-asserted", iir)
	assert.Zero(t, u.Stats().BadAccesses)
}

func TestOutput(t *testing.T) {
	var buf devtest.Buffer
	u, _ := newTestUART(t, &buf)
	const msg = "Linux version 6.1.0 (govmm)\r\n"
	for i := range len(msg) {
		// Console write: wait for THRE, then write THR.
		require.NotZero(t, in(u, offLSR)&lsrTHRE, "THRE before byte %d", i)
		out(u, offRBR, msg[i])
	}
	require.NoError(t, u.Close())
	assert.Equal(t, msg, buf.String(), "got %q, want %q", buf.String(), msg)
	st := u.Stats()
	assert.Equal(t, uint64(len(msg)), st.TXBytes, "TXBytes: got %d, want %d", st.TXBytes, len(msg))
	assert.Zero(t, st.TXDropped, "TXDropped: got %d, want 0", st.TXDropped)

	// After Close, output is dropped and counted; Close is idempotent.
	out(u, offRBR, 'x')
	require.NoError(t, u.Close())
	assert.Equal(t, msg, buf.String())
	assert.Equal(t, uint64(1), u.Stats().TXDropped)
}

func TestTHREInterrupt(t *testing.T) {
	u, irq := newTestUART(t, nil)
	out(u, offIIR, fcrEnable)
	assert.False(t, irq.Level(), "line before IER: got high, want low")
	assert.Equal(t, byte(0xc1), in(u, offIIR), "IIR idle")

	out(u, offIER, ierTHRE)
	assert.True(t, irq.Level(), "line after IER enable: got low, want high")
	got := in(u, offIIR)
	assert.Equal(t, byte(0xc2), got, "IIR: got %#x, want 0xc2 (THRE)", got)
	assert.False(t, irq.Level(), "line after IIR read: got high, want low")
	got = in(u, offIIR)
	assert.Equal(t, byte(0xc1), got, "IIR after clearing: got %#x, want 0xc1", got)

	// Writing IER again with ETBEI still set does not re-arm.
	out(u, offIER, ierTHRE|ierRDA)
	assert.False(t, irq.Level(), "line after rewriting IER: got high, want low")

	// A THR write re-arms it (the byte leaves at once).
	out(u, offRBR, 'a')
	assert.True(t, irq.Level(), "line after THR write: got low, want high")
	assert.Equal(t, byte(0xc2), in(u, offIIR))

	// Disabling ETBEI drops a pending THRE.
	out(u, offRBR, 'b')
	out(u, offIER, 0)
	assert.False(t, irq.Level(), "line after IER=0: got high, want low")
	assert.Equal(t, 3, irq.Raises(), "edges: got %d, want 3", irq.Raises())
}

func TestReceive(t *testing.T) {
	u, irq := newTestUART(t, nil)
	out(u, offIIR, fcrEnable)
	out(u, offIER, ierRDA)
	assert.False(t, irq.Level())
	assert.Zero(t, in(u, offLSR)&lsrDR, "DR with empty FIFO")

	n := u.Enqueue([]byte("hi"))
	require.Equal(t, 2, n, "Enqueue: got %d, want 2", n)
	assert.True(t, irq.Level(), "line after input: got low, want high")
	assert.Equal(t, byte(0xc4), in(u, offIIR), "IIR: want RDA")

	var got []byte
	for in(u, offLSR)&lsrDR != 0 {
		got = append(got, in(u, offRBR))
	}
	assert.Equal(t, "hi", string(got), "got %q, want %q", got, "hi")
	assert.False(t, irq.Level(), "line after draining: got high, want low")
	assert.Equal(t, byte(0xc1), in(u, offIIR))
	assert.Equal(t, byte('i'), in(u, offRBR), "RBR when empty: got last byte")
	assert.Equal(t, uint64(2), u.Stats().RXBytes)
}

func TestInterruptPriority(t *testing.T) {
	u, _ := newTestUART(t, nil)
	out(u, offIER, ierMask)
	// Arm all four sources: MS (loopback toggles DCD), THRE (IER enable),
	// RDA and RLS (loopback overrun).
	out(u, offMCR, mcrLoop|mcrOUT2)
	for i := range RXFIFOSize + 1 {
		out(u, offRBR, byte(i))
	}
	tests := []struct {
		name  string
		iir   byte
		clear func()
	}{
		{name: "line status", iir: iirRLS, clear: func() { in(u, offLSR) }},
		{name: "received data", iir: iirRDA, clear: func() { out(u, offIIR, fcrRXReset) }},
		{name: "THR empty", iir: iirTHRE, clear: func() {}}, // the IIR read clears it
		{name: "modem status", iir: iirMS, clear: func() { in(u, offMSR) }},
		{name: "none", iir: iirNone, clear: func() {}},
	}
	for _, tt := range tests {
		got := in(u, offIIR)
		assert.Equal(t, tt.iir, got, "%s: got IIR %#x, want %#x", tt.name, got, tt.iir)
		tt.clear()
	}
}

func TestLoopback(t *testing.T) {
	tests := []struct {
		mcr     byte
		wantMSR byte // high nibble
	}{
		{mcr: mcrLoop, wantMSR: 0},
		{mcr: mcrLoop | mcrRTS, wantMSR: msrCTS},
		{mcr: mcrLoop | mcrDTR, wantMSR: msrDSR},
		{mcr: mcrLoop | mcrOUT1, wantMSR: msrRI},
		{mcr: mcrLoop | mcrOUT2, wantMSR: msrDCD},
		{mcr: mcrLoop | 0x0f, wantMSR: 0xf0},
		{mcr: 0, wantMSR: msrIdle},
		{mcr: mcrDTR | mcrRTS | mcrOUT2, wantMSR: msrIdle},
	}
	for _, tt := range tests {
		u, _ := newTestUART(t, nil)
		out(u, offMCR, tt.mcr)
		got := in(u, offMSR) & 0xf0
		assert.Equal(t, tt.wantMSR, got, "MCR %#x: got MSR %#x, want %#x", tt.mcr, got, tt.wantMSR)
	}

	var buf devtest.Buffer
	u, _ := newTestUART(t, &buf)
	out(u, offMCR, mcrLoop)
	out(u, offRBR, 'z')
	assert.NotZero(t, in(u, offLSR)&lsrDR, "DR after loopback write")
	assert.Equal(t, byte('z'), in(u, offRBR), "looped byte")
	out(u, offMCR, 0)
	require.NoError(t, u.Close())
	assert.Empty(t, buf.String(), "loopback bytes must not reach the output")

	// Deltas: leaving loopback with RI set gives a trailing edge and flips
	// DCD/DSR/CTS from low to high.
	u, _ = newTestUART(t, nil)
	out(u, offMCR, mcrLoop|mcrOUT1)
	in(u, offMSR)
	out(u, offMCR, 0)
	got := in(u, offMSR)
	want := byte(msrIdle | msrTERI | msrDDCD | msrDDSR | msrDCTS)
	assert.Equal(t, want, got, "MSR after leaving loopback: got %#x, want %#x", got, want)
	assert.Equal(t, byte(msrIdle), in(u, offMSR), "deltas clear on read")
}

func TestDivisorLatch(t *testing.T) {
	var buf devtest.Buffer
	u, _ := newTestUART(t, &buf)
	assert.Equal(t, byte(resetLCR), in(u, offLCR))
	out(u, offLCR, lcrDLAB|0x03)
	assert.Equal(t, byte(resetDLL), in(u, offRBR), "DLL reset value")
	out(u, offRBR, 0x01) // 115200 baud
	out(u, offIER, 0x00)
	assert.Equal(t, byte(0x01), in(u, offRBR), "DLL")
	assert.Equal(t, byte(0x00), in(u, offIER), "DLM")
	out(u, offIER, 0xab)
	out(u, offLCR, 0x03)
	assert.Equal(t, byte(0), in(u, offIER), "IER untouched by DLM writes")
	out(u, offRBR, 'k')
	require.NoError(t, u.Close())
	assert.Equal(t, "k", buf.String(), "only the DLAB=0 write is transmitted")
}

func TestWideAccess(t *testing.T) {
	u, _ := newTestUART(t, nil)
	u.Write(offLCR, []byte{0x03, 0x0b}) // LCR, MCR
	data := make([]byte, 2)
	u.Read(offLCR, data)
	assert.Equal(t, []byte{0x03, 0x0b}, data, "got %#v, want LCR, MCR", data)

	data = make([]byte, 4)
	u.Read(6, data) // MSR, SCR, then two bytes past the registers
	assert.Equal(t, []byte{0xff, 0xff}, data[2:])
	assert.Equal(t, uint64(2), u.Stats().BadAccesses)
}

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct{ release chan struct{} }

func (w *blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

func TestSlowWriterDoesNotBlock(t *testing.T) {
	w := &blockingWriter{release: make(chan struct{})}
	irq := &devtest.IRQ{}
	u := New(Config{IRQ: irq, Output: w, OutputBuffer: 128})

	const writes = 10000
	start := time.Now()
	for range writes {
		out(u, offRBR, 'x')
	}
	elapsed := time.Since(start)
	assert.Less(t, elapsed, 2*time.Second, "10000 THR writes took %v", elapsed)

	// A bounded deadline on shutdown returns while the writer is stuck.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err := u.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded, "got %v, want deadline exceeded", err)

	close(w.release)
	require.NoError(t, u.Close())
	st := u.Stats()
	assert.Positive(t, st.TXDropped, "got no drops, want some")
	assert.Equal(t, uint64(writes), st.TXBytes+st.TXDropped, "sent+dropped: got %d, want %d", st.TXBytes+st.TXDropped, writes)
	assert.LessOrEqual(t, st.TXBytes, uint64(128+maxChunk), "got %d bytes through a 128-byte queue", st.TXBytes)
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

func TestWriterErrorsCounted(t *testing.T) {
	u, _ := newTestUART(t, failingWriter{})
	for _, c := range []byte("abc") {
		out(u, offRBR, c)
	}
	require.NoError(t, u.Close())
	st := u.Stats()
	assert.Positive(t, st.TXWriteErrors, "write errors: got 0")
	assert.Equal(t, uint64(3), st.TXDropped, "dropped: got %d, want 3", st.TXDropped)
	assert.Zero(t, st.TXBytes)
}

func TestEnqueueBackpressure(t *testing.T) {
	u, _ := newTestUART(t, nil)
	input := bytes.Repeat([]byte("0123456789"), 20) // 200 bytes

	n := u.Enqueue(input)
	require.Equal(t, RXFIFOSize, n, "Enqueue: got %d, want %d", n, RXFIFOSize)
	assert.Zero(t, u.Enqueue(input[n:]), "Enqueue into a full FIFO")

	done := make(chan error, 1)
	go func() {
		_, err := u.EnqueueWait(context.Background(), input[n:])
		done <- err
	}()

	var got []byte
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(input) && time.Now().Before(deadline) {
		if in(u, offLSR)&lsrDR != 0 {
			got = append(got, in(u, offRBR))
		} else {
			time.Sleep(time.Millisecond)
		}
	}
	assert.Equal(t, string(input), string(got), "received bytes differ")
	require.NoError(t, <-done)

	// A cancelled context and a closed UART both end the wait.
	u.Enqueue(input)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := u.EnqueueWait(ctx, input)
	assert.Zero(t, n)
	require.ErrorIs(t, err, context.Canceled)

	go func() {
		_, err := u.EnqueueWait(context.Background(), input)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, u.Close())
	require.ErrorIs(t, <-done, ErrClosed)
	assert.Zero(t, u.Enqueue([]byte("x")), "Enqueue after Close")
}

func TestFIFOResetDiscardsInput(t *testing.T) {
	u, irq := newTestUART(t, nil)
	out(u, offIER, ierRDA)
	u.Enqueue([]byte("lost"))
	assert.True(t, irq.Level())
	out(u, offIIR, fcrEnable|fcrRXReset)
	assert.False(t, irq.Level(), "line after RX FIFO reset: got high, want low")
	assert.Zero(t, in(u, offLSR)&lsrDR, "DR after RX FIFO reset")
}

func TestGarbageNeverPanics(t *testing.T) {
	u, _ := newTestUART(t, &devtest.Buffer{})
	r := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 2, 3, 4, 8}
	for range 20000 {
		data := make([]byte, sizes[r.IntN(len(sizes))])
		for i := range data {
			data[i] = byte(r.UintN(256))
		}
		off := r.Uint64N(16)
		if r.IntN(50) == 0 {
			off = r.Uint64()
		}
		if r.IntN(2) == 0 {
			u.Write(off, data)
		} else {
			u.Read(off, data)
		}
		if r.IntN(100) == 0 {
			u.Enqueue([]byte{byte(r.UintN(256))})
		}
	}
	// Every register, every value.
	for off := range uint64(numRegs) {
		for v := range 256 {
			out(u, off, byte(v))
			in(u, off)
		}
	}
	// Still a working UART.
	out(u, offLCR, 0x03)
	out(u, offMCR, 0)
	assert.Equal(t, byte(lsrTHRE|lsrTEMT), in(u, offLSR)&(lsrTHRE|lsrTEMT))
}

func TestConcurrentAccess(t *testing.T) {
	var buf devtest.Buffer
	u, _ := newTestUART(t, &buf)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = u.EnqueueWait(ctx, bytes.Repeat([]byte("in"), 500))
	}()
	stop := make(chan struct{})
	vcpus := make(chan struct{}, 4)
	for w := range 4 {
		go func() {
			defer func() { vcpus <- struct{}{} }()
			r := rand.New(rand.NewPCG(uint64(w), 0))
			for {
				select {
				case <-stop:
					return
				default:
				}
				off := r.Uint64N(numRegs)
				if off == offLCR || off == offMCR {
					continue // keep DLAB and loopback off so bytes flow
				}
				if r.IntN(2) == 0 {
					out(u, off, byte(r.UintN(256)))
				} else {
					in(u, off)
				}
				_ = u.Stats()
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	for range 4 {
		<-vcpus
	}
	require.NoError(t, u.Close())
	<-done
	assert.Positive(t, u.Stats().TXBytes, "no output reached the writer")
}
