package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Offsets of setup header fields, counted from the start of the bzImage
// file. struct boot_params embeds the header at the same offset (0x1f1), so
// they are also zero-page offsets. Boot protocol 2.15, §"The real-mode
// kernel header"; arch/x86/include/uapi/asm/bootparam.h, struct
// setup_header.
const (
	hdrSetupSects      = 0x1f1 // u8: size of the setup code in 512-byte sectors, minus the boot sector
	hdrBootFlag        = 0x1fe // u16: 0xaa55
	hdrJump            = 0x200 // 2 bytes: short jmp over the header; byte 0x201 is its length
	hdrMagic           = 0x202 // 4 bytes: "HdrS"
	hdrVersion         = 0x206 // u16: boot protocol version, major<<8 | minor
	hdrKernelVersion   = 0x20e // u16: pointer - 0x200 to the kernel version string
	hdrTypeOfLoader    = 0x210 // u8
	hdrLoadFlags       = 0x211 // u8
	hdrRamdiskImage    = 0x218 // u32
	hdrRamdiskSize     = 0x21c // u32
	hdrHeapEndPtr      = 0x224 // u16
	hdrCmdLinePtr      = 0x228 // u32
	hdrInitrdAddrMax   = 0x22c // u32
	hdrKernelAlignment = 0x230 // u32
	hdrRelocatable     = 0x234 // u8
	hdrXLoadFlags      = 0x236 // u16
	hdrCmdlineSize     = 0x238 // u32
	hdrPrefAddress     = 0x258 // u64
	hdrInitSize        = 0x260 // u32

	// setupHeaderStart is where the setup header begins in both the file
	// and boot_params.
	setupHeaderStart = hdrSetupSects
	// minHeaderEnd is the least header end (0x202 + byte at 0x201) that
	// covers every field this package reads, up to init_size.
	minHeaderEnd = hdrInitSize + 4
	// maxHeaderEnd is where the setup header area of struct boot_params
	// ends (edd_mbr_sig_buffer starts at 0x290); a longer header would
	// overwrite other zero-page fields when copied.
	maxHeaderEnd = 0x290

	sectorSize       = 512
	bootFlag         = 0xaa55
	shortJumpOpcode  = 0xeb
	defaultSetupSect = 4 // "If this field is 0, the real value is 4."
	// minProtocol is 2.12: the first version with xloadflags
	// (XLF_KERNEL_64 advertises the 64-bit entry point at load address
	// + 0x200). init_size and pref_address date from 2.10.
	minProtocol = 0x020c
)

// loadflags bits (boot protocol §"Details of header fields", loadflags).
const (
	// LoadedHigh: the protected-mode code is loaded at 0x100000 (bzImage).
	LoadedHigh = 1 << 0
	// CanUseHeap: heap_end_ptr is valid.
	CanUseHeap = 1 << 7
)

// xloadflags bits (boot protocol 2.12+, §"Details of header fields",
// xloadflags).
const (
	// XLFKernel64 says the kernel has the legacy 64-bit entry point at
	// load address + 0x200.
	XLFKernel64 = 1 << 0
	// XLFCanBeLoadedAbove4G says the kernel, boot_params, command line and
	// ramdisk may live above 4 GiB.
	XLFCanBeLoadedAbove4G = 1 << 1
	// XLFEFIHandover32 and XLFEFIHandover64 advertise the EFI handover
	// protocol entry points.
	XLFEFIHandover32 = 1 << 2
	XLFEFIHandover64 = 1 << 3
	// XLFEFIKexec says the kernel supports kexec EFI boot with EFI runtime
	// services.
	XLFEFIKexec = 1 << 4
)

var elfMagic = []byte("\x7fELF")

// BzImage is a parsed and validated Linux x86 bzImage. It references the
// byte slice given to ParseBzImage, which must not be modified afterwards.
type BzImage struct {
	// ProtocolVersion is the boot protocol version, major<<8 | minor
	// (0x020f is 2.15).
	ProtocolVersion uint16
	// SetupSects is the number of 512-byte setup sectors after the boot
	// sector, with the legacy 0 already replaced by 4.
	SetupSects int
	// LoadFlags is the loadflags byte as the kernel ships it.
	LoadFlags uint8
	// XLoadFlags is the xloadflags word (XLF* bits).
	XLoadFlags uint16
	// InitSize is the amount of linear contiguous memory, starting at the
	// load address, the kernel needs before it is able to examine its
	// memory map (decompression buffer and early working area).
	InitSize uint32
	// PrefAddress is the preferred (for a non-relocatable kernel:
	// mandatory) load address.
	PrefAddress uint64
	// KernelAlignment is the load address alignment a relocatable kernel
	// requires; a power of two.
	KernelAlignment uint32
	// CmdlineSize is the longest command line the kernel accepts, not
	// counting the terminating NUL.
	CmdlineSize uint32
	// InitrdAddrMax is the highest address the initrd may occupy.
	InitrdAddrMax uint32
	// Relocatable reports relocatable_kernel: the kernel may be loaded at
	// any KernelAlignment-aligned address.
	Relocatable bool
	// KernelVersion is the human-readable version string the header
	// points to, or "" if it has none.
	KernelVersion string

	data      []byte
	setupSize int // bytes of real-mode code, boot sector included
	headerEnd int // 0x202 + data[0x201]
}

