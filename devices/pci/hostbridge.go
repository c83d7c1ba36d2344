package pci

// The host bridge's identity: Intel's 82G33/P35 (Q35) DRAM controller, the
// host bridge QEMU's q35 machine presents, so guests have long met it in
// VMs. Linux binds no driver that touches it: intel-agp matches the ID but,
// finding neither an AGP capability nor the integrated graphics device,
// declines quietly.
const (
	HostBridgeVendorID = 0x8086 // Intel
	HostBridgeDeviceID = 0x29c0 // 82G33/G31/P35/P31 Express DRAM Controller
	// HostBridgeClass is base class 0x06 (bridge), subclass 0x00 (host),
	// programming interface 0x00, which is what Linux's pci_sanity_check
	// (arch/x86/pci/direct.c) accepts as proof that mechanism #1 works.
	HostBridgeClass = 0x060000
)

// NewHostBridge returns the configuration space of the host bridge that
// NewHost puts at 00:00.0: a type-0 header with the identity above, no
// BARs, no capabilities and no interrupt.
func NewHostBridge() *ConfigSpace {
	return newConfigSpace(Header{
		VendorID:  HostBridgeVendorID,
		DeviceID:  HostBridgeDeviceID,
		ClassCode: HostBridgeClass,
	})
}
