package pci

import (
	"encoding/binary"
	"log/slog"
	"sync"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/internal/ratelog"
)

// Port offsets from 0xcf8.
const (
	offAddress      = 0 // CONFIG_ADDRESS, 32-bit accesses only
	offResetControl = 1 // 0xcf9, byte accesses
	offData         = 4 // CONFIG_DATA, 0xcfc-0xcff, any width
	numPorts        = 8
)

// Config configures an EmptyHost. Every field may be left zero.
type Config struct {
	// ResetControl receives byte accesses to port 0xcf9, at offset 0.
	// nil: they read all ones and are ignored.
	ResetControl devices.Device
	// Logger receives rate-limited reports of invalid accesses. nil:
	// slog.Default().
	Logger *slog.Logger
}

// Stats are an EmptyHost's counters.
type Stats struct {
	DataAccesses   uint64 // CONFIG_DATA reads and writes (all unanswered)
	NarrowAccesses uint64 // byte/word accesses to 0xcf8-0xcfb other than 0xcf9
	BadAccesses    uint64 // accesses outside the 8 ports
}

// EmptyHost is configuration mechanism #1 with no devices behind it. It
// implements devices.Device over 8 ports; create it with NewEmptyHost. It is
// safe for concurrent use.
type EmptyHost struct {
	resetControl devices.Device
	log          *ratelog.Logger

	mu      sync.Mutex // guards address and stats
	address uint32     // CONFIG_ADDRESS as last written
	stats   Stats
}

var _ devices.Device = (*EmptyHost)(nil)

// NewEmptyHost returns an EmptyHost with CONFIG_ADDRESS zero.
func NewEmptyHost(cfg Config) *EmptyHost {
	return &EmptyHost{resetControl: cfg.ResetControl, log: ratelog.New(cfg.Logger)}
}

// Read reads CONFIG_ADDRESS (32-bit at offset 0), the reset control
// register (byte at offset 1) or CONFIG_DATA (all ones).
func (h *EmptyHost) Read(offset uint64, data []byte) {
	if h.forwarded(offset, data) {
		h.resetControl.Read(0, data)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if offset == offAddress && len(data) == 4 {
		binary.LittleEndian.PutUint32(data, h.address)
		return
	}
	for i := range data {
		data[i] = 0xff
	}
	h.count(offset, len(data), "read")
}

// Write writes CONFIG_ADDRESS (32-bit at offset 0) or the reset control
// register (byte at offset 1); writes to CONFIG_DATA are ignored.
func (h *EmptyHost) Write(offset uint64, data []byte) {
	if h.forwarded(offset, data) {
		h.resetControl.Write(0, data)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if offset == offAddress && len(data) == 4 {
		// Stored as written; real bridges hardwire bits 0-1 and 24-30 to 0.
		h.address = binary.LittleEndian.Uint32(data)
		return
	}
	h.count(offset, len(data), "write")
}

// Stats returns a snapshot of the counters.
func (h *EmptyHost) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

func (h *EmptyHost) forwarded(offset uint64, data []byte) bool {
	return offset == offResetControl && len(data) == 1 && h.resetControl != nil
}

// count classifies an access that is not to CONFIG_ADDRESS.
func (h *EmptyHost) count(offset uint64, n int, op string) {
	switch {
	case offset >= offData && offset < numPorts && uint64(n) <= numPorts-offset:
		h.stats.DataAccesses++
	case offset < offData && uint64(n) <= offData-offset:
		h.stats.NarrowAccesses++
	default:
		h.stats.BadAccesses++
		h.log.Warn("pci: access outside the configuration ports", "op", op, "offset", offset, "len", n)
	}
}
