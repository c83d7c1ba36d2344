package pci

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"sync"

	"github.com/govmm/govmm/internal/ratelog"
)

// CapIDMSIX is the capability ID of MSI-X (PCI 3.0 section 6.8.2).
const CapIDMSIX = 0x11

// MSIXMaxVectors is the largest MSI-X table: Table Size is an 11-bit N-1.
const MSIXMaxVectors = 2048

// MSI-X capability layout (PCI 3.0 section 6.8.2, figure 6-10), from the
// capability's start.
const (
	msixControl   = 2 // Message Control, 16 bits
	msixTable     = 4 // Table Offset/Table BIR
	msixPBA       = 8 // PBA Offset/PBA BIR
	msixCapSize   = 12
	msixEnable    = 1 << 15 // Message Control: MSI-X Enable
	msixFuncMask  = 1 << 14 // Message Control: Function Mask
	msixBIRMask   = 0x7     // Table/PBA BIR, bits 2:0
	msixEntrySize = 16
)

// Fields of an MSI-X table entry (PCI 3.0 sections 6.8.2.6-6.8.2.9).
const (
	entryAddrLo  = 0
	entryAddrHi  = 4
	entryData    = 8
	entryControl = 12
	entryMasked  = 1 // Vector Control bit 0: Mask Bit
)

// MSIXVector is one MSI-X vector as the VMM needs it.
type MSIXVector struct {
	// Address and Data are the message: a write of Data to Address (on
	// x86, the LAPIC window at 0xfee00000 with the destination in the
	// address and the vector and delivery mode in the data).
	Address uint64
	Data    uint32
	// Masked is the effective mask: the entry's Mask Bit, the Function
	// Mask, or MSI-X being disabled. A masked vector must not be sent.
	Masked bool
}

// MSIXListener is how an MSIXTable reaches the interrupt controller. The
// VMM implements it with KVM GSI routing and irqfds (or KVM_SIGNAL_MSI).
// An MSIXTable calls it on the goroutine of the vCPU or device worker that
// caused the call, one call at a time per table, in order, without the
// table's state locked; a listener may read the table (Vector, Enabled)
// but must not write it or call Trigger.
type MSIXListener interface {
	// MSIXChanged reports that vector's message or effective mask
	// changed; v is the vector as it now is.
	MSIXChanged(vector int, v MSIXVector)
	// MSIXSend delivers vector's message now: Trigger found it unmasked,
	// or it was unmasked with its pending bit set.
	MSIXSend(vector int, v MSIXVector)
}

// MSIXConfig lays out an MSI-X table and its pending-bit array (PBA) in
// the function's memory BARs.
type MSIXConfig struct {
	// Vectors is the number of table entries, 1-2048.
	Vectors int
	// TableBAR and TableOffset locate the table: 16 bytes per vector, at
	// an 8-byte aligned offset.
	TableBAR    int
	TableOffset uint32
	// PBABAR and PBAOffset locate the PBA: one bit per vector in 64-bit
	// words, at an 8-byte aligned offset. It must not overlap the table.
	PBABAR    int
	PBAOffset uint32
	// Listener receives vector changes and messages to send. nil: they
	// are dropped.
	Listener MSIXListener
	// Logger receives rate-limited reports of invalid table and PBA
	// accesses. nil: slog.Default().
	Logger *slog.Logger
}

// tableSize and pbaSize are the sizes in bytes of the table and PBA.
func (c MSIXConfig) tableSize() uint64 { return msixEntrySize * uint64(c.Vectors) }
func (c MSIXConfig) pbaSize() uint64   { return 8 * ((uint64(c.Vectors) + 63) / 64) }

