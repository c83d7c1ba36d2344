// Package acpipm models the ACPI fixed-hardware PM1a register blocks a
// guest's ACPI driver uses to power the machine off (ACPI 6.3 §4.8.3.1
// "PM1 Event Grouping", §4.8.3.2 "PM1 Control Grouping", §7.4.2.5 "\_S5
// Soft Off"). There is no SMI and no ACPI-enable handshake: SCI_EN always
// reads 1, so the FADT's SMI_CMD is 0.
package acpipm

import (
	"encoding/binary"
	"sync"
)

// PM1 register bits (ACPI 6.3 table 4-16 "PM1 Control Registers Fixed
// Hardware Feature Control Bits").
const (
	sciEnable      = 1 << 0  // SCI_EN
	sleepTypeShift = 10      // SLP_TYPx, bits 10-12
	sleepTypeMask  = 7 << 10 //
	sleepEnable    = 1 << 13 // SLP_EN: write-only, reads 0
)

// Config configures the PM1a blocks.
type Config struct {
	// S5SleepType is the SLP_TYP value of the DSDT's \_S5_ object: a
	// write of it with SLP_EN set is a power-off request.
	S5SleepType uint16
	// OnPowerOff is called, on the writing vCPU, when the guest asks for
	// S5.
	OnPowerOff func()
}

// PM holds the PM1a event block (status and enable, 2 bytes each) and the
// PM1a control block (2 bytes). Register the two with EventBlock and
// ControlBlock at the ports the FADT names.
type PM struct {
	cfg Config

	mu      sync.Mutex // guards status, enable, control
	status  uint16     // PM1_STS: write 1 to clear; govmm raises no events
	enable  uint16     // PM1_EN: read back as written
	control uint16     // PM1_CNT, less SLP_EN
}

// New returns the PM1a registers.
func New(cfg Config) *PM { return &PM{cfg: cfg, control: sciEnable} }

// EventBlock is the 4-port PM1a_EVT_BLK: status at offset 0, enable at 2.
func (p *PM) EventBlock() *EventBlock { return (*EventBlock)(p) }

// ControlBlock is the 2-port PM1a_CNT_BLK.
func (p *PM) ControlBlock() *ControlBlock { return (*ControlBlock)(p) }

// EventBlock is the PM1a event register block.
type EventBlock PM

// ControlBlock is the PM1a control register block.
type ControlBlock PM

// Read implements devices.Device. Byte and word accesses both work: the
// registers are read as one little-endian 4-byte block.
func (e *EventBlock) Read(offset uint64, data []byte) {
	e.mu.Lock()
	var regs [4]byte
	binary.LittleEndian.PutUint16(regs[0:], e.status)
	binary.LittleEndian.PutUint16(regs[2:], e.enable)
	e.mu.Unlock()
	readBlock(regs[:], offset, data)
}

// Write implements devices.Device.
func (e *EventBlock) Write(offset uint64, data []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var regs [4]byte
	binary.LittleEndian.PutUint16(regs[2:], e.enable)
	var written [4]byte // the status bits the write sets: write 1 to clear
	if !writeBlock(written[:], offset, data) || !writeBlock(regs[:], offset, data) {
		return
	}
	e.status &^= binary.LittleEndian.Uint16(written[0:])
	e.enable = binary.LittleEndian.Uint16(regs[2:])
}

// Read implements devices.Device.
func (c *ControlBlock) Read(offset uint64, data []byte) {
	c.mu.Lock()
	var regs [2]byte
	binary.LittleEndian.PutUint16(regs[:], c.control)
	c.mu.Unlock()
	readBlock(regs[:], offset, data)
}

// Write implements devices.Device. Linux writes SLP_TYP first and then
// SLP_TYP|SLP_EN (drivers/acpi/acpica/hwsleep.c); the second write is the
// request.
func (c *ControlBlock) Write(offset uint64, data []byte) {
	c.mu.Lock()
	var regs [2]byte
	binary.LittleEndian.PutUint16(regs[:], c.control)
	if !writeBlock(regs[:], offset, data) {
		c.mu.Unlock()
		return
	}
	v := binary.LittleEndian.Uint16(regs[:])
	c.control = v&^sleepEnable | sciEnable
	powerOff := v&sleepEnable != 0 && (v&sleepTypeMask)>>sleepTypeShift == c.cfg.S5SleepType
	c.mu.Unlock()
	if powerOff && c.cfg.OnPowerOff != nil {
		c.cfg.OnPowerOff()
	}
}

// readBlock copies the bytes of regs at [offset, offset+len(data)) into
// data; bytes past the block read as 0xff.
func readBlock(regs []byte, offset uint64, data []byte) {
	for i := range data {
		data[i] = 0xff
		if o := offset + uint64(i); o < uint64(len(regs)) {
			data[i] = regs[o]
		}
	}
}

// writeBlock stores data at offset into regs; it reports false, changing
// nothing, for an access that does not fit the block.
func writeBlock(regs []byte, offset uint64, data []byte) bool {
	if offset >= uint64(len(regs)) || uint64(len(data)) > uint64(len(regs))-offset {
		return false
	}
	copy(regs[offset:], data)
	return true
}
