package pci

import (
	"encoding/binary"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/internal/devtest"
)

// cfgAccess is one configuration access a recordFn saw.
type cfgAccess = devtest.Access

// recordFn is a Function that records accesses and reads as its fill byte.
type recordFn struct{ devtest.Recorder }

func (r *recordFn) ReadConfig(offset uint64, data []byte)  { r.Read(offset, data) }
func (r *recordFn) WriteConfig(offset uint64, data []byte) { r.Write(offset, data) }

// byteReg is a one-byte register that records writes.
type byteReg struct {
	v      byte
	writes []byte
}

func (r *byteReg) Read(offset uint64, data []byte) { data[0] = r.v }
func (r *byteReg) Write(offset uint64, data []byte) {
	r.v = data[0]
	r.writes = append(r.writes, data[0])
}

// port is anything with the devices.Device methods.
type port interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

func inl(d port, off uint64) uint32 {
	b := make([]byte, 4)
	d.Read(off, b)
	return binary.LittleEndian.Uint32(b)
}

func outl(d port, off uint64, v uint32) {
	d.Write(off, binary.LittleEndian.AppendUint32(nil, v))
}

// confAddr is Linux's PCI_CONF1_ADDRESS(bus, devfn, reg), with AMD's
// extended register bits.
func confAddr(bus, dev, fn, reg int) uint32 {
	return 0x80000000 | uint32(reg&0xf00)<<16 | uint32(bus)<<16 | uint32(dev)<<11 | uint32(fn)<<8 | uint32(reg&0xfc)
}

// confRead is Linux's pci_conf1_read: CONFIG_ADDRESS, then an access of n
// bytes at 0xcfc + (reg & 3).
func confRead(h *Host, bus, dev, fn, reg, n int) uint32 {
	outl(h, offAddress, confAddr(bus, dev, fn, reg))
	b := make([]byte, 4)
	h.Read(offData+uint64(reg&3), b[:n])
	return binary.LittleEndian.Uint32(b)
}

// confWrite is Linux's pci_conf1_write.
func confWrite(h *Host, bus, dev, fn, reg, n int, v uint32) {
	outl(h, offAddress, confAddr(bus, dev, fn, reg))
	h.Write(offData+uint64(reg&3), binary.LittleEndian.AppendUint32(nil, v)[:n])
}

// cfgRead and cfgWrite access a Function directly.
func cfgRead(f Function, reg uint64, n int) uint32 {
	b := make([]byte, 4)
	f.ReadConfig(reg, b[:n])
	return binary.LittleEndian.Uint32(b)
}

func cfgWrite(f Function, reg uint64, n int, v uint32) {
	f.WriteConfig(reg, binary.LittleEndian.AppendUint32(nil, v)[:n])
}

// barMoveLog is a BARListener that records moves.
type barMoveLog struct {
	mu    sync.Mutex // guards moves
	moves []barMove
}

func (l *barMoveLog) OnBARChange(index int, old, new uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.moves = append(l.moves, barMove{index: index, old: old, new: new})
}

// take returns the moves seen since the last call.
func (l *barMoveLog) take() []barMove {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.moves
	l.moves = nil
	return m
}

// msixLog is an MSIXListener that records calls.
type msixLog struct {
	mu     sync.Mutex // guards events
	events []msixEvent
}

func (l *msixLog) MSIXChanged(vector int, v MSIXVector) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, msixEvent{vector: vector, v: v})
}

func (l *msixLog) MSIXSend(vector int, v MSIXVector) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, msixEvent{vector: vector, v: v, send: true})
}

func (l *msixLog) take() []msixEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.events
	l.events = nil
	return e
}

// Layout of the virtio-like test function built by newVirtioFunction.
const (
	testVendor   = 0x1af4 // Red Hat, Inc. (virtio)
	testDevice   = 0x1042 // virtio 1.x block device
	testClass    = 0x018000
	testMSIXBAR  = 2
	testVectors  = 3
	testPBAOff   = 0x800
	testIOBAR    = 3
	testBAR0Size = 0x4000
)

// virtioFunction is a function laid out like a modern virtio-pci device:
// BAR 0 (64-bit) holds the virtio structures, BAR 2 the MSI-X table and
// PBA, BAR 3 an I/O range.
type virtioFunction struct {
	cs      *ConfigSpace
	msix    *MSIXTable
	bars    *barMoveLog
	vectors *msixLog
	caps    map[VirtioCapType]int // capability offsets
	msixCap int
}

func newVirtioFunction(t testing.TB) *virtioFunction {
	t.Helper()
	cs, err := NewConfigSpace(Header{
		VendorID: testVendor, DeviceID: testDevice, ClassCode: testClass, RevisionID: 1,
		SubsystemVendorID: testVendor, SubsystemID: 0x40, InterruptPin: 1,
	})
	require.NoError(t, err)
	f := &virtioFunction{cs: cs, bars: &barMoveLog{}, vectors: &msixLog{}, caps: map[VirtioCapType]int{}}
	cs.SetBARListener(f.bars)
	require.NoError(t, cs.AddBAR(0, BAR{Kind: BARMem64, Size: testBAR0Size, Prefetchable: true}))
	require.NoError(t, cs.AddBAR(testMSIXBAR, BAR{Kind: BARMem32, Size: 0x1000}))
	require.NoError(t, cs.AddBAR(testIOBAR, BAR{Kind: BARIO, Size: 0x20}))
	for _, c := range []VirtioCap{
		{Type: VirtioCommonCfg, Offset: 0x0000, Length: 0x40},
		{Type: VirtioISRCfg, Offset: 0x1000, Length: 1},
		{Type: VirtioDeviceCfg, Offset: 0x2000, Length: 0x3c},
		{Type: VirtioNotifyCfg, Offset: 0x3000, Length: 0x1000, NotifyOffMultiplier: 4},
		{Type: VirtioPCICfg},
	} {
		cp, err := VirtioCapability(c)
		require.NoError(t, err)
		f.caps[c.Type], err = cs.AddCapability(cp)
		require.NoError(t, err)
	}
	f.msix, err = NewMSIXTable(MSIXConfig{
		Vectors: testVectors, TableBAR: testMSIXBAR, PBABAR: testMSIXBAR, PBAOffset: testPBAOff,
		Listener: f.vectors, Logger: quietLogger(),
	})
	require.NoError(t, err)
	f.msixCap, err = cs.AddMSIX(f.msix)
	require.NoError(t, err)
	return f
}

// quietLogger discards everything, for tests that misbehave on purpose.
func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
