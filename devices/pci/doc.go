// Package pci models a conventional PCI bus 0 behind configuration
// mechanism #1, the configuration space of its functions, and the two
// capability structures virtio-pci devices need: virtio's vendor-specific
// capabilities and MSI-X.
//
// # Configuration mechanism #1
//
// [Host] covers the eight ports 0xcf8-0xcff (PCI Local Bus Specification
// 3.0, section 3.2.2.3.2, "Software Generation of Configuration
// Transactions"). A 32-bit access to 0xcf8 is CONFIG_ADDRESS: bit 31
// enables translation, bits 23:16 select the bus, 15:11 the device, 10:8
// the function and 7:2 the dword register. Bits 1:0 are read-only zero.
// Bits 30:24 are reserved and read back as written, because AMD's
// "extended configuration space" (which Linux's pci_conf1 uses on family
// 10h and later CPUs) puts register bits 11:8 in 27:24: an access with any
// of them set is to a register beyond 256 bytes, which a conventional PCI
// function does not have, rather than an alias of the low 256.
//
// 0xcfc-0xcff are CONFIG_DATA: a byte, word or dword access at byte lane L
// reaches register (CONFIG_ADDRESS & 0xfc) + L of the selected function.
// Accesses that are not naturally aligned within the dword (a word at
// 0xcfd) are dropped: PCI would allow the byte enables, but no driver makes
// them and refusing them keeps the [Function] contract simple. An access
// that selects nothing (enable bit clear, a bus other than 0, a device
// with no function registered, a function other than 0, a register beyond
// 256 bytes) is a master abort: reads return all ones, writes are dropped.
// Linux scans all 32 devices of bus 0 this way, so master aborts are only
// counted, not logged.
//
// On PC chipsets only 32-bit accesses to 0xcf8 reach CONFIG_ADDRESS; byte
// and word accesses to 0xcf8-0xcfb go elsewhere, and a byte at 0xcf9 is the
// reset control register. Since a bus cannot register that register inside
// the CONFIG_ADDRESS range, Host forwards byte accesses to 0xcf9 to the
// device given as Config.ResetControl (at its offset 0). Other narrow
// accesses read all ones and are ignored (Linux's probe for mechanism #2
// makes some).
//
// [NewHost] puts a host bridge ([NewHostBridge]) at 00:00.0, which is what
// Linux's pci_sanity_check (arch/x86/pci/direct.c) looks for before it
// trusts mechanism #1: without a host bridge or VGA device on bus 0 it
// logs "PCI: Fatal: No config space access function found". [NewEmptyHost]
// has nothing behind it, for a machine that should have no PCI.
//
// Only function 0 of each device exists (no header declares itself
// multi-function), so a device number is all a [Function] is registered by.
//
// # Configuration space
//
// [ConfigSpace] is a 256-byte type-0 header (PCI 3.0 section 6.1) with a
// write mask per byte: what the guest may change, it can; the rest (IDs,
// class code, header type, capability pointer, the capabilities' read-only
// fields) stays as the device built it. Status bits that PCI defines as
// "write 1 to clear" are cleared by writing ones. BARs follow the sizing
// protocol of section 6.2.5.1 through their masks alone: writing all ones
// and reading back yields the size mask with the type bits.
//
// A BAR "moves" when the address at which it decodes changes: the guest
// reprograms it, or sets or clears the Memory Space or I/O Space bit of
// the Command register. The owner learns of each move through its
// [BARListener], so that it can re-register the region on the VMM's bus
// (and its ioeventfds). Linux clears the decode bits while it sizes BARs
// and while it rewrites a 64-bit BAR's two halves, so in practice the
// listener sees the sized and half-written values only from a hostile
// guest; the VMM must cope with any address (refuse overlaps, log, carry
// on).
//
// Capabilities ([Capability]) are laid out from offset 0x40, dword
// aligned, linked in the order they are added, with Status bit 4
// ("Capabilities List") set once there is one. [VirtioCapability] builds
// the vendor-specific capabilities of virtio 1.2 section 4.1.4 and
// [MSIXCapability] the MSI-X capability of PCI 3.0 section 6.8.2, whose
// table and pending-bit array [MSIXTable] models.
//
// # Locking and callbacks
//
// Every type guards its state with its own mutex. Host never holds its
// mutex while it calls a Function. ConfigSpace and MSIXTable call their
// listeners and capability hooks without their state mutex held but with
// a second, per-object mutex that serialises guest writes with the
// callbacks they cause, so that a listener sees the moves and vector
// changes of one object in the order they happened. A listener may read
// the object (BARAddress, Vector, ...) but must not write it or call
// Trigger: that deadlocks.
package pci
