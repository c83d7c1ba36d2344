package pci

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync"
)

// ConfigSize is the size of a conventional PCI function's configuration
// space.
const ConfigSize = 256

// NumBARs is the number of Base Address Registers in a type-0 header.
const NumBARs = 6

// NoAddress is the address a [BARListener] is given for a BAR that does not
// decode. No BAR can decode there: BARs are aligned to their size, which is
// at least 4 bytes.
const NoAddress = ^uint64(0)

// Type-0 header registers (PCI 3.0 section 6.1, figure 6-1).
const (
	regVendorID      = 0x00
	regDeviceID      = 0x02
	regCommand       = 0x04
	regStatus        = 0x06
	regRevisionID    = 0x08
	regClassCode     = 0x09 // 3 bytes: programming interface, subclass, base class
	regCacheLineSize = 0x0c
	regLatencyTimer  = 0x0d
	regHeaderType    = 0x0e
	regBAR0          = 0x10
	regSubsystemVID  = 0x2c
	regSubsystemID   = 0x2e
	regCapabilities  = 0x34
	regInterruptLine = 0x3c
	regInterruptPin  = 0x3d
	capabilitiesBase = 0x40 // first byte after the header
)

// Command register bits (PCI 3.0 section 6.2.2). The model implements the
// ones a virtual PCI function has a use for; the others (special cycles,
// memory write and invalidate, VGA palette snoop, fast back-to-back) are
// hardwired to 0, as the specification allows.
const (
	CommandIOSpace          = 1 << 0
	CommandMemorySpace      = 1 << 1
	CommandBusMaster        = 1 << 2
	CommandParityErrorResp  = 1 << 6
	CommandSERREnable       = 1 << 8
	CommandInterruptDisable = 1 << 10

	commandWritable = CommandIOSpace | CommandMemorySpace | CommandBusMaster |
		CommandParityErrorResp | CommandSERREnable | CommandInterruptDisable
)

// Status register bits (PCI 3.0 section 6.2.3).
const (
	StatusInterrupt    = 1 << 3 // read-only: the function asserts INTx
	StatusCapabilities = 1 << 4 // read-only: the capability list exists
	// Error bits the specification makes "write 1 to clear": master data
	// parity error (8), signaled/received target abort (11, 12), received
	// master abort (13), signaled system error (14), detected parity error
	// (15).
	statusW1C = 1<<8 | 1<<11 | 1<<12 | 1<<13 | 1<<14 | 1<<15
)

// BAR type bits (PCI 3.0 section 6.2.5.1, figures 6-4 and 6-5).
const (
	barIOSpace      = 0x1 // bit 0: I/O space indicator
	barMem64        = 0x4 // bits 2:1 = 10b: 64-bit memory BAR
	barPrefetchable = 0x8 // bit 3
	barMemFlags     = 0xf // bits 3:0 of a memory BAR are read-only
	barIOFlags      = 0x3 // bits 1:0 of an I/O BAR are read-only
)

// BARKind is the kind of address space a BAR requests.
type BARKind uint8

// BAR kinds. A 64-bit memory BAR occupies two BAR slots, index and index+1.
const (
	BARMem32 BARKind = iota + 1
	BARMem64
	BARIO
	barUpper // the high half of a BARMem64, in the slot after it
)

func (k BARKind) String() string {
	switch k {
	case BARMem32:
		return "32-bit memory"
	case BARMem64:
		return "64-bit memory"
	case BARIO:
		return "I/O"
	case barUpper:
		return "upper half of a 64-bit BAR"
	}
	return fmt.Sprintf("BARKind(%d)", uint8(k))
}

// BAR describes one Base Address Register a function implements.
type BAR struct {
	Kind BARKind
	// Size is the size of the region in bytes: a power of two, at least 16
	// for memory and 4 for I/O. PCI 3.0 section 6.2.5.1 limits I/O BARs to
	// 256 bytes and 32-bit memory BARs to 2 GiB.
	Size uint64
	// Prefetchable sets bit 3 of a memory BAR: reads have no side effects.
	Prefetchable bool
}

