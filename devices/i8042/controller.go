package i8042

import (
	"log/slog"
	"sync"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/ratelog"
)

// OutputQueueSize is the most bytes the output buffer queue holds.
const OutputQueueSize = 16

// Config configures a Controller. Every field may be left zero.
type Config struct {
	// KbdIRQ is the keyboard interrupt line (ISA IRQ 1). nil: none.
	KbdIRQ devices.IRQLine
	// AUXIRQ is the AUX (mouse) interrupt line (ISA IRQ 12). nil: none;
	// see the package documentation for what Linux then does.
	AUXIRQ devices.IRQLine
	// OnReset is called when the guest pulses the CPU reset line, on the
	// vCPU's goroutine and without the controller's lock held. Linux's
	// default reboot path ends here. nil: resets are only counted.
	OnReset func()
	// Logger receives rate-limited reports of invalid accesses. nil:
	// slog.Default().
	Logger *slog.Logger
}

// Stats are a Controller's counters.
type Stats struct {
	Resets      uint64 // reset line pulses
	BadCommands uint64 // unknown controller commands
	Dropped     uint64 // bytes lost to a full output queue
	BadAccesses uint64 // accesses at an offset other than 0 of a port
}

// outByte is one byte in the output buffer, with the status bits that
// describe it.
type outByte struct {
	v       byte
	aux     bool // stAUXB
	timeout bool // stTimeout
}

// Controller is an emulated i8042. Register DataPort and CommandPort on the
// PIO bus; create it with New. It is safe for concurrent use.
type Controller struct {
	kbdIRQ, auxIRQ devices.IRQLine
	onReset        func()
	log            *ratelog.Logger

	mu       sync.Mutex // guards every field below
	ram      [32]byte   // controller RAM; ram[0] is the command byte
	outPort  byte
	pending  byte // command waiting for its data byte at 0x60, 0 if none
	lastCmd  bool // status A2
	q        [OutputQueueSize]outByte
	qHead    int
	qLen     int
	lastData byte // data port value once the queue is empty
	kbd      keyboard
	kbdHigh  bool // level last given to kbdIRQ
	auxHigh  bool // level last given to auxIRQ
	stats    Stats
}

// New returns a controller in the state a BIOS leaves it: self-test passed
// (system flag set), keyboard interrupt enabled, scan-code translation on,
// A20 enabled, nothing queued.
func New(cfg Config) *Controller {
	c := &Controller{
		kbdIRQ:  cfg.KbdIRQ,
		auxIRQ:  cfg.AUXIRQ,
		onReset: cfg.OnReset,
		log:     ratelog.New(cfg.Logger),
		outPort: resetOutput,
	}
	if c.kbdIRQ == nil {
		c.kbdIRQ = devices.NoIRQ{}
	}
	if c.auxIRQ == nil {
		c.auxIRQ = devices.NoIRQ{}
	}
	c.ram[0] = resetCmdB
	c.kbd.reset()
	return c
}

// DataPort returns the device to register at port 0x60 (1 port).
func (c *Controller) DataPort() devices.Device { return dataPort{c} }

// CommandPort returns the device to register at port 0x64 (1 port): status
// on read, command on write.
func (c *Controller) CommandPort() devices.Device { return commandPort{c} }

// Stats returns a snapshot of the controller's counters.
func (c *Controller) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

type dataPort struct{ c *Controller }

func (p dataPort) Read(offset uint64, data []byte)  { p.c.access(false, false, offset, data) }
func (p dataPort) Write(offset uint64, data []byte) { p.c.access(false, true, offset, data) }

type commandPort struct{ c *Controller }

func (p commandPort) Read(offset uint64, data []byte)  { p.c.access(true, false, offset, data) }
func (p commandPort) Write(offset uint64, data []byte) { p.c.access(true, true, offset, data) }

// access performs a port access. Only byte 0 of a 1-port register exists;
// other bytes read as 0xff and are counted.
func (c *Controller) access(command, write bool, offset uint64, data []byte) {
	reset := false
	c.mu.Lock()
	for i := range data {
		if offset+uint64(i) != 0 {
			c.stats.BadAccesses++
			c.log.Warn("i8042: access outside its ports", "offset", offset+uint64(i), "write", write)
			if !write {
				data[i] = 0xff
			}
			continue
		}
		switch {
		case command && write:
			reset = c.command(data[i]) || reset
		case command:
			data[i] = c.status()
		case write:
			reset = c.writeData(data[i]) || reset
		default:
			data[i] = c.readData()
		}
	}
	if reset {
		c.stats.Resets++
	}
	onReset := c.onReset
	c.mu.Unlock()
	if reset && onReset != nil {
		onReset()
	}
}

func (c *Controller) status() byte {
	v := byte(stInhibit)
	if c.ram[0]&cbSYS != 0 {
		v |= stSYS
	}
	if c.lastCmd {
		v |= stCmd
	}
	if c.qLen > 0 {
		h := c.q[c.qHead]
		v |= stOBF
		if h.aux {
			v |= stAUXB
		}
		if h.timeout {
			v |= stTimeout
		}
	}
	return v
}

