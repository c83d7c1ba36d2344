package vmm

import (
	"fmt"
	"slices"
	"sync"

	"github.com/hashicorp/go-multierror"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices/bus"
	"github.com/govmm/govmm/devices/pci"
	"github.com/govmm/govmm/devices/virtio"
	"github.com/govmm/govmm/devices/virtio/blk"
	virtionet "github.com/govmm/govmm/devices/virtio/net"
	"github.com/govmm/govmm/kvm"
)

// DiskConfig is one virtio block device.
type DiskConfig struct {
	Path     string
	ReadOnly bool
	Serial   string // GET_ID answer; "" means none
}

// The VMM plays firmware for PCI: it gives each virtio device a device
// number on bus 0, places its BAR0 in the host bridge's memory window (the
// DSDT's PCI0 _CRS starts it at 0xc0000000) and picks its INTx line.
//
// I/O BARs (the notification ports) go from port 0x1000 up, one per 1 KiB
// of ports: where Linux would put them itself, clear of the legacy ports
// below 0x1000 and of the ISA aliases (pcibios_align_resource keeps
// I/O ranges out of each KiB's upper 768 ports).
const (
	pciPortBase   = 0x1000
	pciPortStride = 0x400
	pciWindowBase = 0xc000_0000
	firstPCISlot  = 1 // 00:00.0 is the host bridge
	// ioapicPins is the number of IOAPIC inputs (GSIs 0-23); MSI routes
	// get GSIs above them.
	ioapicPins = 24
)

// msiRouter owns the VM's GSI routing table: the in-kernel irqchip's
// default routes plus one MSI route per MSI-X vector, set as a whole
// (KVM_SET_GSI_ROUTING replaces the table).
type msiRouter struct {
	vm *kvm.VM

	mu      sync.Mutex // guards the fields below
	nextGSI uint32
	msi     map[uint32]kvm.IRQRoutingEntry
}

func newMSIRouter(vm *kvm.VM) *msiRouter {
	return &msiRouter{vm: vm, nextGSI: ioapicPins, msi: map[uint32]kvm.IRQRoutingEntry{}}
}

func (r *msiRouter) allocate() uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	gsi := r.nextGSI
	r.nextGSI++
	return gsi
}

// route points gsi at an MSI message.
func (r *msiRouter) route(gsi uint32, addr uint64, data uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msi[gsi] = kvm.IRQRoutingMSIEntry(gsi, addr, data)
	// KVM's default x86 table (kvm_setup_default_irq_routing): GSIs 0-15
	// reach both the PICs and the IOAPIC, 16-23 the IOAPIC alone.
	var table []kvm.IRQRoutingEntry
	for gsi := uint32(0); gsi < ioapicPins; gsi++ {
		if gsi < 8 {
			table = append(table, kvm.IRQRoutingIRQChipEntry(gsi, kvm.IRQChipPICMaster, gsi))
		} else if gsi < 16 {
			table = append(table, kvm.IRQRoutingIRQChipEntry(gsi, kvm.IRQChipPICSlave, gsi-8))
		}
		table = append(table, kvm.IRQRoutingIRQChipEntry(gsi, kvm.IRQChipIOAPIC, gsi))
	}
	gsis := make([]uint32, 0, len(r.msi))
	for g := range r.msi {
		gsis = append(gsis, g)
	}
	slices.Sort(gsis)
	for _, g := range gsis {
		table = append(table, r.msi[g])
	}
	if err := r.vm.SetGSIRouting(table); err != nil {
		return fmt.Errorf("route MSI to GSI %d: %w", gsi, err)
	}
	return nil
}

// msixVectors connects one device's MSI-X vectors to KVM: each vector has a
// GSI with an MSI route and an irqfd, so sending it is one eventfd write.
// It implements pci.MSIXListener.
type msixVectors struct {
	m      *Machine
	name   string
	gsis   []uint32
	irqfds []*virtio.EventFD
}

func (m *Machine) newMSIXVectors(name string, n int) (*msixVectors, error) {
	v := &msixVectors{m: m, name: name}
	for range n {
		fd, err := virtio.NewEventFD()
		if err != nil {
			return v, err
		}
		v.irqfds = append(v.irqfds, fd)
		gsi := m.msi.allocate()
		v.gsis = append(v.gsis, gsi)
		if err := m.vm.IRQFD(kvm.IRQFD{FD: uint32(fd.FD()), GSI: gsi}); err != nil {
			return v, fmt.Errorf("%s: irqfd for GSI %d: %w", name, gsi, err)
		}
	}
	return v, nil
}

