package vmm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/acpipm"
	"github.com/govmm/govmm/devices/bus"
	"github.com/govmm/govmm/devices/i8042"
	"github.com/govmm/govmm/devices/legacy"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/rtc"
	"github.com/govmm/govmm/devices/serial"
	"github.com/govmm/govmm/guest"
)

// deviceSet is the machine's devices and the buses the vCPUs reach them on.
type deviceSet struct {
	pio     pioBus
	mmio    mmioBus
	uart    *serial.UART
	console *consoleWatcher
}

// pioBus and mmioBus adapt the device buses to what the vCPU loop calls.
// An access no device claims is the bus's to count; the loop never sees it.
type pioBus struct{ *bus.PIO }

func (b pioBus) ReadPIO(port uint16, data []byte)  { b.Read(bus.Port(port), data) }
func (b pioBus) WritePIO(port uint16, data []byte) { b.Write(bus.Port(port), data) }

type mmioBus struct{ *bus.MMIO }

func (b mmioBus) ReadMMIO(addr uint64, data []byte)  { b.Read(bus.Addr(addr), data) }
func (b mmioBus) WriteMMIO(addr uint64, data []byte) { b.Write(bus.Addr(addr), data) }

// irqLine drives one input of the in-kernel PIC and IOAPIC.
func (m *Machine) irqLine(irq uint32) devices.IRQLine {
	return devices.IRQLineFunc(func(high bool) {
		if err := m.vm.IRQLine(irq, high); err != nil {
			m.guestLog.Warn("set interrupt line", "irq", irq, "level", high, "err", err)
		}
	})
}

// registration places a device on the port bus.
type registration struct {
	name string
	base uint16
	size uint32
	dev  devices.Device
}

func (m *Machine) newDevices() (*deviceSet, error) {
	console := m.cfg.Console
	if console == nil {
		console = io.Discard
	}
	d := &deviceSet{
		pio:     pioBus{bus.NewPIO(m.log)},
		mmio:    mmioBus{bus.NewMMIO(m.log)},
		console: &consoleWatcher{w: console, onEnd: func(o Outcome, cause string) { m.end(event{outcome: o, cause: cause}) }},
	}
	d.uart = serial.New(serial.Config{IRQ: m.irqLine(devices.COM1IRQ), Output: d.console, Logger: m.log})
	resetBy := func(cause string) func() { return func() { m.end(event{outcome: OutcomeReset, cause: cause}) } }
	pciHost := pci.NewHost(pci.Config{ResetControl: legacy.NewResetControl(resetBy("reset through port 0xcf9")), Logger: m.log})
	registrations := []registration{
		{"COM1", devices.COM1Port, devices.UARTPortCount, d.uart},
		{"i8042 data", devices.I8042DataPort, 1, nil},
		{"i8042 command", devices.I8042CommandPort, 1, nil},
		{"CMOS RTC", devices.RTCPort, devices.RTCPortCount, rtc.New(rtc.Config{Now: time.Now, Logger: m.log})},
		{"PCI configuration", devices.PCIConfigPort, devices.PCIConfigPortCount, pciHost},
		{"exit status", guest.ExitStatusPort, 1, legacy.NewDebugExit(func(status byte) {
			m.end(event{outcome: OutcomeCommandExited, status: int(status), cause: "the guest agent reported the command's exit status"})
		})},
		{"boot marker", guest.BootMarkerPort, 1, legacy.NewBootMarker(func(t time.Time) {
			m.bootMu.Lock()
			m.bootTime = t.Sub(m.cfg.Launch)
			m.bootMu.Unlock()
			m.log.Debug("guest reached init", "after", t.Sub(m.cfg.Launch))
		}, m.log)},
		{"POST code", devices.POSTPort, 1, legacy.NewSink()},
		{"DMA page", devices.DMAPagePort, 1, legacy.NewSink()},
		{"I/O delay", devices.IODelayPort, 1, legacy.NewSink()},
	}
	pm := acpipm.New(acpipm.Config{
		S5SleepType: boot.ACPISleepTypeS5,
		OnPowerOff:  func() { m.end(event{outcome: OutcomePowerOff, cause: "ACPI power off (S5)"}) },
	})
	registrations = append(registrations,
		registration{"ACPI PM1a event block", boot.ACPIDefaultPM1aEventPort, 4, pm.EventBlock()},
		registration{"ACPI PM1a control block", boot.ACPIDefaultPM1aControlPort, 2, pm.ControlBlock()},
	)
	kbd := i8042.New(i8042.Config{KbdIRQ: m.irqLine(devices.I8042KbdIRQ), OnReset: resetBy("reset through the keyboard controller"), Logger: m.log})
	registrations[1].dev, registrations[2].dev = kbd.DataPort(), kbd.CommandPort()
	for _, r := range registrations {
		if err := d.pio.Register(bus.Port(r.base), r.size, r.dev); err != nil {
			return nil, fmt.Errorf("register %s at port %#x: %w", r.name, r.base, err)
		}
	}
	m.devs = d // the BAR listeners register on d.mmio
	if err := m.addVirtioDevices(pciHost); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *deviceSet) consoleInput(b []byte) {
	// Blocks the caller (the stdin reader), never a vCPU, until the guest
	// has room: typing ahead is not lost.
	if _, err := d.uart.EnqueueWait(context.Background(), b); err != nil {
		return // the UART closed: the VM is ending
	}
}

