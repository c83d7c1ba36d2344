package kvm

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

// pageSize is the x86 page size. KVM requires guest-physical addresses and
// sizes of memory slots to be multiples of it.
const pageSize = 4096

// MemoryFlags are the KVM_MEM_* flags of a memory slot.
type MemoryFlags uint32

// Memory slot flags (api.rst, section "KVM_SET_USER_MEMORY_REGION").
const (
	// MemLogDirtyPages makes KVM track writes to the slot for
	// KVM_GET_DIRTY_LOG (live migration, framebuffer updates).
	MemLogDirtyPages MemoryFlags = 1 << 0 // KVM_MEM_LOG_DIRTY_PAGES
	// MemReadonly makes guest writes to the slot exit as MMIO writes
	// (ROMs, flash). Requires KVM_CAP_READONLY_MEM.
	MemReadonly MemoryFlags = 1 << 1 // KVM_MEM_READONLY
)

// PITSpeakerDummy is the KVM_PIT_SPEAKER_DUMMY flag for PITConfig.Flags: KVM
// emulates a dummy PC speaker port (0x61) itself.
const PITSpeakerDummy = 1

// Flags for IOEventFD.Flags (api.rst, section "KVM_IOEVENTFD").
const (
	IOEventFDFlagDatamatch = 1 << 0 // KVM_IOEVENTFD_FLAG_DATAMATCH: signal only when the written value equals Datamatch
	IOEventFDFlagPIO       = 1 << 1 // KVM_IOEVENTFD_FLAG_PIO: Addr is an I/O port, not a guest-physical address
	IOEventFDFlagDeassign  = 1 << 2 // KVM_IOEVENTFD_FLAG_DEASSIGN: remove a previously registered ioeventfd
)

// Flags for IRQFD.Flags (api.rst, section "KVM_IRQFD").
const (
	IRQFDFlagDeassign = 1 << 0 // KVM_IRQFD_FLAG_DEASSIGN
	IRQFDFlagResample = 1 << 1 // KVM_IRQFD_FLAG_RESAMPLE
)

// VM is a KVM virtual machine: the handle for VM ioctls.
type VM struct {
	fd           int
	vcpuMmapSize int
}

// Close closes the VM descriptor. The kernel frees the VM once its vCPUs are
// closed too. Closing twice is a no-op.
func (vm *VM) Close() error {
	if vm.fd < 0 {
		return nil
	}
	fd := vm.fd
	vm.fd = -1
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close vm: %w", err)
	}
	return nil
}

// CheckExtension asks whether this VM supports c; some answers (e.g.
// CapNrMemslots) can differ per VM. Requires CapCheckExtensionVM.
func (vm *VM) CheckExtension(c Capability) (int, error) {
	n, err := ioctl(vm.fd, kvmCheckExtension, uintptr(c))
	if err != nil {
		return 0, fmt.Errorf("check vm extension %v (KVM_CHECK_EXTENSION): %w", c, err)
	}
	return n, nil
}

// SetUserMemoryRegion maps the guest-physical range [gpa, gpa+len(host))
// onto host in memory slot slot, replacing whatever the slot held (api.rst,
// section "KVM_SET_USER_MEMORY_REGION").
//
// host must be a page-aligned mapping from mmap (never Go-heap memory,
// which the garbage collector may free), its length a multiple of 4 KiB,
// and it must stay mapped until the slot is deleted or the VM is closed:
// KVM keeps its address.
func (vm *VM) SetUserMemoryRegion(slot uint32, gpa uint64, host []byte, flags MemoryFlags) error {
	size := uint64(len(host))
	switch {
	case size == 0:
		return fmt.Errorf("set memory slot %d at %#x: host mapping is empty (use DeleteUserMemoryRegion to remove a slot)", slot, gpa)
	case gpa%pageSize != 0:
		return fmt.Errorf("set memory slot %d at %#x: guest address is not 4 KiB aligned", slot, gpa)
	case size%pageSize != 0:
		return fmt.Errorf("set memory slot %d at %#x: size %#x is not a multiple of 4 KiB", slot, gpa, size)
	case gpa+size < gpa:
		return fmt.Errorf("set memory slot %d at %#x: size %#x wraps past the top of the address space", slot, gpa, size)
	}
	if err := setUserMemoryRegion(vm.fd, slot, uint32(flags), gpa, host); err != nil {
		if errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("%w (is the host mapping page aligned?)", err)
		}
		return fmt.Errorf("set memory slot %d to [%#x, %#x) (KVM_SET_USER_MEMORY_REGION): %w", slot, gpa, gpa+size, err)
	}
	return nil
}