func (v *msixVectors) MSIXChanged(vector int, msg pci.MSIXVector) {
	if msg.Masked || vector >= len(v.gsis) {
		return // a masked vector is never sent; its route can wait
	}
	if err := v.m.msi.route(v.gsis[vector], msg.Address, msg.Data); err != nil {
		v.m.guestLog.Warn("MSI-X route", "device", v.name, "vector", vector, "err", err)
	}
}

func (v *msixVectors) MSIXSend(vector int, _ pci.MSIXVector) {
	if vector >= len(v.irqfds) {
		return
	}
	if err := v.irqfds[vector].Signal(); err != nil {
		v.m.guestLog.Warn("MSI-X send", "device", v.name, "vector", vector, "err", err)
	}
}

func (v *msixVectors) close() error {
	var errs *multierror.Error
	for i, fd := range v.irqfds {
		if i < len(v.gsis) {
			errs = multierror.Append(errs, v.m.vm.IRQFD(kvm.IRQFD{FD: uint32(fd.FD()), GSI: v.gsis[i], Flags: kvm.IRQFDFlagDeassign}))
		}
		errs = multierror.Append(errs, fd.Close())
	}
	return errs.ErrorOrNil()
}

// virtioPCI is one virtio device on the PCI bus and what wires it to KVM.
type virtioPCI struct {
	m       *Machine
	name    string
	dev     *virtio.PCIDevice
	vectors *msixVectors
	closers []func() error

	mu sync.Mutex // guards mapped
	// mapped is where each BAR (0 and virtio.NotifyPortsBAR) is on its bus
	// and ioeventfds; pci.NoAddress if nowhere.
	mapped map[int]uint64
}

