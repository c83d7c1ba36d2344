package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/govmm/govmm/devices"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/internal/ratelog"
)

// DeviceType is a virtio device ID (virtio 1.2 section 5).
type DeviceType uint16

const (
	TypeNet   DeviceType = 1
	TypeBlock DeviceType = 2
)

// Feature bits the transport handles (virtio 1.2 section 6).
const (
	FeatureIndirectDesc = 1 << 28 // VIRTIO_F_INDIRECT_DESC
	FeatureEventIdx     = 1 << 29 // VIRTIO_F_EVENT_IDX
	FeatureVersion1     = 1 << 32 // VIRTIO_F_VERSION_1
)

// Device status bits (virtio 1.2 section 2.1).
const (
	StatusAcknowledge      = 1
	StatusDriver           = 2
	StatusDriverOK         = 4
	StatusFeaturesOK       = 8
	StatusDeviceNeedsReset = 64
	StatusFailed           = 128
)

// NoVector is VIRTIO_MSI_NO_VECTOR: no MSI-X vector for this event.
const NoVector = 0xffff

// Backend is one virtio device type (block, net) behind the transport.
type Backend interface {
	// Type is the virtio device ID.
	Type() DeviceType
	// Features are the device-type feature bits the device offers; the
	// transport adds VERSION_1, INDIRECT_DESC and EVENT_IDX.
	Features() uint64
	// QueueSizes gives each queue's maximum size (a power of two).
	QueueSizes() []uint16
	// ConfigSize is the size of the device-specific configuration, which
	// ReadConfig and WriteConfig serve (offsets from its start; accesses
	// the guest makes, unchecked beyond lying within ConfigSize).
	ConfigSize() int
	ReadConfig(offset uint64, data []byte)
	WriteConfig(offset uint64, data []byte)
	// Activate starts the device when the driver sets DRIVER_OK.
	Activate(a *Activation) error
	// Reset stops the device: when it returns, no worker of it runs and
	// no request of it is in flight, and Activate may be called again.
	Reset()
}

// Activation is what a backend works with between DRIVER_OK and reset.
type Activation struct {
	// Features are the negotiated feature bits.
	Features uint64
	// Queues holds the queues the driver enabled (nil for the others).
	Queues []*Queue
	// Kicks are signalled when the driver notifies the matching queue.
	Kicks []*EventFD
	// Interrupt sends queue i's interrupt. The backend calls it after
	// Push when Queue.NeedsInterrupt says so.
	Interrupt func(queue int)
	// Fail reports a driver error the device found (a *GuestError from a
	// queue, or a malformed request): the device needs a reset.
	Fail func(err error)
}

// BAR0 layout: the capabilities below point into it. Each structure gets a
// page of its own, as other VMMs lay it out, so that none can grow into
// another.
const (
	commonOffset = 0x0000
	commonSize   = 0x40 // struct virtio_pci_common_cfg is 60 bytes (virtio 1.2 section 4.1.4.3)
	isrOffset    = 0x1000
	isrSize      = 4
	deviceOffset = 0x2000
	deviceMax    = 0x1000
	notifyOffset = 0x3000
	notifyMult   = 4 // queue i notifies at notifyOffset + 4*i
	msixOffset   = 0x4000
	pbaOffset    = 0x5000
	// BARSize is the size of BAR0.
	BARSize = 0x8000
	// MaxQueues bounds the queues one device may have: their notify
	// addresses must fit their page.
	MaxQueues = 0x1000 / notifyMult
)

// NotifyPortsBAR is the I/O BAR of the second notification area: queue i
// notifies at port base + 2*i. The capability list names it before BAR0's,
// so a driver that takes the first notification structure it can map (as
// Linux does, drivers/virtio/virtio_pci_modern_dev.c) notifies by OUT.
//
// Why ports: an OUT exit tells the hypervisor the port, the width and, on
// AMD (SVM's IOIO exit information), where the next instruction starts, so
// KVM signals the ioeventfd without looking at the instruction. A store to
// an MMIO page on AMD arrives as a nested page fault with neither: KVM
// fetches and decodes the guest's instruction on every notification,
// which under a nested or software CPU costs a large part of what the
// notification does. (QEMU offers the same as virtio-pci's
// modern-pio-notify, off by default.)
const (
	NotifyPortsBAR = 2
	notifyPortMult = 2
	// maxPortQueues is the most queues the I/O BAR covers: an I/O BAR is
	// at most 256 ports (PCI Local Bus 3.0 section 6.2.5.1).
	maxPortQueues = 256 / notifyPortMult
)