// ParseBzImage validates data as a bzImage that can be started through the
// 64-bit boot protocol (boot protocol 2.12 or later with XLF_KERNEL_64).
// It never panics on malformed input.
func ParseBzImage(data []byte) (*BzImage, error) {
	switch {
	case len(data) == 0:
		return nil, errors.New("not a bzImage: kernel image is empty")
	case bytes.HasPrefix(data, elfMagic):
		return nil, errors.New("not a bzImage: ELF vmlinux: PVH boot is not supported yet, pass the bzImage (arch/x86/boot/bzImage, /boot/vmlinuz-*)")
	case len(data) < hdrMagic+4:
		return nil, fmt.Errorf("not a bzImage: file is only %d bytes, too short for a setup header at %#x (is it a vmlinux ELF or compressed kernel?)", len(data), setupHeaderStart)
	case !bytes.Equal(data[hdrMagic:hdrMagic+4], []byte("HdrS")):
		return nil, fmt.Errorf("not a bzImage: no \"HdrS\" magic at %#x (is it a vmlinux ELF or compressed kernel?)", hdrMagic)
	}
	if flag := binary.LittleEndian.Uint16(data[hdrBootFlag:]); flag != bootFlag {
		return nil, fmt.Errorf("bad boot flag %#x at %#x, want %#x", flag, hdrBootFlag, bootFlag)
	}
	if len(data) < hdrVersion+2 {
		return nil, fmt.Errorf("bzImage truncated: %d bytes end inside the setup header", len(data))
	}
	version := binary.LittleEndian.Uint16(data[hdrVersion:])
	if version < minProtocol {
		return nil, fmt.Errorf("boot protocol %d.%02d is too old: need 2.12 or later for the 64-bit entry point", version>>8, version&0xff)
	}

	// The real-mode code is the boot sector plus setup_sects sectors; the
	// protected-mode kernel follows it (boot protocol §"Loading the rest
	// of the kernel").
	sects := int(data[hdrSetupSects])
	if sects == 0 {
		sects = defaultSetupSect
	}
	setupSize := (sects + 1) * sectorSize
	if setupSize > len(data) {
		return nil, fmt.Errorf("setup_sects %d past the end of the file: setup code needs %d bytes but the file has %d (truncated?)", sects, setupSize, len(data))
	}
	// From here on every header offset (all below 0x300) is in bounds:
	// setupSize is at least 2*512.

	// The header's length is given by the short jump at 0x200 (boot
	// protocol §"64-bit boot protocol": "0x0202 + byte value at offset
	// 0x0201").
	if op := data[hdrJump]; op != shortJumpOpcode {
		return nil, fmt.Errorf("setup header at %#x does not start with a short jump: got opcode %#x, want %#x", hdrJump, op, shortJumpOpcode)
	}
	headerEnd := hdrMagic + int(data[hdrJump+1])
	switch {
	case headerEnd < minHeaderEnd:
		return nil, fmt.Errorf("setup header ends at %#x, before the end of init_size at %#x that protocol %d.%02d requires", headerEnd, minHeaderEnd, version>>8, version&0xff)
	case headerEnd > maxHeaderEnd:
		return nil, fmt.Errorf("setup header ends at %#x, past the end of the boot_params header area at %#x", headerEnd, maxHeaderEnd)
	}

	k := &BzImage{
		ProtocolVersion: version,
		SetupSects:      sects,
		LoadFlags:       data[hdrLoadFlags],
		XLoadFlags:      binary.LittleEndian.Uint16(data[hdrXLoadFlags:]),
		InitSize:        binary.LittleEndian.Uint32(data[hdrInitSize:]),
		PrefAddress:     binary.LittleEndian.Uint64(data[hdrPrefAddress:]),
		KernelAlignment: binary.LittleEndian.Uint32(data[hdrKernelAlignment:]),
		CmdlineSize:     binary.LittleEndian.Uint32(data[hdrCmdlineSize:]),
		InitrdAddrMax:   binary.LittleEndian.Uint32(data[hdrInitrdAddrMax:]),
		Relocatable:     data[hdrRelocatable] != 0,
		data:            data,
		setupSize:       setupSize,
		headerEnd:       headerEnd,
	}
	k.KernelVersion = kernelVersion(data[:setupSize])

	switch {
	case k.XLoadFlags&XLFKernel64 == 0:
		return nil, fmt.Errorf("kernel has no 64-bit entry point: XLF_KERNEL_64 is clear in xloadflags %#x (is it a 32-bit kernel?)", k.XLoadFlags)
	case len(data) == setupSize:
		return nil, fmt.Errorf("no protected-mode kernel after the %d setup sectors: file ends at %#x (truncated?)", sects, len(data))
	case k.KernelAlignment == 0 || k.KernelAlignment&(k.KernelAlignment-1) != 0:
		return nil, fmt.Errorf("kernel_alignment %#x is not a power of two", k.KernelAlignment)
	case k.InitSize == 0:
		return nil, errors.New("init_size is zero")
	case !k.Relocatable && (k.PrefAddress < HighMemoryStart || k.PrefAddress >= memory4G):
		return nil, fmt.Errorf("kernel is not relocatable and its pref_address %#x is not in [%#x, %#x)", k.PrefAddress, HighMemoryStart, uint64(memory4G))
	}
	return k, nil
}