// BARListener learns where a function's BARs decode.
type BARListener interface {
	// OnBARChange reports that BAR index (for a 64-bit BAR, the index of
	// its low half) stopped decoding at old and now decodes at new. Either
	// is NoAddress when the BAR does not decode (its Command decode bit is
	// clear). Memory addresses are guest-physical; I/O addresses are port
	// numbers below 0x10000. It is called on the goroutine of the vCPU
	// that made the access, without the ConfigSpace's state locked; it may
	// read the ConfigSpace but must not write it.
	OnBARChange(index int, old, new uint64)
}

// BARListenerFunc adapts a function to [BARListener].
type BARListenerFunc func(index int, old, new uint64)

// OnBARChange calls f(index, old, new).
func (f BARListenerFunc) OnBARChange(index int, old, new uint64) { f(index, old, new) }

// Capability is one entry of a function's capability list (PCI 3.0 section
// 6.7).
type Capability struct {
	// ID is the capability ID, the entry's first byte.
	ID uint8
	// Body is what follows the ID and Next Pointer bytes.
	Body []byte
	// WriteMask is nil (the body is read-only) or as long as Body: each 1
	// bit is writable by the guest.
	WriteMask []byte
	// OnWrite, if not nil, is called after every guest write that touches
	// the capability, with a copy of the whole capability as it now is
	// (ID and Next Pointer included, so that field offsets match the
	// specification's tables). It is called like a BARListener.
	OnWrite func(capability []byte)
}

// Header holds the identity of a function: the read-only fields of its
// type-0 header.
type Header struct {
	VendorID uint16 // not 0xffff, which means "no function"
	DeviceID uint16
	// ClassCode is the 24-bit class code: base class << 16 | subclass << 8
	// | programming interface (PCI Code and ID Assignment Specification).
	ClassCode         uint32
	RevisionID        uint8
	SubsystemVendorID uint16
	SubsystemID       uint16
	// InterruptPin is 0 (no INTx) or 1-4 for INTA#-INTD#.
	InterruptPin uint8
}

// capEntry is one capability placed in the configuration space.
type capEntry struct {
	offset, end int // [offset, end) in the configuration space
	onWrite     func([]byte)
}

// barMove is a BAR move found under the state mutex and reported after it.
type barMove struct {
	index    int
	old, new uint64
}

// ConfigSpace is a type-0 configuration space: a header, BARs and a
// capability list. It implements [Function]. Build it with NewConfigSpace,
// AddBAR and AddCapability before the guest sees it; it is safe for
// concurrent use.
type ConfigSpace struct {
	// writeMu serialises guest writes with the listener calls and
	// capability hooks they cause, so that those see changes in order.
	writeMu sync.Mutex

	mu       sync.Mutex // guards everything below
	regs     [ConfigSize]byte
	wmask    [ConfigSize]byte // 1: writable
	w1c      [ConfigSize]byte // 1: write 1 to clear
	bars     [NumBARs]BAR     // Kind 0: unimplemented
	decoding [NumBARs]uint64  // where each BAR decodes, or NoAddress
	caps     []capEntry
	capEnd   int // offset after the last capability
	listener BARListener
	invalid  uint64 // accesses that broke the Function contract
}

var _ Function = (*ConfigSpace)(nil)

// NewConfigSpace returns a configuration space with the given identity, no
// BARs and no capabilities, as after reset: Command zero, so nothing
// decodes.
func NewConfigSpace(h Header) (*ConfigSpace, error) {
	switch {
	case h.VendorID == 0xffff:
		return nil, fmt.Errorf("new PCI configuration space: vendor ID 0xffff: %w", ErrInvalid)
	case h.ClassCode > 0xffffff:
		return nil, fmt.Errorf("new PCI configuration space: class code %#x wider than 24 bits: %w", h.ClassCode, ErrInvalid)
	case h.InterruptPin > 4:
		return nil, fmt.Errorf("new PCI configuration space: interrupt pin %d beyond INTD#: %w", h.InterruptPin, ErrInvalid)
	}
	return newConfigSpace(h), nil
}

