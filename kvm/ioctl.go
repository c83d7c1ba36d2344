package kvm

// ioctl request numbers are built the way <asm-generic/ioctl.h> builds them
// with _IO, _IOR, _IOW and _IOWR:
//
//	bits 31..30  direction (none, write, read, read|write)
//	bits 29..16  size of the argument structure
//	bits 15..8   type ("magic"), KVMIO = 0xAE for KVM
//	bits  7..0   command number
//
// "Write" and "read" are from user space's point of view: _IOW passes a
// structure into the kernel, _IOR gets one back. The struct sizes come from
// the sizeof* constants in abi.go, which sizes_unsafe.go pins to the Go
// mirrors at compile time, so a wrong mirror cannot produce a wrong request
// number. ioctl_test.go pins every number to the value computed by a C
// compiler from <linux/kvm.h>.

const (
	kvmio = 0xAE

	iocNone  = 0
	iocWrite = 1
	iocRead  = 2

	iocNRBits   = 8
	iocTypeBits = 8
	iocSizeBits = 14

	iocNRShift   = 0
	iocTypeShift = iocNRShift + iocNRBits
	iocSizeShift = iocTypeShift + iocTypeBits
	iocDirShift  = iocSizeShift + iocSizeBits
)

// ioc mirrors the kernel's _IOC macro for type KVMIO. It panics if size does
// not fit the 14-bit size field; all callers are package-level variables
// initialised from constants, so a panic can only happen at program start
// and only through a programming error that the tests catch.
func ioc(dir, nr, size uint) uint {
	if size >= 1<<iocSizeBits {
		panic("kvm: ioctl argument size does not fit in 14 bits")
	}
	if nr >= 1<<iocNRBits {
		panic("kvm: ioctl command number does not fit in 8 bits")
	}
	return dir<<iocDirShift | size<<iocSizeShift | kvmio<<iocTypeShift | nr<<iocNRShift
}

// io mirrors _IO(KVMIO, nr): no argument structure.
func io(nr uint) uint { return ioc(iocNone, nr, 0) }

// ior mirrors _IOR(KVMIO, nr, type): the kernel writes a structure back.
func ior(nr, size uint) uint { return ioc(iocRead, nr, size) }

// iow mirrors _IOW(KVMIO, nr, type): the kernel reads a structure.
func iow(nr, size uint) uint { return ioc(iocWrite, nr, size) }

// iowr mirrors _IOWR(KVMIO, nr, type): the kernel reads and writes back.
func iowr(nr, size uint) uint { return ioc(iocRead|iocWrite, nr, size) }

// System ioctls (api.rst section 4, "API description", class "system").
var (
	kvmGetAPIVersion       = io(0x00)
	kvmCreateVM            = io(0x01)
	kvmGetMSRIndexList     = iowr(0x02, sizeofMSRList)
	kvmCheckExtension      = io(0x03)
	kvmGetVCPUMmapSize     = io(0x04)
	kvmGetSupportedCPUID   = iowr(0x05, sizeofCPUID2)
	kvmSetUserMemoryRegion = iow(0x46, sizeofUserspaceMemoryRegion)
	kvmCreateVCPU          = io(0x41)
	kvmSetTSSAddr          = io(0x47)
	kvmSetIdentityMapAddr  = iow(0x48, sizeofUint64)
	kvmCreateIRQChip       = io(0x60)
	kvmIRQLine             = iow(0x61, sizeofIRQLevel)
	kvmSetGSIRouting       = iow(0x6a, sizeofIRQRouting)
	kvmIRQFD               = iow(0x76, sizeofIRQFD)
	kvmCreatePIT2          = iow(0x77, sizeofPITConfig)
	kvmIOEventFD           = iow(0x79, sizeofIOEventFD)
	kvmRun                 = io(0x80)
	kvmGetRegs             = ior(0x81, sizeofRegs)
	kvmSetRegs             = iow(0x82, sizeofRegs)
	kvmGetSregs            = ior(0x83, sizeofSregs)
	kvmSetSregs            = iow(0x84, sizeofSregs)
	kvmGetMSRs             = iowr(0x88, sizeofMSRs)
	kvmSetMSRs             = iow(0x89, sizeofMSRs)
	kvmGetFPU              = ior(0x8c, sizeofFPU)
	kvmSetFPU              = iow(0x8d, sizeofFPU)
	kvmGetLAPIC            = ior(0x8e, sizeofLAPICState)
	kvmSetLAPIC            = iow(0x8f, sizeofLAPICState)
	kvmSetCPUID2           = iow(0x90, sizeofCPUID2)
)
