// Package memory owns a guest's RAM: host mappings laid out at guest
// physical addresses, and bounds-checked access to them for device models.
//
// A [Guest] is a small sorted set of [Region]s, each an anonymous private
// mapping (MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE) placed at a
// guest-physical address (GPA). [New] follows the usual PC layout: RAM
// starts at GPA 0 and, when it would reach into the 32-bit MMIO window,
// the part that does not fit below [MMIOHoleStart] continues at
// [MMIOHoleEnd] (4 GiB), leaving [MMIOHoleStart, MMIOHoleEnd) for device
// registers, the local APIC/IOAPIC and the firmware.
//
// [Guest.Regions] hands the mappings to the hypervisor for registration as
// KVM memory slots. Device emulation reaches guest memory through
// [Guest.Slice], which returns a slice aliasing guest RAM only if the whole
// requested range lies inside one region, and through the io.ReaderAt and
// io.WriterAt methods, which treat the GPA as the offset.
//
// The memory is shared with a running guest, so its contents can change
// under a device at any time; device code must read each guest-controlled
// value once and validate the copy.
package memory