// newConfigSpace is NewConfigSpace for a header known to be valid.
func newConfigSpace(h Header) *ConfigSpace {
	c := &ConfigSpace{capEnd: capabilitiesBase}
	le := binary.LittleEndian
	le.PutUint16(c.regs[regVendorID:], h.VendorID)
	le.PutUint16(c.regs[regDeviceID:], h.DeviceID)
	c.regs[regRevisionID] = h.RevisionID
	c.regs[regClassCode] = byte(h.ClassCode)
	c.regs[regClassCode+1] = byte(h.ClassCode >> 8)
	c.regs[regClassCode+2] = byte(h.ClassCode >> 16)
	c.regs[regHeaderType] = 0x00 // type 0, single function
	le.PutUint16(c.regs[regSubsystemVID:], h.SubsystemVendorID)
	le.PutUint16(c.regs[regSubsystemID:], h.SubsystemID)
	c.regs[regInterruptPin] = h.InterruptPin

	le.PutUint16(c.wmask[regCommand:], commandWritable)
	le.PutUint16(c.w1c[regStatus:], statusW1C)
	// Cache Line Size and Latency Timer are read-write for bus masters
	// (section 6.2.4); they change nothing here. Interrupt Line is
	// scratch space for the OS (section 6.2.4).
	c.wmask[regCacheLineSize] = 0xff
	c.wmask[regLatencyTimer] = 0xff
	c.wmask[regInterruptLine] = 0xff
	for i := range c.decoding {
		c.decoding[i] = NoAddress
	}
	return c
}