func (c MSIXConfig) check() error {
	switch {
	case c.Vectors < 1 || c.Vectors > MSIXMaxVectors:
		return fmt.Errorf("%d vectors: want 1-%d: %w", c.Vectors, MSIXMaxVectors, ErrInvalid)
	case c.TableBAR < 0 || c.TableBAR >= NumBARs || c.PBABAR < 0 || c.PBABAR >= NumBARs:
		return fmt.Errorf("table BAR %d or PBA BAR %d beyond 5: %w", c.TableBAR, c.PBABAR, ErrInvalid)
	case c.TableOffset%8 != 0 || c.PBAOffset%8 != 0:
		return fmt.Errorf("table offset %#x or PBA offset %#x not 8-byte aligned: %w", c.TableOffset, c.PBAOffset, ErrInvalid)
	case uint64(c.TableOffset)+c.tableSize() > 1<<32 || uint64(c.PBAOffset)+c.pbaSize() > 1<<32:
		return fmt.Errorf("table or PBA runs past 4 GiB: %w", ErrInvalid)
	}
	t0, t1 := uint64(c.TableOffset), uint64(c.TableOffset)+c.tableSize()
	p0, p1 := uint64(c.PBAOffset), uint64(c.PBAOffset)+c.pbaSize()
	if c.TableBAR == c.PBABAR && t0 < p1 && p0 < t1 {
		return fmt.Errorf("table [%#x, %#x) and PBA [%#x, %#x) overlap in BAR %d: %w", t0, t1, p0, p1, c.TableBAR, ErrInvalid)
	}
	return nil
}

// MSIXCapability returns the MSI-X capability (ID 0x11) for the layout in
// c (PCI 3.0 section 6.8.2): Message Control with Table Size N-1 and, the
// only writable bits, MSI-X Enable and Function Mask; Table Offset/BIR and
// PBA Offset/BIR. It has no OnWrite hook; MSIXTable.Capability adds the
// one that keeps the table informed.
func MSIXCapability(c MSIXConfig) (Capability, error) {
	if err := c.check(); err != nil {
		return Capability{}, fmt.Errorf("MSI-X capability: %w", err)
	}
	b := make([]byte, msixCapSize)
	m := make([]byte, msixCapSize)
	le := binary.LittleEndian
	b[0] = CapIDMSIX
	le.PutUint16(b[msixControl:], uint16(c.Vectors-1))
	le.PutUint16(m[msixControl:], msixEnable|msixFuncMask)
	le.PutUint32(b[msixTable:], c.TableOffset|uint32(c.TableBAR))
	le.PutUint32(b[msixPBA:], c.PBAOffset|uint32(c.PBABAR))
	return Capability{ID: CapIDMSIX, Body: b[2:], WriteMask: m[2:]}, nil
}

// msixEntry is one table entry as the guest wrote it.
type msixEntry struct {
	addrLo, addrHi, data, control uint32
}

// MSIXTable models an MSI-X table and PBA (PCI 3.0 section 6.8.2) living in
// a function's memory BAR(s). The device that owns the BAR passes it
// accesses to the table's and the PBA's ranges, relative to their starts;
// the capability (Capability, added with ConfigSpace.AddMSIX) keeps it
// informed of MSI-X Enable and Function Mask. The device raises interrupts
// with Trigger. It is safe for concurrent use.
type MSIXTable struct {
	cfg      MSIXConfig
	listener MSIXListener
	log      *ratelog.Logger

	// eventMu serialises state changes with the listener calls they
	// cause, so that the listener sees them in order.
	eventMu sync.Mutex

	mu       sync.Mutex // guards entries, pending, enabled, funcMask and invalid
	entries  []msixEntry
	pending  []uint64 // the PBA
	enabled  bool     // Message Control: MSI-X Enable
	funcMask bool     // Message Control: Function Mask
	invalid  uint64
}

// NewMSIXTable returns an MSI-X table in its reset state: MSI-X disabled,
// every entry zero with its Mask Bit set, nothing pending.
func NewMSIXTable(cfg MSIXConfig) (*MSIXTable, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("new MSI-X table: %w", err)
	}
	t := &MSIXTable{
		cfg:      cfg,
		listener: cfg.Listener,
		log:      ratelog.New(cfg.Logger),
		entries:  make([]msixEntry, cfg.Vectors),
		pending:  make([]uint64, cfg.pbaSize()/8),
	}
	if t.listener == nil {
		t.listener = nopMSIX{}
	}
	for i := range t.entries {
		t.entries[i].control = entryMasked
	}
	return t, nil
}

type nopMSIX struct{}

func (nopMSIX) MSIXChanged(int, MSIXVector) {}
func (nopMSIX) MSIXSend(int, MSIXVector)    {}

// Config returns the layout the table was created with.
func (t *MSIXTable) Config() MSIXConfig { return t.cfg }

// TableSize returns the size of the table in bytes (16 per vector).
func (t *MSIXTable) TableSize() uint64 { return t.cfg.tableSize() }

// PBASize returns the size of the PBA in bytes (a 64-bit word per 64
// vectors).
func (t *MSIXTable) PBASize() uint64 { return t.cfg.pbaSize() }

