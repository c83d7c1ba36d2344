package pci

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// CapIDVendor is the capability ID of a vendor-specific capability (PCI
// 3.0 appendix H), the kind virtio-pci describes its structures with.
const CapIDVendor = 0x09

// VirtioCapType is the cfg_type of a virtio PCI capability: which
// structure it locates (virtio 1.2 section 4.1.4, "Virtio Structure PCI
// Capabilities").
type VirtioCapType uint8

// Virtio structure types.
const (
	VirtioCommonCfg       VirtioCapType = 1 // struct virtio_pci_common_cfg
	VirtioNotifyCfg       VirtioCapType = 2 // queue notification area
	VirtioISRCfg          VirtioCapType = 3 // ISR status byte
	VirtioDeviceCfg       VirtioCapType = 4 // device-specific configuration
	VirtioPCICfg          VirtioCapType = 5 // window onto the BARs from configuration space
	VirtioSharedMemoryCfg VirtioCapType = 8 // shared memory region (64-bit offset and length)
)

// Offsets in struct virtio_pci_cap, counted from the capability's start
// (cap_vndr).
const (
	virtioCapLen      = 2
	virtioCapCfgType  = 3
	virtioCapBAR      = 4
	virtioCapID       = 5
	virtioCapOffset   = 8
	virtioCapLength   = 12
	virtioCapSize     = 16 // sizeof(struct virtio_pci_cap)
	virtioCapExtra    = 16 // notify_off_multiplier, pci_cfg_data, offset_hi
	virtioCapLengthHi = 20 // length_hi of struct virtio_pci_cap64
)

// VirtioCap describes one virtio structure for VirtioCapability.
type VirtioCap struct {
	Type VirtioCapType
	// BAR is the BAR (0-5) holding the structure. For VirtioPCICfg it is
	// the initial value of the driver-written window selector.
	BAR int
	// ID tells apart capabilities of the same Type (shared memory region
	// IDs); 0 otherwise.
	ID uint8
	// Offset and Length locate the structure within the BAR. Only
	// VirtioSharedMemoryCfg may use more than 32 bits.
	Offset, Length uint64
	// NotifyOffMultiplier is notify_off_multiplier, for VirtioNotifyCfg
	// only: 0 (every queue notifies at Offset) or a power of two of at
	// least 2.
	NotifyOffMultiplier uint32
}

// VirtioCapability returns the vendor-specific capability (ID 0x09) that
// describes c: struct virtio_pci_cap, extended to struct
// virtio_pci_notify_cap, virtio_pci_cfg_cap or virtio_pci_cap64 as the
// type requires (virtio 1.2 section 4.1.4). Everything is read-only except,
// for VirtioPCICfg, the fields the driver writes: bar, offset, length and
// pci_cfg_data. Making pci_cfg_data a window onto the BAR is up to the
// device, which wraps its ConfigSpace to intercept reads and writes of
// those bytes (AddCapability returns where they are).
func VirtioCapability(c VirtioCap) (Capability, error) {
	if err := checkVirtioCap(c); err != nil {
		return Capability{}, fmt.Errorf("virtio PCI capability type %d: %w", c.Type, err)
	}
	size := virtioCapSize
	switch c.Type {
	case VirtioNotifyCfg, VirtioPCICfg:
		size += 4
	case VirtioSharedMemoryCfg:
		size += 8
	}
	b := make([]byte, size)
	le := binary.LittleEndian
	b[0] = CapIDVendor
	b[virtioCapLen] = byte(size)
	b[virtioCapCfgType] = byte(c.Type)
	b[virtioCapBAR] = byte(c.BAR)
	b[virtioCapID] = c.ID
	le.PutUint32(b[virtioCapOffset:], uint32(c.Offset))
	le.PutUint32(b[virtioCapLength:], uint32(c.Length))
	switch c.Type {
	case VirtioNotifyCfg:
		le.PutUint32(b[virtioCapExtra:], c.NotifyOffMultiplier)
	case VirtioSharedMemoryCfg:
		le.PutUint32(b[virtioCapExtra:], uint32(c.Offset>>32))
		le.PutUint32(b[virtioCapLengthHi:], uint32(c.Length>>32))
	}
	cp := Capability{ID: CapIDVendor, Body: b[2:]}
	if c.Type == VirtioPCICfg {
		// "The fields cap.bar, cap.length, cap.offset and pci_cfg_data are
		// read-write (RW) for the driver."
		m := make([]byte, size)
		m[virtioCapBAR] = 0xff
		for _, f := range []int{virtioCapOffset, virtioCapLength, virtioCapExtra} {
			le.PutUint32(m[f:], 0xffffffff)
		}
		cp.WriteMask = m[2:]
	}
	return cp, nil
}

func checkVirtioCap(c VirtioCap) error {
	if c.BAR < 0 || c.BAR >= NumBARs {
		return fmt.Errorf("BAR %d: %w", c.BAR, ErrInvalid)
	}
	if c.Type != VirtioSharedMemoryCfg && (c.Offset > 0xffffffff || c.Length > 0xffffffff) {
		return fmt.Errorf("offset %#x or length %#x wider than 32 bits: %w", c.Offset, c.Length, ErrInvalid)
	}
	if c.Type != VirtioNotifyCfg && c.NotifyOffMultiplier != 0 {
		return fmt.Errorf("notify_off_multiplier outside a notification capability: %w", ErrInvalid)
	}
	align := uint64(1)
	switch c.Type {
	case VirtioCommonCfg, VirtioDeviceCfg:
		// "The offset for the common/device-specific configuration
		// structure MUST be 4-byte aligned."
		align = 4
	case VirtioNotifyCfg:
		// "cap.offset MUST be 2-byte aligned"; "The device MUST either
		// present notify_off_multiplier as an even power of 2, or present
		// notify_off_multiplier as 0." We read "even" as "divisible by
		// two", so 1 is refused.
		align = 2
		if m := c.NotifyOffMultiplier; m != 0 && (m < 2 || bits.OnesCount32(m) != 1) {
			return fmt.Errorf("notify_off_multiplier %d: want 0 or an even power of 2: %w", m, ErrInvalid)
		}
	case VirtioISRCfg, VirtioPCICfg, VirtioSharedMemoryCfg:
	default:
		return fmt.Errorf("unsupported cfg_type: %w", ErrInvalid)
	}
	if c.Offset%align != 0 {
		return fmt.Errorf("offset %#x not %d-byte aligned: %w", c.Offset, align, ErrInvalid)
	}
	if c.Type != VirtioPCICfg && c.Length == 0 {
		return fmt.Errorf("zero length: %w", ErrInvalid)
	}
	return nil
}