const memory4G = 1 << 32

// kernelVersion returns the NUL-terminated printable string kernel_version
// points to (boot protocol §"Details of header fields", kernel_version:
// "a pointer to a NUL-terminated human-readable kernel version number
// string, less 0x200"), or "" if it is absent or malformed. setup is the
// real-mode code, where the string lives.
func kernelVersion(setup []byte) string {
	ptr := int(binary.LittleEndian.Uint16(setup[hdrKernelVersion:]))
	if ptr == 0 {
		return ""
	}
	start := ptr + 0x200
	if start >= len(setup) {
		return ""
	}
	const maxLen = 256
	s := setup[start:min(len(setup), start+maxLen)]
	end := bytes.IndexByte(s, 0)
	if end <= 0 {
		return ""
	}
	for _, c := range s[:end] {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return string(s[:end])
}

// SetupHeader returns the setup header as the kernel ships it: file bytes
// 0x1f1 up to 0x202 + data[0x201]. It is copied to the same offset of
// boot_params. The slice aliases the image.
func (k *BzImage) SetupHeader() []byte {
	return k.data[setupHeaderStart:k.headerEnd:k.headerEnd]
}

// ProtectedMode returns the protected-mode kernel: everything after the
// setup sectors, loaded at LoadAddress. The slice aliases the image.
func (k *BzImage) ProtectedMode() []byte {
	return k.data[k.setupSize:len(k.data):len(k.data)]
}

// LoadAddress returns where the protected-mode kernel is loaded:
// pref_address, which a non-relocatable kernel requires (boot protocol
// §"Details of header fields", pref_address). For a relocatable kernel an
// address below 1 MiB or at or above 4 GiB is replaced by DefaultLoadAddr,
// and the result is rounded up to kernel_alignment.
func (k *BzImage) LoadAddress() uint64 {
	if !k.Relocatable {
		return k.PrefAddress
	}
	addr := k.PrefAddress
	if addr < HighMemoryStart || addr >= memory4G {
		addr = DefaultLoadAddr
	}
	align := uint64(k.KernelAlignment)
	return (addr + align - 1) &^ (align - 1)
}

// Footprint returns how many bytes from LoadAddress the kernel occupies
// until it has parsed its memory map: init_size, or the payload's size if
// that is larger.
func (k *BzImage) Footprint() uint64 {
	return max(uint64(k.InitSize), uint64(len(k.ProtectedMode())))
}

// Setup header offsets of the compressed payload (boot protocol 2.08+,
// §"Details of header fields": payload_offset is relative to the start of
// the protected-mode code).
const (
	offPayloadOffset = 0x248
	offPayloadLength = 0x24c
)

// Payload returns the compressed kernel (an ELF vmlinux compressed with the
// kernel's configured method, e.g. XZ or LZ4) and the size it decompresses
// to, from the 4-byte little-endian trailer the kernel build appends to it.
// The slice excludes the trailer and aliases the image.
func (k *BzImage) Payload() (compressed []byte, size uint32, err error) {
	pm := k.ProtectedMode()
	off := uint64(binary.LittleEndian.Uint32(k.data[offPayloadOffset:]))
	n := uint64(binary.LittleEndian.Uint32(k.data[offPayloadLength:]))
	if n < 4 || off+n > uint64(len(pm)) {
		return nil, 0, fmt.Errorf("payload of %d bytes at %#x does not fit the %d-byte kernel", n, off, len(pm))
	}
	p := pm[off : off+n]
	return p[: n-4 : n-4], binary.LittleEndian.Uint32(p[n-4:]), nil
}
