// Package i8042 models the PS/2 keyboard controller (Intel 8042 and its
// descendants) at ports 0x60 (data) and 0x64 (status/command), with a
// minimal PS/2 keyboard on its first port and nothing plugged into its
// auxiliary (mouse) port.
//
// Its job in govmm is to let Linux's i8042 and atkbd drivers probe without
// stalling, and to carry the guest's reset requests (command 0xFE, or an
// output-port write with bit 0 clear) to the VMM. The controller's status
// register, command byte and commands follow the IBM Personal System/2
// Hardware Interface Technical Reference, "Keyboard and Auxiliary Device
// Controller"; the keyboard's commands and responses follow the IBM PS/2
// keyboard technical reference ("Commands from the System"). Each constant
// group says which part it comes from.
//
// # Ports
//
// The controller is one device with two registrations: [Controller.DataPort]
// at 0x60 and [Controller.CommandPort] at 0x64, one port each, leaving 0x61
// (the PIT speaker port, handled by KVM's in-kernel PIT) to KVM.
//
// # Output buffer
//
// Every byte for the host (controller responses, keyboard responses, the
// AUX port's answers) goes through one output buffer, modelled as a queue
// of at most [OutputQueueSize] bytes: the status register's OBF bit is set
// while it is non-empty, and AUXB and TIMEOUT describe the byte at its head.
// Reading the data port pops the head; reading it empty repeats the last
// byte. Linux's i8042_flush() gives up on a controller that still has data
// after 16 reads, so the queue never holds more; bytes beyond it are dropped
// and counted.
//
// # Interrupts
//
// IRQ 1 (keyboard) is high while the head byte came from the keyboard side
// and the command byte's bit 0 enables it; IRQ 12 (AUX) likewise for AUX
// bytes and bit 1. ISA interrupts are edge-triggered, so after each data
// port read that leaves another byte queued the line is dropped and raised
// again, as the real controller does when the next byte arrives; otherwise
// the guest would miss, e.g., the 0xAA that follows the ACK of a keyboard
// reset.
//
// # The AUX port
//
// The controller presents a working AUX interface with no device attached,
// so Linux decides quickly and consistently:
//
//   - 0xA9 (test AUX interface) answers 0x00 (lines OK); 0xA7/0xA8 toggle
//     the AUX-disable bit of the command byte, which Linux reads back;
//   - 0xD3 (write AUX output buffer, Linux's "AUX loop") echoes the byte as
//     AUX data, raising IRQ 12 when enabled, so Linux's loopback and
//     interrupt-delivery tests pass and the MUX probe (whose third echo
//     must differ) fails;
//   - 0xD4 (write to AUX device) answers what a controller answers when no
//     device clocks the byte in: 0xFE with the status TIMEOUT bit set, as
//     AUX data. Linux's psmouse driver aborts its probe on the first such
//     byte ("probe of serio1 failed"), without waiting for timeouts.
//
// With AUXIRQ wired (ISA IRQ 12), Linux registers an AUX port and
// psmouse's probe fails at once. With AUXIRQ nil, Linux's AUX interrupt
// test waits 250 ms and then decides there is no AUX port. Either way boot
// does not stall; to skip the AUX probing altogether, boot Linux with
// i8042.noaux (and i8042.nomux).
//
// # The keyboard
//
// The keyboard answers every command Linux's atkbd driver sends: 0xFA
// (ACK) for commands and their parameters, 0xFA 0xAA after 0xFF (reset,
// self-test passed), 0xFA 0xAB 0x83 for 0xF2 (read ID, an MF2 keyboard),
// 0xEE for 0xEE (echo), and 0xFE (resend) for bytes that are not
// commands. It never sends scan codes: govmm has no keyboard input.
package i8042
