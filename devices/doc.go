// Package devices holds what govmm's emulated devices share: the bus-facing
// [Device] interface, the [IRQLine] through which a device drives an
// interrupt input, and the conventional PC port numbers and IRQs at which
// the VMM wires the models (layout.go).
//
// The models themselves live in small subpackages with one job each:
//
//   - bus: the PIO and MMIO address spaces that route a vCPU's exits to a
//     Device and count what nobody handles;
//   - serial: an 8250/16550A UART (the console);
//   - i8042: the PS/2 keyboard controller (probe answers, reset line);
//   - rtc: the MC146818 CMOS real-time clock and its 128-byte RAM;
//   - pci: configuration mechanism #1, type-0 configuration spaces with
//     BARs, capabilities and MSI-X, and the host bridge at 00:00.0;
//   - acpipm: the ACPI PM1a registers (power-off);
//   - legacy: the reset control register, the debug-exit and boot-marker
//     ports, and a sink for ports that are deliberately not emulated.
//
// # House rules
//
// Device models are plain Go: they never import package kvm or unsafe, and
// they report to the VMM only through injected interfaces and callbacks
// ([IRQLine], an io.Writer, func values). The guest is hostile: a model
// never returns an error to the bus and never panics on anything the guest
// does. Invalid accesses are counted and logged through a rate-limited
// log/slog logger.
//
// Every model guards its state with its own mutex, so the VMM may run
// several vCPUs at once. Models call their IRQLine with that mutex held, so
// that level changes reach the interrupt controller in the order they
// happened; an IRQLine must therefore never call back into the device.
// Event callbacks (reset, exit status, boot marker) are called without the
// mutex held, on the goroutine of the vCPU that made the access.
package devices