// PCI identity of modern virtio devices (virtio 1.2 section 4.1.2).
const (
	pciVendorID     = 0x1af4
	pciDeviceIDBase = 0x1040
)

// PCIConfig configures a PCIDevice.
type PCIConfig struct {
	Backend Backend
	Memory  Memory
	// ClassCode is the PCI class code (for example 0x018000 for a block
	// device, 0x020000 for Ethernet).
	ClassCode uint32
	// INTx drives the legacy interrupt when the driver does not enable
	// MSI-X; nil means the device has no INTx pin.
	INTx devices.IRQLine
	// MSIX delivers MSI-X messages (the VMM's GSI routing and irqfds).
	MSIX   pci.MSIXListener
	Logger *slog.Logger
}

// queueRegs are one queue's registers in the common configuration.
type queueRegs struct {
	size, maxSize       uint16
	vector              uint16
	enabled             bool
	desc, driver, devic uint64
}

// PCIDevice is the virtio 1.x PCI transport (virtio 1.2 section 4.1) in
// front of a Backend: its configuration space, BAR0 holding the common
// configuration, ISR status, device configuration, notification area and
// MSI-X table, and an I/O BAR with a second notification area (see
// NotifyPortsBAR). It implements devices.Device for BAR0 (offsets from the
// BAR's start); NotifyPorts serves the I/O BAR.
type PCIDevice struct {
	backend Backend
	mem     Memory
	intx    devices.IRQLine
	log     *ratelog.Logger
	space   *pci.ConfigSpace
	msix    *pci.MSIXTable
	kicks   []*EventFD
	// portsSize is the size of the I/O BAR of notification ports (0: the
	// device has too many queues for one).
	portsSize uint64
	pciCfg    int // offset of the VIRTIO_PCI_CAP_PCI_CFG capability
	// notifyExits counts queue notifications that reached user space:
	// with the VMM's ioeventfds in place, the guest's 2-byte notify
	// writes never do.
	notifyExits atomic.Uint64

	// transition serialises status changes that call the backend
	// (activation, reset), which must not run with mu held: a backend's
	// worker may be inside Interrupt or Fail, which take mu.
	transition sync.Mutex

	mu             sync.Mutex // guards the registers below
	status         uint8
	deviceFeatSel  uint32
	driverFeatSel  uint32
	driverFeatures uint64
	configVector   uint16
	queueSel       uint16
	queues         []queueRegs
	isr            uint8
	generation     uint8
	active         bool
}

// NewPCIDevice builds the transport for cfg.Backend.
func NewPCIDevice(cfg PCIConfig) (*PCIDevice, error) {
	b := cfg.Backend
	sizes := b.QueueSizes()
	if len(sizes) == 0 || len(sizes) > MaxQueues {
		return nil, fmt.Errorf("virtio-pci: %d queues: need 1 to %d", len(sizes), MaxQueues)
	}
	if b.ConfigSize() > deviceMax {
		return nil, fmt.Errorf("virtio-pci: device configuration of %d bytes is larger than %d", b.ConfigSize(), deviceMax)
	}
	d := &PCIDevice{backend: b, mem: cfg.Memory, intx: cfg.INTx, log: ratelog.New(cfg.Logger)}
	for i, s := range sizes {
		if s == 0 || s&(s-1) != 0 || s > MaxQueueSize {
			return nil, fmt.Errorf("virtio-pci: queue %d: size %d is not a power of two up to %d", i, s, MaxQueueSize)
		}
		k, err := NewEventFD()
		if err != nil {
			d.closeKicks()
			return nil, fmt.Errorf("virtio-pci: queue %d: %w", i, err)
		}
		d.kicks = append(d.kicks, k)
	}
	d.resetRegs()

	var pin uint8
	if cfg.INTx != nil {
		pin = 1 // INTA#
	}
	space, err := pci.NewConfigSpace(pci.Header{
		VendorID:          pciVendorID,
		DeviceID:          pciDeviceIDBase + uint16(b.Type()),
		ClassCode:         cfg.ClassCode,
		RevisionID:        1, // a modern-only device (section 4.1.2.1)
		SubsystemVendorID: pciVendorID,
		SubsystemID:       pciDeviceIDBase + uint16(b.Type()),
		InterruptPin:      pin,
	})
	if err != nil {
		d.closeKicks()
		return nil, fmt.Errorf("virtio-pci: %w", err)
	}
	d.space = space
	if err := d.buildConfigSpace(cfg, len(sizes)); err != nil {
		d.closeKicks()
		return nil, fmt.Errorf("virtio-pci: %w", err)
	}
	return d, nil
}