// AddBAR implements BAR index (0-5; a 64-bit memory BAR takes index and
// index+1) with the given kind and size. Its address starts at 0.
func (c *ConfigSpace) AddBAR(index int, b BAR) error {
	if err := checkBAR(index, b); err != nil {
		return fmt.Errorf("add PCI BAR %d: %w", index, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bars[index].Kind != 0 || (b.Kind == BARMem64 && c.bars[index+1].Kind != 0) {
		return fmt.Errorf("add PCI BAR %d (%s): %w", index, b.Kind, ErrInUse)
	}
	le := binary.LittleEndian
	reg := regBAR0 + 4*index
	sizeMask := ^(b.Size - 1)
	switch b.Kind {
	case BARIO:
		// Hardwire bits 31:16 to zero (section 6.2.5.1 allows it for
		// functions that decode only 64 KiB of I/O space): x86 ports are
		// 16-bit.
		le.PutUint32(c.regs[reg:], barIOSpace)
		le.PutUint32(c.wmask[reg:], uint32(sizeMask)&0xffff&^barIOFlags)
	case BARMem32, BARMem64:
		flags := uint32(0)
		if b.Kind == BARMem64 {
			flags |= barMem64
		}
		if b.Prefetchable {
			flags |= barPrefetchable
		}
		le.PutUint32(c.regs[reg:], flags)
		le.PutUint32(c.wmask[reg:], uint32(sizeMask)&^barMemFlags)
		if b.Kind == BARMem64 {
			le.PutUint32(c.wmask[reg+4:], uint32(sizeMask>>32))
			c.bars[index+1] = BAR{Kind: barUpper}
		}
	}
	c.bars[index] = b
	return nil
}

func checkBAR(index int, b BAR) error {
	last := NumBARs - 1
	if b.Kind == BARMem64 {
		last--
	}
	if index < 0 || index > last {
		return fmt.Errorf("index out of range for a %s BAR: %w", b.Kind, ErrInvalid)
	}
	var lo, hi uint64
	switch b.Kind {
	case BARMem32:
		lo, hi = 16, 1<<31
	case BARMem64:
		lo, hi = 16, 1<<63
	case BARIO:
		lo, hi = 4, 256
		if b.Prefetchable {
			return fmt.Errorf("prefetchable I/O BAR: %w", ErrInvalid)
		}
	default:
		return fmt.Errorf("kind %s: %w", b.Kind, ErrInvalid)
	}
	if b.Size < lo || b.Size > hi || bits.OnesCount64(b.Size) != 1 {
		return fmt.Errorf("%s BAR size %#x: want a power of two in [%#x, %#x]: %w", b.Kind, b.Size, lo, hi, ErrInvalid)
	}
	return nil
}

// SetBARListener sets the listener told about BAR moves (nil: nobody).
func (c *ConfigSpace) SetBARListener(l BARListener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listener = l
}

// BAR returns the description of BAR index, with Kind 0 if it is not
// implemented (or is the upper half of a 64-bit BAR).
func (c *ConfigSpace) BAR(index int) BAR {
	if index < 0 || index >= NumBARs {
		return BAR{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bars[index].Kind == barUpper {
		return BAR{}
	}
	return c.bars[index]
}

// BARAddress returns the address programmed into BAR index and whether the
// BAR decodes there (its Command decode bit is set). It returns 0, false
// for a BAR that is not implemented.
func (c *ConfigSpace) BARAddress(index int) (addr uint64, decoding bool) {
	if index < 0 || index >= NumBARs {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if k := c.bars[index].Kind; k == 0 || k == barUpper {
		return 0, false
	}
	return c.barAddressLocked(index), c.decoding[index] != NoAddress
}

// SetBARAddress programs BAR index with addr, as firmware would before the
// guest runs. addr must be aligned to the BAR's size and fit its kind. The
// listener is told if the BAR moves (that is, if it decodes).
func (c *ConfigSpace) SetBARAddress(index int, addr uint64) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.mu.Lock()
	if index < 0 || index >= NumBARs || c.bars[index].Kind == 0 || c.bars[index].Kind == barUpper {
		c.mu.Unlock()
		return fmt.Errorf("set PCI BAR %d address: no such BAR: %w", index, ErrInvalid)
	}
	b := c.bars[index]
	limit := uint64(1) << 32
	switch b.Kind {
	case BARIO:
		limit = 1 << 16
	case BARMem64:
		limit = 0 // the whole 64-bit space
	}
	if addr&(b.Size-1) != 0 || (limit != 0 && addr > limit-b.Size) {
		c.mu.Unlock()
		return fmt.Errorf("set PCI BAR %d address %#x: not a %#x-aligned %s address: %w", index, addr, b.Size, b.Kind, ErrInvalid)
	}
	le := binary.LittleEndian
	reg := regBAR0 + 4*index
	flags := le.Uint32(c.regs[reg:]) & barMemFlags
	if b.Kind == BARIO {
		flags &= barIOFlags
	}
	le.PutUint32(c.regs[reg:], uint32(addr)|flags)
	if b.Kind == BARMem64 {
		le.PutUint32(c.regs[reg+4:], uint32(addr>>32))
	}
	moves := c.barMovesLocked()
	l := c.listener
	c.mu.Unlock()
	notifyBARs(l, moves)
	return nil
}

// Command returns the Command register.
func (c *ConfigSpace) Command() uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return binary.LittleEndian.Uint16(c.regs[regCommand:])
}

// InterruptLine returns the Interrupt Line register, the IRQ the guest's
// OS believes INTx is routed to.
func (c *ConfigSpace) InterruptLine() uint8 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.regs[regInterruptLine]
}

// SetInterruptLine sets the Interrupt Line register, as firmware does to
// tell the OS which interrupt controller input INTx reaches: without an
// ACPI _PRT, Linux takes INTx's IRQ from this register.
func (c *ConfigSpace) SetInterruptLine(line uint8) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.regs[regInterruptLine] = line
}

// SetInterruptStatus sets or clears Status bit 3, which a function sets
// while it asserts INTx (independently of Command bit 10, Interrupt
// Disable, which stops the assertion from reaching the pin).
func (c *ConfigSpace) SetInterruptStatus(asserted bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if asserted {
		c.regs[regStatus] |= StatusInterrupt
	} else {
		c.regs[regStatus] &^= StatusInterrupt
	}
}

// InvalidAccesses counts ReadConfig and WriteConfig calls outside the
// Function contract (sizes other than 1, 2, 4; unaligned; beyond 256
// bytes). Host never makes them; a wrapper might.
func (c *ConfigSpace) InvalidAccesses() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.invalid
}

