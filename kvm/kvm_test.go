package kvm

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The tests in this file need a working /dev/kvm. They do not skip when it
// is missing: the harness that runs this package decides where they run.

func openKVM(t *testing.T) *System {
	t.Helper()
	sys, err := Open(DevicePath)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, sys.Close()) })
	return sys
}

const (
	codeGPA    = 0x1000 // guest-physical address of the one RAM page
	serialPort = 0x3f8
	maxExits   = 1000 // bounds every run loop so a broken guest cannot hang a test
)

// newGuestPage maps one anonymous page for guest RAM, the way the memory
// package does.
func newGuestPage(t *testing.T) []byte {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, pageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, unix.Munmap(mem)) })
	return mem
}

func createVM(t *testing.T, sys *System) *VM {
	t.Helper()
	vm, err := sys.CreateVM()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, vm.Close()) })
	return vm
}

func createVCPU(t *testing.T, vm *VM, id int) *VCPU {
	t.Helper()
	vcpu, err := vm.CreateVCPU(id)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, vcpu.Close()) })
	return vcpu
}

// newRealModeVCPU builds a VM with one page of RAM at codeGPA holding code,
// and a vCPU in real mode about to execute it: CS base and selector 0,
// RIP = codeGPA, RFLAGS = 2 (bit 1 is reserved and must be set).
func newRealModeVCPU(t *testing.T, code []byte) *VCPU {
	t.Helper()
	sys := openKVM(t)
	mem := newGuestPage(t)
	require.LessOrEqual(t, len(code), len(mem))
	copy(mem, code)

	vm := createVM(t, sys)
	require.NoError(t, vm.SetUserMemoryRegion(0, codeGPA, mem, 0))
	vcpu := createVCPU(t, vm, 0)

	sregs, err := vcpu.GetSregs()
	require.NoError(t, err)
	sregs.CS.Base = 0
	sregs.CS.Selector = 0
	require.NoError(t, vcpu.SetSregs(sregs))
	require.NoError(t, vcpu.SetRegs(Regs{RIP: codeGPA, RFLAGS: 2, RAX: 0xaaaa_aaaa_aaaa_aaaa}))
	return vcpu
}

// x86 real-mode instruction encodings used by the test guests.
func movDX(v uint16) []byte { return []byte{0xba, byte(v), byte(v >> 8)} } // mov dx, imm16
func movAL(v byte) []byte   { return []byte{0xb0, v} }                     // mov al, imm8

var (
	outDXAL = []byte{0xee}       // out dx, al
	inALDX  = []byte{0xec}       // in al, dx
	inAXDX  = []byte{0xed}       // in ax, dx
	inEAXDX = []byte{0x66, 0xed} // in eax, dx (operand-size prefix in 16-bit code)
	hlt     = []byte{0xf4}
)

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// serialProgram writes msg to the serial port a byte at a time, then halts.
func serialProgram(msg string) []byte {
	code := movDX(serialPort)
	for i := 0; i < len(msg); i++ {
		code = concat(code, movAL(msg[i]), outDXAL)
	}
	return concat(code, hlt)
}

func TestSmokeRealMode(t *testing.T) {
	const msg = "govmm\n"
	vcpu := newRealModeVCPU(t, serialProgram(msg))

	var out []byte
	var exits []Exit
	for len(exits) < maxExits {
		exit, err := vcpu.Run()
		require.NoError(t, err)
		if _, ok := exit.(IntrExit); ok {
			continue // a signal for the Go runtime; not the guest's doing
		}
		exits = append(exits, exit)
		if pio, ok := exit.(*IOExit); ok && pio.Port == serialPort && pio.Direction == IOOut {
			out = append(out, pio.Data...)
		}
		if _, ok := exit.(HLTExit); ok {
			break
		}
	}

	assert.Equal(t, msg, string(out))
	require.Len(t, exits, len(msg)+1, "one exit per byte, then HLT")
	for i, exit := range exits[:len(msg)] {
		pio, ok := exit.(*IOExit)
		require.True(t, ok, "exit %d is %T (%v), want *IOExit", i, exit, exit.ExitReason())
		assert.Equal(t, uint16(serialPort), pio.Port)
		assert.Equal(t, IOOut, pio.Direction)
		assert.Equal(t, uint8(1), pio.Size)
		assert.Equal(t, uint32(1), pio.Count)
		assert.Len(t, pio.Data, 1)
	}
	assert.Equal(t, HLTExit{}, exits[len(exits)-1])
	assert.Equal(t, ExitHLT, exits[len(exits)-1].ExitReason())

	regs, err := vcpu.GetRegs()
	require.NoError(t, err)
	assert.Equal(t, uint64(codeGPA+len(serialProgram(msg))), regs.RIP, "RIP is just past the HLT")
}