func (d *PCIDevice) buildConfigSpace(cfg PCIConfig, queues int) error {
	if err := d.space.AddBAR(0, pci.BAR{Kind: pci.BARMem32, Size: BARSize}); err != nil {
		return err
	}
	caps := []pci.VirtioCap{
		{Type: pci.VirtioCommonCfg, Offset: commonOffset, Length: commonSize},
		{Type: pci.VirtioISRCfg, Offset: isrOffset, Length: isrSize},
	}
	if queues <= maxPortQueues {
		// The smallest I/O BAR (4 ports, a power of two) that holds every
		// queue's port.
		d.portsSize = 4
		for d.portsSize < uint64(notifyPortMult*queues) {
			d.portsSize *= 2
		}
		if err := d.space.AddBAR(NotifyPortsBAR, pci.BAR{Kind: pci.BARIO, Size: d.portsSize}); err != nil {
			return err
		}
		caps = append(caps, pci.VirtioCap{Type: pci.VirtioNotifyCfg, BAR: NotifyPortsBAR,
			Length: uint64(notifyPortMult * queues), NotifyOffMultiplier: notifyPortMult})
	}
	caps = append(caps, pci.VirtioCap{Type: pci.VirtioNotifyCfg, Offset: notifyOffset,
		Length: uint64(notifyMult * queues), NotifyOffMultiplier: notifyMult})
	if n := d.backend.ConfigSize(); n > 0 {
		caps = append(caps, pci.VirtioCap{Type: pci.VirtioDeviceCfg, Offset: deviceOffset, Length: uint64(n)})
	}
	caps = append(caps, pci.VirtioCap{Type: pci.VirtioPCICfg})
	for _, c := range caps {
		cp, err := pci.VirtioCapability(c)
		if err != nil {
			return err
		}
		off, err := d.space.AddCapability(cp)
		if err != nil {
			return err
		}
		if c.Type == pci.VirtioPCICfg {
			d.pciCfg = off
		}
	}
	msix, err := pci.NewMSIXTable(pci.MSIXConfig{
		Vectors:  queues + 1, // one per queue and one for configuration changes
		TableBAR: 0, TableOffset: msixOffset, PBABAR: 0, PBAOffset: pbaOffset,
		Listener: cfg.MSIX, Logger: cfg.Logger,
	})
	if err != nil {
		return err
	}
	if _, err := d.space.AddMSIX(msix); err != nil {
		return err
	}
	d.msix = msix
	return nil
}

func (d *PCIDevice) closeKicks() {
	for _, k := range d.kicks {
		k.Close()
	}
}

// resetRegs puts the registers in their reset state. d.mu is held (or d is
// not yet shared).
func (d *PCIDevice) resetRegs() {
	sizes := d.backend.QueueSizes()
	d.status, d.deviceFeatSel, d.driverFeatSel, d.driverFeatures = 0, 0, 0, 0
	d.configVector, d.queueSel, d.isr, d.active = NoVector, 0, 0, false
	d.queues = make([]queueRegs, len(sizes))
	for i, s := range sizes {
		d.queues[i] = queueRegs{size: s, maxSize: s, vector: NoVector}
	}
	if d.intx != nil {
		d.intx.SetLevel(false)
	}
}

// ConfigSpace is the device's PCI configuration space, to register on the
// PCI host (it implements pci.Function with the VIRTIO_PCI_CAP_PCI_CFG
// window; see PCIFunction).
func (d *PCIDevice) ConfigSpace() *pci.ConfigSpace { return d.space }

// Kicks returns each queue's eventfd, with the offsets in BAR0 and in the
// I/O BAR NotifyPortsBAR (if the device has it) whose writes signal it, for
// the VMM to register as ioeventfds (2-byte writes, any value: section
// 4.1.4.4 has the driver write the queue index there).
func (d *PCIDevice) Kicks() []Kick {
	var out []Kick
	for i, k := range d.kicks {
		out = append(out, Kick{BAR: 0, Offset: notifyOffset + notifyMult*uint64(i), Len: 2, EventFD: k})
		if d.portsSize > 0 {
			out = append(out, Kick{BAR: NotifyPortsBAR, Offset: notifyPortMult * uint64(i), Len: 2, EventFD: k})
		}
	}
	return out
}

// NotifyPorts is the device behind the I/O BAR NotifyPortsBAR (offsets from
// its start), for the VMM to map where the BAR is; nil if the device has
// no such BAR. A write reaches it only when no ioeventfd took it.
func (d *PCIDevice) NotifyPorts() devices.Device {
	if d.portsSize == 0 {
		return nil
	}
	return notifyPorts{d}
}