// flush waits (briefly) until the console output has been written.
func (d *deviceSet) flush() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return d.uart.Shutdown(ctx)
}

func (d *deviceSet) panicked() bool { return d.console.panicked.Load() }

func (d *deviceSet) close() error {
	var errs *multierror.Error
	errs = multierror.Append(errs, d.flush())
	return errs.ErrorOrNil()
}

// Console lines the guest kernel prints at the end of its life
// (kernel/panic.c, kernel/reboot.c). Watching for them is how govmm ends a
// VM whose kernel powers off without ACPI (the kernel then just stops its
// CPUs and prints "Power down"), and how it tells a panic, which with
// panic=-1 reboots at once, from an ordinary reboot.
var (
	panicMarker    = []byte("Kernel panic - not syncing")
	panicEndMarker = []byte("---[ end Kernel panic - not syncing")
	powerOffMarker = []byte("reboot: Power down")
	// Since Linux 5.x a power-off request on a machine with no power-off
	// method (no ACPI) is turned into a halt.
	haltMarker = []byte("reboot: System halted")
)

// consoleWatcher passes console output through and watches it for the
// markers above.
type consoleWatcher struct {
	w        io.Writer
	onEnd    func(o Outcome, cause string) // called (at most once per marker) when the guest is done
	mu       sync.Mutex                    // guards tail
	tail     []byte                        // the end of the previous writes, for markers split across them
	panicked atomic.Bool
}

const watchTail = 64 // longer than every marker

func (c *consoleWatcher) Write(b []byte) (int, error) {
	c.mu.Lock()
	buf := append(c.tail, b...)
	switch {
	case bytes.Contains(buf, panicEndMarker):
		c.panicked.Store(true)
		c.onEnd(OutcomePanic, "the kernel panicked")
	case bytes.Contains(buf, panicMarker):
		c.panicked.Store(true)
	case bytes.Contains(buf, powerOffMarker):
		c.onEnd(OutcomePowerOff, fmt.Sprintf("the kernel printed %q", powerOffMarker))
	case bytes.Contains(buf, haltMarker):
		c.onEnd(OutcomePowerOff, fmt.Sprintf("the kernel printed %q", haltMarker))
	}
	if len(buf) > watchTail {
		buf = buf[len(buf)-watchTail:]
	}
	c.tail = append(c.tail[:0], buf...)
	c.mu.Unlock()
	return c.w.Write(b)
}