// runToHLT runs vcpu, answering I/O and MMIO exits with handle, until it
// halts; it returns the exits other than IntrExit.
func runToHLT(t *testing.T, vcpu *VCPU, handle func(Exit)) []Exit {
	t.Helper()
	var exits []Exit
	for range maxExits {
		exit, err := vcpu.Run()
		require.NoError(t, err)
		if _, ok := exit.(IntrExit); ok {
			continue
		}
		exits = append(exits, exit)
		if _, ok := exit.(HLTExit); ok {
			return exits
		}
		handle(exit)
	}
	require.FailNow(t, "guest did not halt", "after %d exits", maxExits)
	return nil
}

func TestRealModePortIn(t *testing.T) {
	const port = 0x510
	tests := []struct {
		name    string
		insn    []byte
		size    uint8
		data    []byte
		wantRAX uint64
		raxMask uint64
	}{
		// IN AL and IN AX merge into RAX and leave the other bits alone.
		{name: "in al, dx", insn: inALDX, size: 1, data: []byte{0x5a}, wantRAX: 0xaaaa_aaaa_aaaa_aa5a, raxMask: ^uint64(0)},
		{name: "in ax, dx", insn: inAXDX, size: 2, data: []byte{0x34, 0x12}, wantRAX: 0xaaaa_aaaa_aaaa_1234, raxMask: ^uint64(0)},
		// What IN EAX does to bits 63:32 outside 64-bit mode is not
		// architectural; compare EAX only.
		{name: "in eax, dx", insn: inEAXDX, size: 4, data: []byte{0xef, 0xbe, 0xad, 0xde}, wantRAX: 0xdead_beef, raxMask: 0xffff_ffff},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vcpu := newRealModeVCPU(t, concat(movDX(port), tc.insn, hlt))
			exits := runToHLT(t, vcpu, func(exit Exit) {
				pio, ok := exit.(*IOExit)
				require.True(t, ok, "got %T (%v), want *IOExit", exit, exit.ExitReason())
				assert.Equal(t, uint16(port), pio.Port)
				assert.Equal(t, IOIn, pio.Direction)
				assert.Equal(t, tc.size, pio.Size)
				assert.Equal(t, uint32(1), pio.Count)
				require.Len(t, pio.Data, len(tc.data))
				copy(pio.Data, tc.data)
			})
			assert.Len(t, exits, 2, "one IN exit, then HLT")

			regs, err := vcpu.GetRegs()
			require.NoError(t, err)
			assert.Equal(t, tc.wantRAX, regs.RAX&tc.raxMask, "RAX = %#x", regs.RAX)
		})
	}
}