// OnBARChange moves a BAR's range on the MMIO or port bus, and the
// ioeventfds of its queue notifications.
func (p *virtioPCI) OnBARChange(index int, _, addr uint64) {
	if index != 0 && index != virtio.NotifyPortsBAR {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.mapped[index]; ok && old != pci.NoAddress {
		p.unmap(index)
	}
	if addr == pci.NoAddress {
		return
	}
	// The guest may program any address: one that overlaps another device
	// is refused (logged), and the BAR decodes nothing until moved.
	var err error
	flags := uint32(0)
	if index == 0 {
		err = p.m.devs.mmio.Register(bus.Addr(addr), virtio.BARSize, p.dev)
	} else {
		// The configuration space keeps an I/O BAR's address within 16
		// bits (its upper bits are hardwired to zero).
		flags = kvm.IOEventFDFlagPIO
		err = p.m.devs.pio.Register(bus.Port(addr), uint32(p.dev.NotifyPortsSize()), p.dev.NotifyPorts())
	}
	if err != nil {
		p.m.guestLog.Warn("PCI BAR not mapped", "device", p.name, "bar", index, "address", fmt.Sprintf("%#x", addr), "err", err)
		return
	}
	p.mapped[index] = addr
	for _, k := range p.dev.Kicks() {
		if k.BAR != index {
			continue
		}
		err := p.m.vm.IOEventFD(kvm.IOEventFD{Addr: addr + k.Offset, Len: k.Len, FD: int32(k.EventFD.FD()), Flags: flags})
		if err != nil {
			// Notifications still arrive, as exits to the VMM.
			p.m.guestLog.Warn("ioeventfd", "device", p.name, "bar", index, "address", fmt.Sprintf("%#x", addr+k.Offset), "err", err)
		}
	}
}

// unmap removes BAR index from where it is mapped. p.mu is held.
func (p *virtioPCI) unmap(index int) {
	addr := p.mapped[index]
	flags := uint32(kvm.IOEventFDFlagDeassign)
	if index != 0 {
		flags |= kvm.IOEventFDFlagPIO
	}
	for _, k := range p.dev.Kicks() {
		if k.BAR != index {
			continue
		}
		err := p.m.vm.IOEventFD(kvm.IOEventFD{Addr: addr + k.Offset, Len: k.Len, FD: int32(k.EventFD.FD()), Flags: flags})
		if err != nil {
			p.m.log.Debug("ioeventfd deassign", "device", p.name, "bar", index, "err", err)
		}
	}
	var err error
	if index == 0 {
		err = p.m.devs.mmio.Unregister(bus.Addr(addr), p.dev)
	} else {
		err = p.m.devs.pio.Unregister(bus.Port(addr), p.dev.NotifyPorts())
	}
	if err != nil {
		p.m.log.Debug("unmap BAR", "device", p.name, "bar", index, "err", err)
	}
	p.mapped[index] = pci.NoAddress
}

// close stops the device (its backend's worker) and frees what wires it.
func (p *virtioPCI) close() error {
	if p.dev != nil {
		p.m.log.Debug("virtio device closed", "device", p.name, "notifications by exit", p.dev.NotifyExits())
	}
	var errs *multierror.Error
	errs = multierror.Append(errs, p.dev.Close())
	if p.vectors != nil {
		errs = multierror.Append(errs, p.vectors.close())
	}
	for _, c := range p.closers {
		errs = multierror.Append(errs, c())
	}
	return errs.ErrorOrNil()
}

// openDisks opens and locks every disk image, before KVM is touched, so a
// bad --disk is reported first and nothing else is built.
func openDisks(cfgs []DiskConfig) ([]*blk.Disk, error) {
	var disks []*blk.Disk
	for _, c := range cfgs {
		d, err := blk.OpenDisk(c.Path, c.ReadOnly)
		if err != nil {
			for _, o := range disks {
				o.Close()
			}
			return nil, err
		}
		disks = append(disks, d)
	}
	return disks, nil
}

// addVirtioDevices puts a virtio-blk device on the PCI bus for each disk.
func (m *Machine) addVirtioDevices(host *pci.Host) error {
	slot := firstPCISlot
	for i, disk := range m.disks {
		name := fmt.Sprintf("virtio-blk %s", disk.Path())
		backend, err := blk.New(blk.Config{Disk: disk, Serial: m.cfg.Disks[i].Serial, Logger: m.log})
		if err != nil {
			return err
		}
		if err := m.addVirtioPCI(host, slot, name, backend, 0x018000); err != nil {
			return err
		}
		slot++
	}
	for _, n := range m.nets {
		name := fmt.Sprintf("virtio-net %s", n.tap.Name())
		backend, err := virtionet.New(virtionet.Config{Port: n.tap, MAC: n.mac, Logger: m.log})
		if err != nil {
			return err
		}
		m.netDevices = append(m.netDevices, backend)
		if err := m.addVirtioPCI(host, slot, name, backend, 0x020000); err != nil {
			return err
		}
		slot++
	}
	return nil
}

func (m *Machine) addVirtioPCI(host *pci.Host, slot int, name string, backend virtio.Backend, class uint32) error {
	if slot >= pci.MaxDevices {
		return fmt.Errorf("%s: no free PCI slot (at most %d devices)", name, pci.MaxDevices-firstPCISlot)
	}
	p := &virtioPCI{m: m, name: name, mapped: map[int]uint64{}}
	m.virtio = append(m.virtio, p)
	vectors, err := m.newMSIXVectors(name, len(backend.QueueSizes())+1)
	p.vectors = vectors
	if err != nil {
		return err
	}
	cfg := virtio.PCIConfig{Backend: backend, Memory: m.mem, ClassCode: class, MSIX: vectors, Logger: m.log}
	// INTA# goes to the IOAPIC input the DSDT's _PRT names for the slot.
	irq := boot.PCIINTxGSI(slot, 0)
	cfg.INTx = m.irqLine(irq)
	dev, err := virtio.NewPCIDevice(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	p.dev = dev
	space := dev.ConfigSpace()
	space.SetInterruptLine(uint8(irq))
	space.SetBARListener(p)
	bar := uint64(pciWindowBase) + uint64(slot-firstPCISlot)*virtio.BARSize
	if err := space.SetBARAddress(0, bar); err != nil {
		return fmt.Errorf("%s: BAR0 at %#x: %w", name, bar, err)
	}
	var ports uint64
	if dev.NotifyPorts() != nil {
		ports = pciPortBase + uint64(slot-firstPCISlot)*pciPortStride
		if err := space.SetBARAddress(virtio.NotifyPortsBAR, ports); err != nil {
			return fmt.Errorf("%s: BAR%d at port %#x: %w", name, virtio.NotifyPortsBAR, ports, err)
		}
	}
	if err := host.Register(slot, dev.PCIFunction()); err != nil {
		return fmt.Errorf("%s: PCI slot %d: %w", name, slot, err)
	}
	m.log.Debug("PCI device", "device", name, "slot", slot, "bar0", fmt.Sprintf("%#x", bar),
		"notify ports", fmt.Sprintf("%#x", ports), "intx", irq)
	return nil
}