// DeleteUserMemoryRegion removes memory slot slot; afterwards guest
// accesses to its range exit as MMIO.
func (vm *VM) DeleteUserMemoryRegion(slot uint32) error {
	if err := setUserMemoryRegion(vm.fd, slot, 0, 0, nil); err != nil {
		return fmt.Errorf("delete memory slot %d (KVM_SET_USER_MEMORY_REGION): %w", slot, err)
	}
	return nil
}

// SetTSSAddr tells Intel VMX where in guest-physical memory it may place
// the three-page task state segment it needs to emulate real mode (api.rst,
// section "KVM_SET_TSS_ADDR"). The range must lie below 4 GiB and be unused
// by the guest; the conventional choice is 0xfffbd000. AMD ignores it. Call
// before creating vCPUs.
func (vm *VM) SetTSSAddr(addr uint64) error {
	if addr%pageSize != 0 || addr+3*pageSize > 1<<32 {
		return fmt.Errorf("set tss address %#x: need a 4 KiB aligned three-page range below 4 GiB", addr)
	}
	if _, err := ioctl(vm.fd, kvmSetTSSAddr, uintptr(addr)); err != nil {
		return fmt.Errorf("set tss address %#x (KVM_SET_TSS_ADDR): %w", addr, err)
	}
	return nil
}

// SetIdentityMapAddr tells Intel VMX where in guest-physical memory it may
// place the one-page identity-map page table used when the guest runs with
// paging disabled (api.rst, section "KVM_SET_IDENTITY_MAP_ADDR"). The page
// must lie below 4 GiB and be unused by the guest; conventionally
// 0xfffbc000, just below the TSS. Must be called before creating vCPUs.
func (vm *VM) SetIdentityMapAddr(addr uint64) error {
	if addr%pageSize != 0 || addr+pageSize > 1<<32 {
		return fmt.Errorf("set identity map address %#x: need a 4 KiB aligned page below 4 GiB", addr)
	}
	if _, err := ioctlPtr(vm.fd, kvmSetIdentityMapAddr, &addr); err != nil {
		return fmt.Errorf("set identity map address %#x (KVM_SET_IDENTITY_MAP_ADDR): %w", addr, err)
	}
	return nil
}

// CreateIRQChip creates the in-kernel interrupt controllers: on x86 a pair
// of 8259 PICs, an IOAPIC and a local APIC per vCPU (api.rst, section
// "KVM_CREATE_IRQCHIP"). Call before creating vCPUs. With it, HLT no longer
// exits to user space.
func (vm *VM) CreateIRQChip() error {
	if _, err := ioctl(vm.fd, kvmCreateIRQChip, 0); err != nil {
		return fmt.Errorf("create irqchip (KVM_CREATE_IRQCHIP): %w", err)
	}
	return nil
}

// CreatePIT2 creates the in-kernel i8254 programmable interval timer
// (api.rst, section "KVM_CREATE_PIT2"). Requires CreateIRQChip first.
func (vm *VM) CreatePIT2(cfg PITConfig) error {
	if _, err := ioctlPtr(vm.fd, kvmCreatePIT2, &cfg); err != nil {
		return fmt.Errorf("create pit (KVM_CREATE_PIT2) with flags %#x: %w", cfg.Flags, err)
	}
	return nil
}

// IRQLine raises (level true) or lowers (level false) the in-kernel
// interrupt controller input irq, a GSI (api.rst, section "KVM_IRQ_LINE").
// For an edge-triggered line, raise and then lower it.
func (vm *VM) IRQLine(irq uint32, level bool) error {
	arg := IRQLevel{IRQ: irq}
	if level {
		arg.Level = 1
	}
	if _, err := ioctlPtr(vm.fd, kvmIRQLine, &arg); err != nil {
		return fmt.Errorf("set irq line %d to %d (KVM_IRQ_LINE): %w", irq, arg.Level, err)
	}
	return nil
}

// IOEventFD registers (or, with IOEventFDFlagDeassign, removes) an eventfd
// that KVM signals when the guest writes to e.Addr, instead of exiting to
// user space (api.rst, section "KVM_IOEVENTFD").
func (vm *VM) IOEventFD(e IOEventFD) error {
	if _, err := ioctlPtr(vm.fd, kvmIOEventFD, &e); err != nil {
		return fmt.Errorf("ioeventfd %d at %#x, len %d, flags %#x (KVM_IOEVENTFD): %w", e.FD, e.Addr, e.Len, e.Flags, err)
	}
	return nil
}

