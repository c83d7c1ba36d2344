package serial

// Register offsets from the base port (PC16550D Table II). Offsets 0 and 1
// reach the divisor latch instead when LCR.DLAB is set.
const (
	offRBR = 0 // receiver buffer (read), THR transmitter holding (write); DLL when DLAB
	offIER = 1 // interrupt enable; DLM when DLAB
	offIIR = 2 // interrupt identification (read), FCR FIFO control (write)
	offLCR = 3 // line control
	offMCR = 4 // modem control
	offLSR = 5 // line status
	offMSR = 6 // modem status
	offSCR = 7 // scratch

	numRegs = 8
)

// IER bits (§8.6). Bits 4-7 are always 0 on a 16550A; Linux checks that they
// do not stick (its XScale probe writes bit 6).
const (
	ierRDA  = 0x01 // ERBFI: received data available
	ierTHRE = 0x02 // ETBEI: transmitter holding register empty
	ierRLS  = 0x04 // ELSI: receiver line status
	ierMS   = 0x08 // EDSSI: modem status
	ierMask = 0x0f
)

// IIR values (§8.5, Table IV): bit 0 set means no interrupt pending; bits
// 1-3 identify the highest-priority pending one; bits 6-7 are both set while
// the FIFOs are enabled (FCR bit 0). Bits 4-5 are always 0 on a 16550A
// (Linux tells a 16750 by bit 5).
const (
	iirNone    = 0x01
	iirRLS     = 0x06 // receiver line status: highest priority
	iirRDA     = 0x04 // received data available
	iirTHRE    = 0x02 // transmitter holding register empty
	iirMS      = 0x00 // modem status: lowest priority
	iirFIFOsOn = 0xc0
)

// FCR bits (§8.4). Bits 6-7 set the receive trigger level, which this model
// stores but does not use: received data is reported as soon as it arrives.
const (
	fcrEnable  = 0x01
	fcrRXReset = 0x02
	fcrTXReset = 0x04
)

// LCR bits (§8.1).
const lcrDLAB = 0x80 // divisor latch access

// MCR bits (§8.7). Bits 5-7 are always 0 on a 16550A.
const (
	mcrDTR  = 0x01
	mcrRTS  = 0x02
	mcrOUT1 = 0x04
	mcrOUT2 = 0x08
	mcrLoop = 0x10
	mcrMask = 0x1f
)

// LSR bits (§8.3).
const (
	lsrDR   = 0x01 // data ready
	lsrOE   = 0x02 // overrun error
	lsrPE   = 0x04 // parity error
	lsrFE   = 0x08 // framing error
	lsrBI   = 0x10 // break interrupt
	lsrTHRE = 0x20 // transmitter holding register empty
	lsrTEMT = 0x40 // transmitter empty
	lsrErrs = lsrOE | lsrPE | lsrFE | lsrBI
)

// MSR bits (§8.8): the low nibble records changes since the last MSR read,
// the high nibble is the current state of the modem inputs. In loopback
// mode (MCR bit 4) the inputs are wired internally to the modem outputs:
// CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2.
const (
	msrDCTS = 0x01
	msrDDSR = 0x02
	msrTERI = 0x04 // trailing edge of RI (1 -> 0)
	msrDDCD = 0x08
	msrCTS  = 0x10
	msrDSR  = 0x20
	msrRI   = 0x40
	msrDCD  = 0x80

	// msrIdle is what the inputs read outside loopback: a modem that is
	// present (DCD, DSR) and ready to receive (CTS), no ring.
	msrIdle = msrDCD | msrDSR | msrCTS
)

// Reset values. The divisor defaults to 12 (9600 baud from the PC's
// 1.8432 MHz clock), as a BIOS would leave it; LSR has THRE|TEMT set.
const (
	resetDLL = 0x0c
	resetLCR = 0x03 // 8 data bits, no parity, 1 stop bit
)
