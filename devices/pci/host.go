package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/internal/ratelog"
)

// MaxDevices is the number of device numbers on a bus (CONFIG_ADDRESS bits
// 15:11).
const MaxDevices = 32

// Port offsets from 0xcf8.
const (
	offAddress      = 0 // CONFIG_ADDRESS, 32-bit accesses only
	offResetControl = 1 // 0xcf9, byte accesses
	offData         = 4 // CONFIG_DATA, 0xcfc-0xcff, any width
	numPorts        = 8
)

// CONFIG_ADDRESS fields (PCI 3.0 section 3.2.2.3.2, figure 3-2).
const (
	addrEnable   = 1 << 31
	addrReserved = 0x7f << 24 // 30:24; AMD puts register bits 11:8 in 27:24
	addrRegister = 0xfc       // 7:2
	addrRO       = 0x3        // 1:0, read-only zero
)

// Registration and construction errors, wrapped with context.
var (
	// ErrInvalid reports an argument out of range or inconsistent.
	ErrInvalid = errors.New("invalid")
	// ErrInUse reports a device number or BAR slot already taken.
	ErrInUse = errors.New("already in use")
	// ErrNoSpace reports a capability that does not fit in the 256-byte
	// configuration space.
	ErrNoSpace = errors.New("no room in configuration space")
)

// Function is one PCI function's configuration space as a [Host] reaches
// it. The Host only passes accesses of 1, 2 or 4 bytes, naturally aligned,
// that end at or below register 256; a Function must nevertheless not
// panic on anything else. [ConfigSpace] implements it; a device that needs
// to intercept some registers wraps one.
type Function interface {
	ReadConfig(offset uint64, data []byte)
	WriteConfig(offset uint64, data []byte)
}

// Config configures a Host. Every field may be left zero.
type Config struct {
	// ResetControl receives byte accesses to port 0xcf9, at offset 0.
	// nil: they read all ones and are ignored.
	ResetControl devices.Device
	// Logger receives rate-limited reports of invalid accesses. nil:
	// slog.Default().
	Logger *slog.Logger
}

// Stats are a Host's counters.
type Stats struct {
	// DataAccesses counts CONFIG_DATA reads and writes, answered or not.
	DataAccesses uint64
	// MasterAborts counts the CONFIG_DATA accesses that selected no
	// function (enable bit clear, bus other than 0, absent device or
	// function, register beyond 256 bytes).
	MasterAborts uint64
	// Misaligned counts the CONFIG_DATA accesses that were dropped for not
	// being naturally aligned within the dword.
	Misaligned uint64
	// NarrowAccesses counts byte and word accesses to 0xcf8-0xcfb other
	// than the forwarded one to 0xcf9.
	NarrowAccesses uint64
	// BadAccesses counts accesses that are not within the eight ports or
	// are of a size no x86 port access has.
	BadAccesses uint64
}

// Host is configuration mechanism #1 in front of bus 0. It implements
// devices.Device over 8 ports; create it with NewHost or NewEmptyHost. It
// is safe for concurrent use.
type Host struct {
	resetControl devices.Device
	log          *ratelog.Logger

	mu        sync.Mutex // guards address, functions and stats
	address   uint32     // CONFIG_ADDRESS, bits 1:0 clear
	functions [MaxDevices]Function
	stats     Stats
}

var _ devices.Device = (*Host)(nil)

// NewHost returns a Host with the host bridge of NewHostBridge at 00:00.0
// and CONFIG_ADDRESS zero.
func NewHost(cfg Config) *Host {
	h := NewEmptyHost(cfg)
	h.functions[0] = NewHostBridge()
	return h
}

// NewEmptyHost returns a Host with nothing behind it: every configuration
// access is a master abort, so Linux's sanity check of mechanism #1 fails
// and the guest boots without PCI.
func NewEmptyHost(cfg Config) *Host {
	return &Host{resetControl: cfg.ResetControl, log: ratelog.New(cfg.Logger)}
}

// Register puts fn at function 0 of device (0-31) on bus 0.
func (h *Host) Register(device int, fn Function) error {
	if fn == nil {
		return fmt.Errorf("register PCI device %d: nil function: %w", device, ErrInvalid)
	}
	if device < 0 || device >= MaxDevices {
		return fmt.Errorf("register PCI device %d: device number beyond %d: %w", device, MaxDevices-1, ErrInvalid)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.functions[device] != nil {
		return fmt.Errorf("register PCI device 00:%02x.0 (%T): %w by %T", device, fn, ErrInUse, h.functions[device])
	}
	h.functions[device] = fn
	return nil
}

// Read reads CONFIG_ADDRESS (32-bit at offset 0), the reset control
// register (byte at offset 1) or CONFIG_DATA (offsets 4-7).
func (h *Host) Read(offset uint64, data []byte) {
	if h.forwarded(offset, data) {
		h.resetControl.Read(0, data)
		return
	}
	if offset == offAddress && len(data) == 4 {
		h.mu.Lock()
		binary.LittleEndian.PutUint32(data, h.address)
		h.mu.Unlock()
		return
	}
	fn, reg, ok := h.decode(offset, data, "read")
	if !ok {
		fill(data, 0xff)
		return
	}
	fn.ReadConfig(reg, data)
}

// Write writes CONFIG_ADDRESS (32-bit at offset 0), the reset control
// register (byte at offset 1) or CONFIG_DATA (offsets 4-7).
func (h *Host) Write(offset uint64, data []byte) {
	if h.forwarded(offset, data) {
		h.resetControl.Write(0, data)
		return
	}
	if offset == offAddress && len(data) == 4 {
		h.mu.Lock()
		h.address = binary.LittleEndian.Uint32(data) &^ addrRO
		h.mu.Unlock()
		return
	}
	fn, reg, ok := h.decode(offset, data, "write")
	if !ok {
		return
	}
	fn.WriteConfig(reg, data)
}

// Stats returns a snapshot of the counters.
func (h *Host) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

func (h *Host) forwarded(offset uint64, data []byte) bool {
	return offset == offResetControl && len(data) == 1 && h.resetControl != nil
}

// decode classifies an access other than to CONFIG_ADDRESS or the forwarded
// reset control byte. For a CONFIG_DATA access that selects a function it
// returns the function and register; otherwise it counts the access and
// returns ok false. The caller calls the function without h.mu held.
func (h *Host) decode(offset uint64, data []byte, op string) (fn Function, reg uint64, ok bool) {
	n := uint64(len(data))
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case offset >= offData && offset < numPorts && n > 0 && n <= numPorts-offset:
		h.stats.DataAccesses++
		lane := offset - offData
		if (n != 1 && n != 2 && n != 4) || lane%n != 0 {
			h.stats.Misaligned++
			h.log.Warn("pci: misaligned CONFIG_DATA access", "op", op, "port", fmt.Sprintf("%#x", 0xcf8+offset), "len", n)
			return nil, 0, false
		}
		a := h.address
		device := a >> 11 & 0x1f
		switch {
		case a&addrEnable == 0, a&addrReserved != 0, a>>16&0xff != 0, a>>8&0x7 != 0, h.functions[device] == nil:
			h.stats.MasterAborts++
			return nil, 0, false
		}
		return h.functions[device], uint64(a&addrRegister) + lane, true
	case offset < offData && n > 0 && n <= offData-offset:
		h.stats.NarrowAccesses++
		return nil, 0, false
	default:
		h.stats.BadAccesses++
		h.log.Warn("pci: access outside the configuration ports", "op", op, "offset", offset, "len", n)
		return nil, 0, false
	}
}

func fill(data []byte, v byte) {
	for i := range data {
		data[i] = v
	}
}
