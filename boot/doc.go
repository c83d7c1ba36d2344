// Package boot loads a Linux x86-64 kernel into guest memory and describes
// the processor state it must be started in.
//
// It implements the boot loader side of the Linux x86 boot protocol
// (Documentation/arch/x86/boot.rst), version 2.12 or later, through its
// §"64-bit Boot Protocol": the loader, not the kernel's real-mode setup
// code, fills struct boot_params (the "zero page"), and the CPU enters the
// kernel already in long mode.
//
// # Loading a bzImage
//
// [ParseBzImage] validates a bzImage (the boot sector and setup sectors
// followed by the self-decompressing protected-mode kernel) without
// trusting any of it: every header field is bounds-checked, errors name the
// offending field, and malformed input never panics. [Load] then writes
// into a [memory.Guest]:
//
//   - the protected-mode kernel at [BzImage.LoadAddress] (pref_address,
//     16 MiB for distribution kernels), which must have init_size bytes of
//     RAM below 4 GiB behind it for decompression;
//   - the initrd as high as possible below min(initrd_addr_max, the end of
//     RAM below 4 GiB) and above the kernel's init_size area;
//   - boot_params: the kernel's setup header copied to offset 0x1f1, the
//     loader fields (type_of_loader, loadflags, heap_end_ptr, the command
//     line and ramdisk pointers with their ext_ high halves) and an e820
//     map of the guest's RAM with [EBDAAddr, 1 MiB) reserved;
//   - identity page tables for [0, 4 GiB) with 2 MiB pages and a GDT with
//     the flat __BOOT_CS (0x10) and __BOOT_DS (0x18) segments;
//   - an Intel MP specification 1.4 table in the EBDA (floating pointer
//     found through the BIOS data area word at 0x40e), listing the
//     processors, one ISA bus, the IOAPIC with ISA IRQ i on pin i, and
//     ExtINT/NMI on LINT0/LINT1, so that Linux brings up secondary CPUs
//     without ACPI.
//
// It returns a [CPUState]: RIP at the 64-bit entry point (load address +
// 0x200), RSI pointing at boot_params, long mode (CR0.PG, CR4.PAE,
// EFER.LME|LMA) with CR3 at the identity map, and the code and data
// segments matching the GDT. The package does not depend on package kvm;
// the vCPU code translates CPUState into KVM's special registers.
//
// # Memory layout
//
// Everything except the kernel and the initrd lives below 1 MiB, at the
// addresses given by the constants in layout.go (see [ZeroPageAddr] and its
// neighbours):
//
//	0x000400  BIOS data area words 0x40e (EBDA segment), 0x413 (base KiB)
//	0x000500  GDT
//	0x007000  boot_params (zero page)
//	0x009000  PML4; 0x00a000 PDPT; 0x00b000-0x00efff 4 page directories
//	0x020000  command line (up to 64 KiB)
//	0x09e000  EBDA: MP floating pointer, MP configuration table
//	0x0a0000  VGA window and BIOS area, reserved up to 1 MiB
//	0x1000000 kernel, then its init_size working area
//	high      initrd, at the top of RAM below initrd_addr_max
//
// # Guest formats
//
// Every guest-visible structure (setup header, boot_params, e820 entries,
// page tables, GDT descriptors, MP table) is read and written with
// encoding/binary at the offsets the specifications give, never by
// overlaying Go structs, and the package imports neither unsafe nor kvm.
//
// # Future loaders
//
// The bzImage path is one way to reach the CPUState contract. Two others
// fit the same shape and are planned but not implemented:
//
//   - PVH: an ELF vmlinux carrying an XEN_ELFNOTE_PHYS32_ENTRY note is
//     entered in 32-bit protected mode with a struct hvm_start_info instead
//     of boot_params. A PVH loader would parse the ELF program headers and
//     the note, load the segments, and return a CPUState for 32-bit flat
//     protected mode (paging off, EBX = start info). ParseBzImage already
//     recognises ELF input and says PVH is not supported yet.
//   - Host-side decompression: a bzImage's payload is a compressed vmlinux
//     (XZ for Debian's generic kernels) preceded by the decompressor. A
//     loader could extract and decompress it on the host (payload_offset
//     and payload_length in the setup header locate it) to skip the
//     in-guest decompression and then load the ELF as above.
//
// Both would reuse the memory layout, the e820 map, the MP table and the
// page table and GDT builders of this package.
package boot