// NotifyPortsSize is the size of the I/O BAR NotifyPortsBAR (0: none).
func (d *PCIDevice) NotifyPortsSize() uint64 { return d.portsSize }

type notifyPorts struct{ d *PCIDevice }

func (p notifyPorts) Read(_ uint64, data []byte) { clear(data) } // write-only

func (p notifyPorts) Write(offset uint64, data []byte) {
	if !inRange(offset, data, 0, notifyPortMult*uint64(len(p.d.kicks))) {
		p.d.log.Debug("virtio-pci: write to nothing in the notification ports", "offset", offset, "len", len(data))
		return
	}
	p.d.notify(offset / notifyPortMult)
}

// NotifyExits counts queue notifications that reached the device through
// the bus rather than an ioeventfd.
func (d *PCIDevice) NotifyExits() uint64 { return d.notifyExits.Load() }

// Kick is one queue's notification address and eventfd.
type Kick struct {
	BAR     int    // 0 (memory) or NotifyPortsBAR (I/O)
	Offset  uint64 // in the BAR
	Len     uint32
	EventFD *EventFD
}

// Close resets the device (stopping its backend) and frees its eventfds.
func (d *PCIDevice) Close() error {
	d.reset()
	var errs []error
	for _, k := range d.kicks {
		errs = append(errs, k.Close())
	}
	return errors.Join(errs...)
}

// Read serves a load from BAR0.
func (d *PCIDevice) Read(offset uint64, data []byte) {
	switch {
	case inRange(offset, data, commonOffset, commonSize):
		d.readCommon(offset-commonOffset, data)
	case inRange(offset, data, isrOffset, isrSize):
		d.readISR(offset-isrOffset, data)
	case inRange(offset, data, deviceOffset, uint64(d.backend.ConfigSize())):
		d.backend.ReadConfig(offset-deviceOffset, data)
	case inRange(offset, data, msixOffset, d.msix.TableSize()):
		d.msix.ReadTable(offset-msixOffset, data)
	case inRange(offset, data, pbaOffset, d.msix.PBASize()):
		d.msix.ReadPBA(offset-pbaOffset, data)
	default:
		// The notification area reads as zero too: it is write-only.
		clear(data)
	}
}

// Write serves a store to BAR0.
func (d *PCIDevice) Write(offset uint64, data []byte) {
	switch {
	case inRange(offset, data, commonOffset, commonSize):
		d.writeCommon(offset-commonOffset, data)
	case inRange(offset, data, notifyOffset, notifyMult*uint64(len(d.kicks))):
		d.notify((offset - notifyOffset) / notifyMult)
	case inRange(offset, data, deviceOffset, uint64(d.backend.ConfigSize())):
		d.backend.WriteConfig(offset-deviceOffset, data)
	case inRange(offset, data, msixOffset, d.msix.TableSize()):
		d.msix.WriteTable(offset-msixOffset, data)
	case inRange(offset, data, pbaOffset, d.msix.PBASize()):
		d.msix.WritePBA(offset-pbaOffset, data)
	default:
		d.log.Debug("virtio-pci: write to nothing in BAR0", "offset", fmt.Sprintf("%#x", offset), "len", len(data))
	}
}

func inRange(offset uint64, data []byte, base, size uint64) bool {
	return offset >= base && offset-base < size && uint64(len(data)) <= size-(offset-base)
}

// notify handles a queue notification that reached user space (no
// ioeventfd is registered at the address, or the write's width differs).
func (d *PCIDevice) notify(queue uint64) {
	d.notifyExits.Add(1)
	if err := d.kicks[queue].Signal(); err != nil {
		d.log.Warn("virtio-pci: queue notification", "queue", queue, "err", err)
	}
}

func (d *PCIDevice) readISR(offset uint64, data []byte) {
	clear(data)
	if offset != 0 {
		return
	}
	// Reading the ISR status clears it and deasserts INTx (section
	// 4.1.4.5).
	d.mu.Lock()
	data[0] = d.isr
	d.isr = 0
	if d.intx != nil {
		d.intx.SetLevel(false)
	}
	d.mu.Unlock()
}

// Interrupt raises queue's interrupt: its MSI-X vector when MSI-X is on,
// INTx otherwise.
func (d *PCIDevice) Interrupt(queue int) {
	d.mu.Lock()
	vector := uint16(NoVector)
	if queue >= 0 && queue < len(d.queues) {
		vector = d.queues[queue].vector
	}
	d.mu.Unlock()
	d.raise(vector, 1)
}