func TestRealModeMMIO(t *testing.T) {
	// Neither 0x8000 nor 0x9000 is backed by a memory slot, so both
	// accesses exit as MMIO. DS is 0 after reset, so the offsets are
	// guest-physical addresses.
	code := concat(
		[]byte{0xc6, 0x06, 0x00, 0x80, 0x5a}, // mov byte [0x8000], 0x5a
		[]byte{0xa0, 0x00, 0x90},             // mov al, [0x9000]
		hlt,
	)
	vcpu := newRealModeVCPU(t, code)
	type access struct {
		addr    uint64
		isWrite bool
		data    []byte // what the guest wrote; nil for reads, whose buffer holds stale bytes
		length  int
	}
	var got []access
	runToHLT(t, vcpu, func(exit Exit) {
		mmio, ok := exit.(*MMIOExit)
		require.True(t, ok, "got %T (%v), want *MMIOExit", exit, exit.ExitReason())
		a := access{addr: mmio.Addr, isWrite: mmio.IsWrite, length: len(mmio.Data)}
		if mmio.IsWrite {
			a.data = append([]byte(nil), mmio.Data...)
		} else {
			copy(mmio.Data, []byte{0x77})
		}
		got = append(got, a)
	})
	assert.Equal(t, []access{
		{addr: 0x8000, isWrite: true, data: []byte{0x5a}, length: 1},
		{addr: 0x9000, isWrite: false, length: 1},
	}, got)

	regs, err := vcpu.GetRegs()
	require.NoError(t, err)
	assert.Equal(t, uint64(0xaaaa_aaaa_aaaa_aa77), regs.RAX)
}

func TestImmediateExit(t *testing.T) {
	vcpu := newRealModeVCPU(t, serialProgram("x"))

	vcpu.SetImmediateExit(true)
	for range 3 {
		exit, err := vcpu.Run()
		require.NoError(t, err)
		assert.Equal(t, IntrExit{}, exit, "with immediate_exit set, Run must return at once")
	}
	regs, err := vcpu.GetRegs()
	require.NoError(t, err)
	assert.Equal(t, uint64(codeGPA), regs.RIP, "the guest must not have run")

	vcpu.SetImmediateExit(false)
	var out []byte
	runToHLT(t, vcpu, func(exit Exit) {
		if pio, ok := exit.(*IOExit); ok {
			out = append(out, pio.Data...)
		}
	})
	assert.Equal(t, "x", string(out))
}

func TestCapabilities(t *testing.T) {
	sys := openKVM(t)
	// Everything govmm relies on; an x86 kernel from this decade has all
	// of them.
	require.NoError(t, sys.RequireExtensions(
		CapIRQChip, CapHLT, CapUserMemory, CapSetTSSAddr, CapExtCPUID, CapNrVCPUs, CapMaxVCPUs,
		CapPIT2, CapIOEventFD, CapIRQFD, CapIRQRouting, CapImmediateExit, CapSetIdentityMapAddr,
	))

	n, err := sys.CheckExtension(CapMaxVCPUs)
	require.NoError(t, err)
	assert.Positive(t, n)

	n, err = sys.CheckExtension(Capability(0x7fff_ffff))
	require.NoError(t, err)
	assert.Zero(t, n, "an unknown capability is reported as absent, not as an error")

	err = sys.RequireExtensions(CapIRQChip, Capability(0x7fff_fffe), Capability(0x7fff_ffff))
	require.ErrorIs(t, err, ErrMissingCapability)
	assert.ErrorContains(t, err, "KVM_CAP(2147483646), KVM_CAP(2147483647)")
	assert.NotContains(t, err.Error(), "KVM_CAP_IRQCHIP")

	size, err := sys.VCPUMmapSize()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, size, 4096)
}

func TestCPUIDAndMSRs(t *testing.T) {
	sys := openKVM(t)
	cpuid, err := sys.SupportedCPUID()
	require.NoError(t, err)
	require.NotEmpty(t, cpuid)
	assert.Equal(t, uint32(0), cpuid[0].Function, "leaf 0 comes first")
	assert.NotZero(t, cpuid[0].EBX, "leaf 0 carries the vendor string")

	msrs, err := sys.MSRIndexList()
	require.NoError(t, err)
	const msrIA32SysenterCS = 0x174
	assert.Contains(t, msrs, uint32(msrIA32SysenterCS))

	vm := createVM(t, sys)
	vcpu := createVCPU(t, vm, 0)
	require.NoError(t, vcpu.SetCPUID2(cpuid))

	require.NoError(t, vcpu.SetMSRs([]MSREntry{{Index: msrIA32SysenterCS, Data: 0x10}}))
	got := []MSREntry{{Index: msrIA32SysenterCS}}
	require.NoError(t, vcpu.GetMSRs(got))
	assert.Equal(t, uint64(0x10), got[0].Data)

	// An MSR that does not exist is refused, and the error names it.
	err = vcpu.SetMSRs([]MSREntry{{Index: msrIA32SysenterCS, Data: 0x10}, {Index: 0xdead0000, Data: 1}})
	require.Error(t, err)
	assert.ErrorContains(t, err, "0xdead0000")
}