// Capability returns the MSI-X capability for the table's layout, with the
// hook that tells the table about writes to Message Control. Add it with
// ConfigSpace.AddMSIX, which also checks the layout against the BARs.
func (t *MSIXTable) Capability() Capability {
	cp, err := MSIXCapability(t.cfg)
	if err != nil {
		return Capability{} // unreachable: NewMSIXTable checked cfg
	}
	cp.OnWrite = t.controlWritten
	return cp
}

// Enabled reports whether the guest has enabled MSI-X.
func (t *MSIXTable) Enabled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.enabled
}

// Vector returns vector i as it now is (zero for an i out of range).
func (t *MSIXTable) Vector(i int) MSIXVector {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.entries) {
		return MSIXVector{}
	}
	return t.vectorLocked(i)
}

// InvalidAccesses counts table and PBA accesses that were dropped.
func (t *MSIXTable) InvalidAccesses() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.invalid
}

// Trigger raises vector i: if it is masked, it sets its pending bit (the
// message goes out when it is unmasked); otherwise it has the listener send
// it. It returns false, doing nothing, when MSI-X is disabled or i is not a
// vector, so that the device can fall back to INTx.
func (t *MSIXTable) Trigger(i int) bool {
	t.eventMu.Lock()
	defer t.eventMu.Unlock()
	t.mu.Lock()
	if !t.enabled || i < 0 || i >= len(t.entries) {
		t.mu.Unlock()
		return false
	}
	v := t.vectorLocked(i)
	if v.Masked {
		t.pending[i/64] |= 1 << (i % 64)
	}
	t.mu.Unlock()
	if !v.Masked {
		t.listener.MSIXSend(i, v)
	}
	return true
}

// vectorLocked returns entry i with its effective mask.
func (t *MSIXTable) vectorLocked(i int) MSIXVector {
	e := t.entries[i]
	return MSIXVector{
		Address: uint64(e.addrHi)<<32 | uint64(e.addrLo),
		Data:    e.data,
		Masked:  !t.enabled || t.funcMask || e.control&entryMasked != 0,
	}
}

// msixEvent is a listener call found under t.mu and made after it.
type msixEvent struct {
	vector int
	v      MSIXVector
	send   bool
}

// updateLocked reports vector i's change from before (if any) and, when it
// has become unmasked with its pending bit set, clears the bit and sends
// it (PCI 3.0 section 6.8.2.10).
func (t *MSIXTable) updateLocked(i int, before MSIXVector, events []msixEvent) []msixEvent {
	now := t.vectorLocked(i)
	if now == before {
		return events
	}
	events = append(events, msixEvent{vector: i, v: now})
	if !now.Masked && t.pending[i/64]&(1<<(i%64)) != 0 {
		t.pending[i/64] &^= 1 << (i % 64)
		events = append(events, msixEvent{vector: i, v: now, send: true})
	}
	return events
}

func (t *MSIXTable) emit(events []msixEvent) {
	for _, e := range events {
		if e.send {
			t.listener.MSIXSend(e.vector, e.v)
		} else {
			t.listener.MSIXChanged(e.vector, e.v)
		}
	}
}

// controlWritten is the capability's OnWrite hook.
func (t *MSIXTable) controlWritten(capability []byte) {
	if len(capability) < msixControl+2 {
		return
	}
	ctrl := binary.LittleEndian.Uint16(capability[msixControl:])
	t.eventMu.Lock()
	defer t.eventMu.Unlock()
	t.mu.Lock()
	enabled, funcMask := ctrl&msixEnable != 0, ctrl&msixFuncMask != 0
	var events []msixEvent
	if enabled != t.enabled || funcMask != t.funcMask {
		before := make([]MSIXVector, len(t.entries))
		for i := range t.entries {
			before[i] = t.vectorLocked(i)
		}
		t.enabled, t.funcMask = enabled, funcMask
		for i := range t.entries {
			events = t.updateLocked(i, before[i], events)
		}
	}
	t.mu.Unlock()
	t.emit(events)
}

// msixAccessOK reports whether an access is an aligned dword or qword
// inside a region of size bytes: "software must use aligned full DWORD or
// aligned full QWORD transactions" (PCI 3.0 section 6.8.2).
func msixAccessOK(offset uint64, n int, size uint64) bool {
	return (n == 4 || n == 8) && offset%uint64(n) == 0 && offset < size && uint64(n) <= size-offset
}