// AddCapability appends cp to the capability list and returns its offset
// in the configuration space. Capabilities are placed from 0x40 on, each
// at a dword boundary.
func (c *ConfigSpace) AddCapability(cp Capability) (int, error) {
	if cp.WriteMask != nil && len(cp.WriteMask) != len(cp.Body) {
		return 0, fmt.Errorf("add PCI capability %#02x: write mask of %d bytes for a body of %d: %w",
			cp.ID, len(cp.WriteMask), len(cp.Body), ErrInvalid)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	off := c.capEnd
	end := off + 2 + len(cp.Body)
	if end > ConfigSize {
		return 0, fmt.Errorf("add PCI capability %#02x of %d bytes at %#x: %w", cp.ID, 2+len(cp.Body), off, ErrNoSpace)
	}
	c.regs[off] = cp.ID
	c.regs[off+1] = 0 // end of list, until another is added
	copy(c.regs[off+2:end], cp.Body)
	if cp.WriteMask != nil {
		copy(c.wmask[off+2:end], cp.WriteMask)
	}
	if len(c.caps) == 0 {
		c.regs[regCapabilities] = byte(off)
		c.regs[regStatus] |= StatusCapabilities
	} else {
		c.regs[c.caps[len(c.caps)-1].offset+1] = byte(off)
	}
	c.caps = append(c.caps, capEntry{offset: off, end: end, onWrite: cp.OnWrite})
	c.capEnd = (end + 3) &^ 3
	return off, nil
}

// ReadConfig reads the configuration space. Accesses outside the Function
// contract read all ones.
func (c *ConfigSpace) ReadConfig(offset uint64, data []byte) {
	ok := validConfigAccess(offset, len(data))
	c.mu.Lock()
	defer c.mu.Unlock()
	if !ok {
		c.invalid++
		fill(data, 0xff)
		return
	}
	copy(data, c.regs[offset:])
}

// WriteConfig writes the configuration space through its write masks, then
// tells the BAR listener about BAR moves and calls the hooks of the
// capabilities written. Accesses outside the Function contract are
// dropped.
func (c *ConfigSpace) WriteConfig(offset uint64, data []byte) {
	if !validConfigAccess(offset, len(data)) {
		c.mu.Lock()
		c.invalid++
		c.mu.Unlock()
		return
	}
	c.writeMu.Lock()
	defer c.writeMu.Unlock()

	c.mu.Lock()
	start, end := int(offset), int(offset)+len(data)
	for i, v := range data {
		r := start + i
		c.regs[r] = (c.regs[r]&^c.wmask[r] | v&c.wmask[r]) &^ (v & c.w1c[r])
	}
	moves := c.barMovesLocked()
	l := c.listener
	type hook struct {
		fn    func([]byte)
		bytes []byte
	}
	var hooks []hook
	for _, cp := range c.caps {
		if cp.onWrite != nil && start < cp.end && cp.offset < end {
			hooks = append(hooks, hook{cp.onWrite, append([]byte(nil), c.regs[cp.offset:cp.end]...)})
		}
	}
	c.mu.Unlock()

	notifyBARs(l, moves)
	for _, h := range hooks {
		h.fn(h.bytes)
	}
}

// validConfigAccess reports whether an access keeps the Function contract.
func validConfigAccess(offset uint64, n int) bool {
	return (n == 1 || n == 2 || n == 4) && offset%uint64(n) == 0 && offset < ConfigSize && offset+uint64(n) <= ConfigSize
}

// barAddressLocked returns the address programmed into implemented BAR i.
func (c *ConfigSpace) barAddressLocked(i int) uint64 {
	le := binary.LittleEndian
	reg := regBAR0 + 4*i
	lo := uint64(le.Uint32(c.regs[reg:]))
	switch c.bars[i].Kind {
	case BARIO:
		return lo &^ barIOFlags
	case BARMem64:
		return lo&^barMemFlags | uint64(le.Uint32(c.regs[reg+4:]))<<32
	default:
		return lo &^ barMemFlags
	}
}

// barMovesLocked recomputes where each BAR decodes and returns the moves
// since the last call.
func (c *ConfigSpace) barMovesLocked() []barMove {
	var moves []barMove
	cmd := binary.LittleEndian.Uint16(c.regs[regCommand:])
	for i, b := range c.bars {
		now := NoAddress
		switch {
		case b.Kind == BARIO && cmd&CommandIOSpace != 0,
			(b.Kind == BARMem32 || b.Kind == BARMem64) && cmd&CommandMemorySpace != 0:
			now = c.barAddressLocked(i)
		case b.Kind == 0 || b.Kind == barUpper:
			continue
		}
		if now != c.decoding[i] {
			moves = append(moves, barMove{index: i, old: c.decoding[i], new: now})
			c.decoding[i] = now
		}
	}
	return moves
}

func notifyBARs(l BARListener, moves []barMove) {
	if l == nil {
		return
	}
	for _, m := range moves {
		l.OnBARChange(m.index, m.old, m.new)
	}
}