func TestRegisterRoundTrip(t *testing.T) {
	sys := openKVM(t)
	vm := createVM(t, sys)
	vcpu := createVCPU(t, vm, 0)
	assert.Equal(t, 0, vcpu.ID())

	want := Regs{RAX: 1, RBX: 2, RCX: 3, RDX: 4, RSI: 5, RDI: 6, RSP: 7, RBP: 8,
		R8: 9, R9: 10, R10: 11, R11: 12, R12: 13, R13: 14, R14: 15, R15: 16, RIP: 0xfff0, RFLAGS: 0x202}
	require.NoError(t, vcpu.SetRegs(want))
	got, err := vcpu.GetRegs()
	require.NoError(t, err)
	assert.Equal(t, want, got)

	sregs, err := vcpu.GetSregs()
	require.NoError(t, err)
	// The architectural reset state (SDM vol. 3, "Processor State After
	// Reset"): execution starts at F000:FFF0 with CS base 0xffff0000.
	assert.Equal(t, uint16(0xf000), sregs.CS.Selector)
	assert.Equal(t, uint64(0xffff0000), sregs.CS.Base)
	sregs.CR2 = 0x1234_5000
	require.NoError(t, vcpu.SetSregs(sregs))
	sregs2, err := vcpu.GetSregs()
	require.NoError(t, err)
	assert.Equal(t, sregs, sregs2)

	fpu, err := vcpu.GetFPU()
	require.NoError(t, err)
	assert.Equal(t, uint16(0x37f), fpu.FCW, "x87 control word after FNINIT")
	// Round toward zero, all exceptions masked. (MXCSR is not used here:
	// some kernels do not round-trip it through KVM_SET_FPU/KVM_GET_FPU.)
	fpu.FCW = 0xf7f
	require.NoError(t, vcpu.SetFPU(fpu))
	fpu2, err := vcpu.GetFPU()
	require.NoError(t, err)
	assert.Equal(t, uint16(0xf7f), fpu2.FCW)
}

func TestVMDevices(t *testing.T) {
	sys := openKVM(t)
	vm := createVM(t, sys)

	require.NoError(t, vm.SetTSSAddr(0xfffb_d000))
	require.NoError(t, vm.SetIdentityMapAddr(0xfffb_c000))
	require.NoError(t, vm.CreateIRQChip())
	require.NoError(t, vm.CreatePIT2(PITConfig{Flags: PITSpeakerDummy}))
	require.NoError(t, vm.IRQLine(4, true))
	require.NoError(t, vm.IRQLine(4, false))

	// Keep the default legacy routes for GSIs 0-15 and add one MSI route.
	var routes []IRQRoutingEntry
	for gsi := uint32(0); gsi < 16; gsi++ {
		if gsi != 2 {
			chip, pin := uint32(IRQChipPICMaster), gsi
			if gsi >= 8 {
				chip, pin = IRQChipPICSlave, gsi-8
			}
			routes = append(routes, IRQRoutingIRQChipEntry(gsi, chip, pin))
		}
		routes = append(routes, IRQRoutingIRQChipEntry(gsi, IRQChipIOAPIC, gsi))
	}
	routes = append(routes, IRQRoutingMSIEntry(24, 0xfee0_0000, 0x4041))
	require.NoError(t, vm.SetGSIRouting(routes))

	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, unix.Close(efd)) })

	require.NoError(t, vm.IRQFD(IRQFD{FD: uint32(efd), GSI: 24}))
	require.NoError(t, vm.IRQFD(IRQFD{FD: uint32(efd), GSI: 24, Flags: IRQFDFlagDeassign}))

	ioev := IOEventFD{Addr: 0xd000_0000, Len: 4, FD: int32(efd)}
	require.NoError(t, vm.IOEventFD(ioev))
	ioev.Flags = IOEventFDFlagDeassign
	require.NoError(t, vm.IOEventFD(ioev))

	vcpu := createVCPU(t, vm, 0)
	lapic, err := vcpu.GetLAPIC()
	require.NoError(t, err)
	require.NoError(t, vcpu.SetLAPIC(lapic))

	// Once a vCPU exists the identity map can no longer move.
	require.Error(t, vm.SetIdentityMapAddr(0xfffb_b000))
}