// IRQFD registers (or, with IRQFDFlagDeassign, removes) an eventfd that
// injects an interrupt on f.GSI whenever it is signalled (api.rst, section
// "KVM_IRQFD"). Requires an in-kernel irqchip.
func (vm *VM) IRQFD(f IRQFD) error {
	if _, err := ioctlPtr(vm.fd, kvmIRQFD, &f); err != nil {
		return fmt.Errorf("irqfd %d on gsi %d, flags %#x (KVM_IRQFD): %w", f.FD, f.GSI, f.Flags, err)
	}
	return nil
}

// Values for IRQRoutingEntry.Type.
const (
	IRQRoutingIRQChip = 1 // KVM_IRQ_ROUTING_IRQCHIP: route to a PIC or IOAPIC pin
	IRQRoutingMSI     = 2 // KVM_IRQ_ROUTING_MSI: deliver a message-signalled interrupt
)

// Interrupt controllers for IRQRoutingIRQChipEntry.
const (
	IRQChipPICMaster = 0 // KVM_IRQCHIP_PIC_MASTER
	IRQChipPICSlave  = 1 // KVM_IRQCHIP_PIC_SLAVE
	IRQChipIOAPIC    = 2 // KVM_IRQCHIP_IOAPIC
)

// IRQRoutingIRQChipEntry returns a routing entry sending gsi to input pin of
// irqchip (IRQChipPICMaster, IRQChipPICSlave or IRQChipIOAPIC). It fills
// the union as struct kvm_irq_routing_irqchip { __u32 irqchip; __u32 pin; }.
func IRQRoutingIRQChipEntry(gsi, irqchip, pin uint32) IRQRoutingEntry {
	e := IRQRoutingEntry{GSI: gsi, Type: IRQRoutingIRQChip}
	nativeEndian.PutUint32(e.U[0:], irqchip)
	nativeEndian.PutUint32(e.U[4:], pin)
	return e
}

// IRQRoutingMSIEntry returns a routing entry that turns gsi into an MSI
// write of data to addr. It fills the union as struct kvm_irq_routing_msi
// { __u32 address_lo; __u32 address_hi; __u32 data; __u32 pad; }.
func IRQRoutingMSIEntry(gsi uint32, addr uint64, data uint32) IRQRoutingEntry {
	e := IRQRoutingEntry{GSI: gsi, Type: IRQRoutingMSI}
	nativeEndian.PutUint32(e.U[0:], uint32(addr))
	nativeEndian.PutUint32(e.U[4:], uint32(addr>>32))
	nativeEndian.PutUint32(e.U[8:], data)
	return e
}

// SetGSIRouting replaces the VM's whole GSI routing table (api.rst, section
// "KVM_SET_GSI_ROUTING"). Note that creating an irqchip installs a default
// table identity-mapping GSIs to PIC and IOAPIC pins; a replacement must
// repeat those entries that are still wanted.
func (vm *VM) SetGSIRouting(entries []IRQRoutingEntry) error {
	buf, err := marshalIRQRouting(entries)
	if err != nil {
		return fmt.Errorf("set gsi routing: %w", err)
	}
	if _, err := ioctlBuf(vm.fd, kvmSetGSIRouting, buf); err != nil {
		return fmt.Errorf("set gsi routing with %d entries (KVM_SET_GSI_ROUTING): %w", len(entries), err)
	}
	return nil
}

// CreateVCPU creates virtual CPU id (its initial APIC ID) and maps its
// kvm_run area (api.rst, section "KVM_CREATE_VCPU").
func (vm *VM) CreateVCPU(id int) (*VCPU, error) {
	if id < 0 {
		return nil, fmt.Errorf("create vcpu %d: id is negative", id)
	}
	fd, err := ioctl(vm.fd, kvmCreateVCPU, uintptr(id))
	if err != nil {
		return nil, fmt.Errorf("create vcpu %d (KVM_CREATE_VCPU): %w", id, err)
	}
	// The kvm_run structure is shared with the kernel through a MAP_SHARED
	// mapping of the vCPU descriptor at offset 0 (api.rst, section 5).
	run, err := unix.Mmap(fd, 0, vm.vcpuMmapSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		err = fmt.Errorf("create vcpu %d: map %d-byte kvm_run area: %w", id, vm.vcpuMmapSize, err)
		if cerr := unix.Close(fd); cerr != nil {
			err = multierror.Append(err, fmt.Errorf("close vcpu %d: %w", id, cerr))
		}
		return nil, err
	}
	return &VCPU{fd: fd, id: id, run: run}, nil
}
