package boot

// Guest-physical memory layout used by [Load].
//
// Everything the loader builds besides the kernel and the initrd lives in
// the first MiB, in RAM the e820 map hands to the kernel (the zero page,
// command line, page tables and GDT are consumed during early boot and may
// be reused afterwards) or, for the MP tables, in the reserved EBDA:
//
//	0x000400 .. 0x0004ff  BIOS data area: only the EBDA segment (0x40e) and
//	                      the base memory size in KiB (0x413) are written
//	0x000500 .. 0x00051f  GDT: null, null, __BOOT_CS (0x10), __BOOT_DS (0x18)
//	0x007000 .. 0x007fff  boot_params ("zero page")
//	0x009000 .. 0x009fff  PML4
//	0x00a000 .. 0x00afff  PDPT
//	0x00b000 .. 0x00efff  4 page directories of 2 MiB pages: [0, 4 GiB)
//	0x020000 .. 0x02ffff  kernel command line (NUL-terminated)
//	0x09e000 .. 0x09ffff  EBDA: MP floating pointer, then the MP
//	                      configuration table (e820 reserved from here)
//	0x0a0000 .. 0x0fffff  VGA window and BIOS ROM area (e820 reserved)
//	0x1000000 ..          kernel (pref_address, 16 MiB for Debian), followed
//	                      by its init_size working area
//	top of low RAM        initrd, as high as initrd_addr_max and the MMIO
//	                      hole allow
//
// The EBDA is 8 KiB rather than the traditional last KiB below 640 KiB
// because an MP configuration table for 254 processors needs about
// 5.2 KiB (Intel MP spec 1.4 §4.3: 20 bytes per processor entry).
const (
	// BDAEBDASegment is the BIOS data area word holding the real-mode
	// segment of the EBDA, where Linux looks for the MP floating pointer
	// (Intel MP spec 1.4 §4: "the first kilobyte of the Extended BIOS
	// Data Area").
	BDAEBDASegment = 0x40e
	// BDABaseMemKiB is the BIOS data area word holding the size of base
	// memory below the EBDA in KiB.
	BDABaseMemKiB = 0x413

	// GDTAddr is where the boot GDT is written.
	GDTAddr = 0x500
	// GDTEntries is the number of 8-byte descriptors in the boot GDT.
	GDTEntries = 4

	// ZeroPageAddr is where struct boot_params is written; RSI points here
	// at kernel entry.
	ZeroPageAddr = 0x7000
	// ZeroPageSize is the size of struct boot_params.
	ZeroPageSize = 0x1000

	// PML4Addr is the top-level page table; CR3 points here.
	PML4Addr = 0x9000
	// PDPTAddr is the single page-directory-pointer table.
	PDPTAddr = 0xa000
	// PDAddr is the first of PDCount page directories.
	PDAddr = 0xb000
	// PDCount page directories of 512 2-MiB pages map [0, 4 GiB).
	PDCount = 4

	// CmdlineAddr is where the NUL-terminated command line is written.
	CmdlineAddr = 0x20000
	// CmdlineMax is the space reserved for the command line, including
	// its terminating NUL.
	CmdlineMax = 0x10000

	// EBDAAddr is the start of the extended BIOS data area, reserved in
	// the e820 map up to 1 MiB. The MP floating pointer is its first 16
	// bytes; the MP configuration table follows.
	EBDAAddr = 0x9e000
	// EBDASize is the EBDA's size up to the VGA window at 640 KiB.
	EBDASize = 0xa0000 - EBDAAddr

	// MPFloatingPointerAddr is where the MP floating pointer structure is
	// written (Intel MP spec 1.4 §4.1).
	MPFloatingPointerAddr = EBDAAddr
	// MPConfigTableAddr is where the MP configuration table is written
	// (Intel MP spec 1.4 §4.2), right after the floating pointer.
	MPConfigTableAddr = EBDAAddr + mpFloatingPointerSize

	// HighMemoryStart is the first address above the legacy PC area
	// (1 MiB); the kernel and initrd are loaded at or above it.
	HighMemoryStart = 0x100000

	// DefaultLoadAddr is where a relocatable kernel whose pref_address is
	// unusable is loaded (the x86-64 default LOAD_PHYSICAL_ADDR).
	DefaultLoadAddr = 0x1000000

	// InitrdAlign is the alignment of the initrd's start address.
	InitrdAlign = 0x1000

	// LAPICAddr is the local APIC's MMIO base, reported in the MP table.
	LAPICAddr = 0xfee00000
	// IOAPICAddr is the IOAPIC's MMIO base, reported in the MP table.
	IOAPICAddr = 0xfec00000
)