// readData pops the output buffer. The line of the byte read is dropped,
// and raised again by updateIRQ if another byte follows, to give an
// edge-triggered interrupt controller a fresh edge per byte.
func (c *Controller) readData() byte {
	if c.qLen > 0 {
		c.lastData = c.q[c.qHead].v
		c.qHead = (c.qHead + 1) % len(c.q)
		c.qLen--
	}
	setLevel(c.kbdIRQ, &c.kbdHigh, false)
	setLevel(c.auxIRQ, &c.auxHigh, false)
	c.updateIRQ()
	return c.lastData
}

// command runs a controller command written to port 0x64 and reports
// whether it pulsed the reset line.
func (c *Controller) command(v byte) (reset bool) {
	c.lastCmd = true
	c.pending = 0 // a new command abandons one waiting for its data byte
	switch {
	case v >= cmdReadRAM && v < cmdReadRAM+32:
		c.sendByte(outByte{v: c.ram[v-cmdReadRAM]})
	case v >= cmdWriteRAM && v < cmdWriteRAM+32,
		v == cmdWriteOutput, v == cmdWriteKbdOBuf, v == cmdWriteAUXOBuf, v == cmdWriteAUX:
		c.pending = v
	case v == cmdAUXDisable:
		c.ram[0] |= cbAUXDis
	case v == cmdAUXEnable:
		c.ram[0] &^= cbAUXDis
	case v == cmdAUXTest, v == cmdKbdTest:
		c.sendByte(outByte{v: respTestOK})
	case v == cmdSelfTest:
		c.ram[0] |= cbSYS
		c.sendByte(outByte{v: respSelfTestOK})
	case v == cmdKbdDisable:
		c.ram[0] |= cbKbdDis
	case v == cmdKbdEnable:
		c.ram[0] &^= cbKbdDis
	case v == cmdReadInput:
		c.sendByte(outByte{v: inputPort})
	case v == cmdReadOutput:
		c.sendByte(outByte{v: c.outputPort()})
	case v == cmdA20Off:
		c.outPort &^= 0x02
	case v == cmdA20On:
		c.outPort |= 0x02
	case v == cmdReadTest:
		c.sendByte(outByte{v: 0x00})
	case v >= cmdPulse:
		// Bits 0-3 that are 0 are pulsed low; bit 0 is the reset line.
		reset = v&outReset == 0
	default:
		c.stats.BadCommands++
		c.log.Warn("i8042: unknown controller command ignored", "command", v)
	}
	c.updateIRQ()
	return reset
}

// writeData handles a byte written to port 0x60: the data byte of a
// pending command, or else a byte for the keyboard. It reports whether the
// reset line was pulsed.
func (c *Controller) writeData(v byte) (reset bool) {
	c.lastCmd = false
	cmd := c.pending
	c.pending = 0
	switch {
	case cmd >= cmdWriteRAM && cmd < cmdWriteRAM+32:
		c.ram[cmd-cmdWriteRAM] = v
	case cmd == cmdWriteOutput:
		c.outPort = v
		reset = v&outReset == 0
	case cmd == cmdWriteKbdOBuf:
		c.sendByte(outByte{v: v})
	case cmd == cmdWriteAUXOBuf:
		c.sendByte(outByte{v: v, aux: true})
	case cmd == cmdWriteAUX:
		// No AUX device clocks the byte in: report a time-out.
		c.sendByte(outByte{v: respNoDevice, aux: true, timeout: true})
	default:
		c.kbd.receive(v, func(b byte) { c.sendByte(outByte{v: b}) })
	}
	c.updateIRQ()
	return reset
}

func (c *Controller) outputPort() byte {
	v := c.outPort &^ (outKbdOBF | outAUXOBF)
	if c.qLen > 0 {
		if c.q[c.qHead].aux {
			v |= outAUXOBF
		} else {
			v |= outKbdOBF
		}
	}
	return v
}

func (c *Controller) sendByte(b outByte) {
	if c.qLen == len(c.q) {
		c.stats.Dropped++
		c.log.Warn("i8042: output buffer full, byte dropped", "byte", b.v)
		return
	}
	c.q[(c.qHead+c.qLen)%len(c.q)] = b
	c.qLen++
}

// updateIRQ drives each line high exactly while the head byte is of its
// kind and the command byte enables its interrupt.
func (c *Controller) updateIRQ() {
	kbd, aux := false, false
	if c.qLen > 0 {
		if c.q[c.qHead].aux {
			aux = c.ram[0]&cbAUXInt != 0
		} else {
			kbd = c.ram[0]&cbKbdInt != 0
		}
	}
	setLevel(c.kbdIRQ, &c.kbdHigh, kbd)
	setLevel(c.auxIRQ, &c.auxHigh, aux)
}

func setLevel(line devices.IRQLine, cur *bool, high bool) {
	if *cur != high {
		*cur = high
		line.SetLevel(high)
	}
}