// ReadTable reads the table at offset (from its start). Invalid accesses
// read all ones.
func (t *MSIXTable) ReadTable(offset uint64, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !msixAccessOK(offset, len(data), t.cfg.tableSize()) {
		t.invalidLocked("read", "table", offset, len(data))
		fill(data, 0xff)
		return
	}
	for k := 0; k < len(data); k += 4 {
		off := offset + uint64(k)
		e := t.entries[off/msixEntrySize]
		var v uint32
		switch off % msixEntrySize {
		case entryAddrLo:
			v = e.addrLo
		case entryAddrHi:
			v = e.addrHi
		case entryData:
			v = e.data
		case entryControl:
			v = e.control
		}
		binary.LittleEndian.PutUint32(data[k:], v)
	}
}

// WriteTable writes the table at offset (from its start). Invalid accesses
// are dropped.
func (t *MSIXTable) WriteTable(offset uint64, data []byte) {
	t.eventMu.Lock()
	defer t.eventMu.Unlock()
	t.mu.Lock()
	if !msixAccessOK(offset, len(data), t.cfg.tableSize()) {
		t.invalidLocked("write", "table", offset, len(data))
		t.mu.Unlock()
		return
	}
	// An aligned dword or qword lies within one entry, so a qword write
	// of the address (or of data and control) is one change, not two.
	i := int(offset / msixEntrySize)
	before := t.vectorLocked(i)
	e := &t.entries[i]
	for k := 0; k < len(data); k += 4 {
		off := offset + uint64(k)
		v := binary.LittleEndian.Uint32(data[k:])
		switch off % msixEntrySize {
		case entryAddrLo:
			e.addrLo = v &^ 0x3 // bits 1:0 are zero for DWORD alignment
		case entryAddrHi:
			e.addrHi = v
		case entryData:
			e.data = v
		case entryControl:
			e.control = v & entryMasked // bits 31:1 are reserved
		}
	}
	events := t.updateLocked(i, before, nil)
	t.mu.Unlock()
	t.emit(events)
}

// ReadPBA reads the pending-bit array at offset (from its start). Invalid
// accesses read all ones.
func (t *MSIXTable) ReadPBA(offset uint64, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !msixAccessOK(offset, len(data), t.cfg.pbaSize()) {
		t.invalidLocked("read", "PBA", offset, len(data))
		fill(data, 0xff)
		return
	}
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], t.pending[offset/8])
	copy(data, buf[offset%8:])
}

// WritePBA drops the write: the PBA is read-only ("software should never
// write ... pending bits", PCI 3.0 section 6.8.2.10). It is counted.
func (t *MSIXTable) WritePBA(offset uint64, data []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.invalidLocked("write", "PBA", offset, len(data))
}

func (t *MSIXTable) invalidLocked(op, region string, offset uint64, n int) {
	t.invalid++
	t.log.Warn("pci: invalid MSI-X access", "op", op, "region", region, "offset", fmt.Sprintf("%#x", offset), "len", n)
}

// AddMSIX checks t's table and PBA against this function's BARs (memory
// BARs, large enough) and adds its capability. It returns the capability's
// offset.
func (c *ConfigSpace) AddMSIX(t *MSIXTable) (int, error) {
	if t == nil {
		return 0, fmt.Errorf("add MSI-X capability: nil table: %w", ErrInvalid)
	}
	cfg := t.cfg
	for _, r := range []struct {
		name string
		bar  int
		off  uint32
		size uint64
	}{
		{"table", cfg.TableBAR, cfg.TableOffset, cfg.tableSize()},
		{"PBA", cfg.PBABAR, cfg.PBAOffset, cfg.pbaSize()},
	} {
		b := c.BAR(r.bar)
		if b.Kind != BARMem32 && b.Kind != BARMem64 {
			return 0, fmt.Errorf("add MSI-X capability: %s in BAR %d, not a memory BAR: %w", r.name, r.bar, ErrInvalid)
		}
		if uint64(r.off)+r.size > b.Size {
			return 0, fmt.Errorf("add MSI-X capability: %s [%#x, %#x) past the end of BAR %d (%#x bytes): %w",
				r.name, r.off, uint64(r.off)+r.size, r.bar, b.Size, ErrInvalid)
		}
	}
	return c.AddCapability(t.Capability())
}
