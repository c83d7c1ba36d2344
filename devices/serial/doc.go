// Package serial models an 8250-family UART as a National Semiconductor
// PC16550D ("16550A": working 16-byte FIFOs), the chip Linux's 8250 driver
// expects at COM1.
//
// Register layouts and interrupt priorities follow the PC16550D datasheet
// (National Semiconductor, June 1995), section 8 "Registers", Table II
// "Summary of Registers" and Table IV "Interrupt Control Functions"; each
// register's constants cite the subsection they come from. The probe
// behaviour (scratch register, loopback MSR check, FIFO bits in IIR, the
// THRE re-assertion test) is what Linux's drivers/tty/serial/8250 autoconfig
// and startup code check for.
//
// # Timing
//
// The model has no baud-rate clock: a byte written to THR leaves at once,
// so LSR always reports THRE|TEMT and a THRE interrupt is re-armed by every
// THR write. Received bytes are available as soon as they are enqueued; the
// model reports them as "received data available" (IIR 0x04) and never
// uses the character-timeout identification (0x0C), which Linux handles the
// same way.
//
// # Output
//
// Transmitted bytes go into a bounded queue drained into the io.Writer by
// a goroutine, so a slow or stuck writer never blocks a vCPU: when the
// queue is full, bytes are dropped and counted ([Stats].TXDropped). Close
// stops accepting bytes, flushes the queue into the writer and stops the
// goroutine.
//
// # Input and backpressure
//
// Input bytes come from the host through [UART.Enqueue], which never blocks:
// it takes as many bytes as fit in the receive FIFO ([RXFIFOSize] bytes)
// and returns that count; the rest is the caller's to retry. [UART.EnqueueWait]
// does the retrying for a feeder goroutine (e.g. one copying stdin): it
// blocks the caller, never a vCPU, until the guest has read enough for all
// of the bytes to fit, the context ends or the UART is closed. Nothing is
// dropped on the input side, except as on real hardware: a FIFO reset
// through FCR (which Linux's driver does when it opens the port) discards
// the bytes in the FIFO at that moment.
//
// # Interrupts
//
// The UART drives its IRQLine as a level: high while IIR reports a pending
// interrupt. The OUT2 bit of MCR, which gates the interrupt onto the ISA bus
// on real PC boards, is not modelled as a gate: the line follows IIR
// whatever OUT2 says.
package serial