// raise sends vector, or sets isrBit and asserts INTx when MSI-X is off.
func (d *PCIDevice) raise(vector uint16, isrBit uint8) {
	if d.msix.Enabled() {
		if vector != NoVector {
			d.msix.Trigger(int(vector))
		}
		return
	}
	d.mu.Lock()
	d.isr |= isrBit
	if d.intx != nil {
		d.intx.SetLevel(true)
	}
	d.mu.Unlock()
}

// fail marks the device as needing a reset after a driver error and tells
// the driver through a configuration change interrupt (section 2.1.2).
func (d *PCIDevice) fail(err error) {
	d.log.Warn("virtio-pci: device needs reset", "type", d.backend.Type(), "err", err)
	d.mu.Lock()
	d.status |= StatusDeviceNeedsReset
	vector := d.configVector
	d.mu.Unlock()
	d.raise(vector, 2)
}

// NeedsReset reports whether the device is in DEVICE_NEEDS_RESET.
func (d *PCIDevice) NeedsReset() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status&StatusDeviceNeedsReset != 0
}

// Status returns the device status register.
func (d *PCIDevice) Status() uint8 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.status
}

func (d *PCIDevice) offeredFeatures() uint64 {
	return d.backend.Features() | FeatureVersion1 | FeatureIndirectDesc | FeatureEventIdx
}

// PCIFunction is what to register on the PCI host: the configuration space
// with the VIRTIO_PCI_CAP_PCI_CFG window (section 4.1.4.9) made live: a
// read or write of its pci_cfg_data reaches BAR0 at the offset and width the
// driver put in the capability.
func (d *PCIDevice) PCIFunction() pci.Function { return cfgWindow{d} }

type cfgWindow struct{ d *PCIDevice }

// Offsets in struct virtio_pci_cfg_cap, from the capability's start.
const (
	cfgCapBAR    = 4
	cfgCapOffset = 8
	cfgCapLength = 12
	cfgCapData   = 16
)

// window reports whether an access at offset of n bytes touches
// pci_cfg_data and, if so, the BAR region the driver selected: the BAR's
// device, the offset in it and the access width (0: the selection is not
// usable).
func (w cfgWindow) window(offset uint64, n int) (dev devices.Device, barOffset uint64, width int, ok bool) {
	data := uint64(w.d.pciCfg + cfgCapData)
	if offset+uint64(n) <= data || offset >= data+4 {
		return nil, 0, 0, false // not pci_cfg_data
	}
	var b [4]byte
	w.d.space.ReadConfig(uint64(w.d.pciCfg+cfgCapBAR), b[:1])
	bar := b[0]
	w.d.space.ReadConfig(uint64(w.d.pciCfg+cfgCapOffset), b[:])
	off := binary.LittleEndian.Uint32(b[:])
	w.d.space.ReadConfig(uint64(w.d.pciCfg+cfgCapLength), b[:])
	size := binary.LittleEndian.Uint32(b[:])
	var barSize uint64
	switch {
	case bar == 0:
		dev, barSize = w.d, BARSize
	case bar == NotifyPortsBAR && w.d.portsSize > 0:
		dev, barSize = notifyPorts{w.d}, w.d.portsSize
	}
	if dev == nil || (size != 1 && size != 2 && size != 4) || off%size != 0 || uint64(off)+uint64(size) > barSize {
		w.d.log.Debug("virtio-pci: PCI configuration access window not usable", "bar", bar, "offset", off, "length", size)
		return nil, 0, 0, true
	}
	return dev, uint64(off), int(size), true
}

func (w cfgWindow) ReadConfig(offset uint64, data []byte) {
	dev, barOff, length, hit := w.window(offset, len(data))
	if !hit {
		w.d.space.ReadConfig(offset, data)
		return
	}
	var buf [4]byte
	if length > 0 {
		dev.Read(barOff, buf[:length])
	}
	start := w.d.pciCfg + cfgCapData
	for i := range data {
		if k := int(offset) + i - start; k >= 0 && k < 4 {
			data[i] = buf[k]
		} else {
			w.d.space.ReadConfig(offset+uint64(i), data[i:i+1])
		}
	}
}

func (w cfgWindow) WriteConfig(offset uint64, data []byte) {
	dev, barOff, length, hit := w.window(offset, len(data))
	if !hit {
		w.d.space.WriteConfig(offset, data)
		return
	}
	// Accesses of 1, 2 or 4 bytes (the host's contract) that touch
	// pci_cfg_data are written through to BAR0 when they cover the window.
	start := uint64(w.d.pciCfg + cfgCapData)
	if length > 0 && offset == start && len(data) >= length {
		dev.Write(barOff, data[:length])
	}
}
