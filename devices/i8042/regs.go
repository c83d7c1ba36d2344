package i8042

// Status register bits, read at port 0x64 (IBM PS/2 Hardware Interface
// Technical Reference, "Keyboard and Auxiliary Device Controller", Status
// Register).
const (
	stOBF     = 0x01 // output buffer full: a byte waits at port 0x60
	stIBF     = 0x02 // input buffer full: never set, writes are taken at once
	stSYS     = 0x04 // system flag, copied from command byte bit 2
	stCmd     = 0x08 // A2: the last write was to port 0x64 (a command)
	stInhibit = 0x10 // keyboard not inhibited (keylock switch open)
	stAUXB    = 0x20 // the byte in the output buffer is from the AUX port
	stTimeout = 0x40 // general time-out (no device answered)
)

// Command byte bits (controller RAM byte 0; same reference, Command Byte).
const (
	cbKbdInt  = 0x01 // IRQ 1 on keyboard output-buffer-full
	cbAUXInt  = 0x02 // IRQ 12 on AUX output-buffer-full
	cbSYS     = 0x04 // system flag
	cbKbdDis  = 0x10 // keyboard interface disabled
	cbAUXDis  = 0x20 // AUX interface disabled
	cbXlate   = 0x40 // translate keyboard scan codes to set 1
	resetCmdB = cbKbdInt | cbSYS | cbXlate
)

// Controller commands, written to port 0x64 (same reference, Commands).
const (
	cmdReadRAM      = 0x20 // 0x20-0x3f: read RAM byte n (0x20: command byte)
	cmdWriteRAM     = 0x60 // 0x60-0x7f: write RAM byte n; the byte follows at 0x60
	cmdAUXDisable   = 0xa7
	cmdAUXEnable    = 0xa8
	cmdAUXTest      = 0xa9 // answers 0x00: interface OK
	cmdSelfTest     = 0xaa // answers 0x55: self-test passed
	cmdKbdTest      = 0xab // answers 0x00: interface OK
	cmdKbdDisable   = 0xad
	cmdKbdEnable    = 0xae
	cmdReadInput    = 0xc0
	cmdReadOutput   = 0xd0
	cmdWriteOutput  = 0xd1 // the output port byte follows at 0x60; bit 0 clear resets
	cmdWriteKbdOBuf = 0xd2 // the byte follows; it comes back as keyboard data
	cmdWriteAUXOBuf = 0xd3 // the byte follows; it comes back as AUX data
	cmdWriteAUX     = 0xd4 // the byte follows; it goes to the AUX device
	cmdA20Off       = 0xdd
	cmdA20On        = 0xdf
	cmdReadTest     = 0xe0
	cmdPulse        = 0xf0 // 0xf0-0xff: pulse output port bits 0-3 that are 0 in the command
)

// Responses and port values.
const (
	respSelfTestOK = 0x55
	respTestOK     = 0x00
	respNoDevice   = 0xfe // with stTimeout: nobody answered on the AUX port

	// outPort bits: bit 0 is the CPU reset line (active low), bit 1 the A20
	// gate, bits 4 and 5 mirror the keyboard and AUX output-buffer-full
	// interrupts, bits 6 and 7 the keyboard clock and data lines (idle high).
	outReset    = 0x01
	outKbdOBF   = 0x10
	outAUXOBF   = 0x20
	resetOutput = 0xcf

	// inputPort: bit 7 set means the keyboard is not inhibited.
	inputPort = 0x80
)

// Keyboard commands and responses (IBM PS/2 keyboard technical reference,
// "Commands from the System" and "Commands to the System").
const (
	kbdSetLEDs    = 0xed // parameter: LED bits
	kbdEcho       = 0xee
	kbdScanSet    = 0xf0 // parameter: 0 reports the set, 1-3 select it
	kbdReadID     = 0xf2
	kbdTypematic  = 0xf3 // parameter: rate and delay, bit 7 clear
	kbdEnable     = 0xf4
	kbdDisable    = 0xf5 // default disable
	kbdDefaults   = 0xf6
	kbdResend     = 0xfe
	kbdReset      = 0xff
	kbdACK        = 0xfa
	kbdBATOK      = 0xaa // basic assurance test passed
	kbdNAK        = 0xfe // resend: invalid input
	kbdID1        = 0xab // MF2 keyboard ID, first byte
	kbdID2        = 0x83 // ... and second
	kbdDefaultSet = 2
)