func TestMemoryRegionValidation(t *testing.T) {
	sys := openKVM(t)
	vm := createVM(t, sys)
	mem := newGuestPage(t)

	tests := []struct {
		name    string
		gpa     uint64
		host    []byte
		wantErr string
	}{
		{name: "empty", gpa: 0, host: nil, wantErr: "empty"},
		{name: "unaligned address", gpa: 0x1001, host: mem, wantErr: "0x1001"},
		{name: "unaligned size", gpa: 0x1000, host: mem[:100], wantErr: "not a multiple"},
		{name: "wraps", gpa: ^uint64(0) - 0xfff, host: mem, wantErr: "wraps"},
		{name: "unaligned host mapping", gpa: 0x1000, host: mem[1:], wantErr: "not a multiple"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorContains(t, vm.SetUserMemoryRegion(1, tc.gpa, tc.host, 0), tc.wantErr)
		})
	}

	require.NoError(t, vm.SetUserMemoryRegion(1, 0x10_0000, mem, 0))
	// Overlapping an existing slot is rejected by the kernel.
	err := vm.SetUserMemoryRegion(2, 0x10_0000, mem, 0)
	require.ErrorIs(t, err, unix.EEXIST)
	assert.ErrorContains(t, err, "0x100000")
	require.NoError(t, vm.DeleteUserMemoryRegion(1))
	require.NoError(t, vm.SetUserMemoryRegion(2, 0x10_0000, mem, MemReadonly))
}

func TestCloseIsIdempotent(t *testing.T) {
	sys, err := Open(DevicePath)
	require.NoError(t, err)
	vm, err := sys.CreateVM()
	require.NoError(t, err)
	vcpu, err := vm.CreateVCPU(0)
	require.NoError(t, err)

	for range 2 {
		assert.NoError(t, vcpu.Close())
		assert.NoError(t, vm.Close())
		assert.NoError(t, sys.Close())
	}
}

// TestIOEventFDSignalsWithoutExit checks that a guest write to a port with
// an ioeventfd is absorbed by KVM: the eventfd counts it and user space
// sees no I/O exit.
func TestIOEventFDSignalsWithoutExit(t *testing.T) {
	const port = 0x600
	sys := openKVM(t)
	mem := newGuestPage(t)
	copy(mem, concat(movDX(port), movAL(1), outDXAL, hlt))
	vm := createVM(t, sys)
	require.NoError(t, vm.SetUserMemoryRegion(0, codeGPA, mem, 0))

	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, unix.Close(efd)) })
	require.NoError(t, vm.IOEventFD(IOEventFD{Addr: port, Len: 1, FD: int32(efd), Flags: IOEventFDFlagPIO}))

	vcpu := createVCPU(t, vm, 0)
	sregs, err := vcpu.GetSregs()
	require.NoError(t, err)
	sregs.CS.Base, sregs.CS.Selector = 0, 0
	require.NoError(t, vcpu.SetSregs(sregs))
	require.NoError(t, vcpu.SetRegs(Regs{RIP: codeGPA, RFLAGS: 2}))

	exits := runToHLT(t, vcpu, func(exit Exit) {
		assert.Fail(t, "unexpected exit", "%T (%v)", exit, exit.ExitReason())
	})
	assert.Len(t, exits, 1, "only the HLT reaches user space")

	var counter [8]byte
	n, err := unix.Read(efd, counter[:])
	require.NoError(t, err, "the eventfd must have been signalled")
	assert.Equal(t, 8, n)
	assert.Equal(t, uint64(1), nativeEndian.Uint64(counter[:]))
}
