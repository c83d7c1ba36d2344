package devices

// Conventional PC addresses and interrupt lines. The models take no port
// numbers themselves; the VMM registers them on its buses at these bases
// and wires their IRQLines to these inputs. Sizes are in ports.
const (
	// COM1Port is the base of the first 8250/16550A UART (8 ports) and
	// COM1IRQ its ISA interrupt. COM2 sits at 0x2f8 on IRQ 3.
	COM1Port      = 0x3f8
	COM1IRQ       = 4
	COM2Port      = 0x2f8
	COM2IRQ       = 3
	UARTPortCount = 8

	// I8042DataPort and I8042CommandPort are the two ports of the PS/2
	// controller, registered separately (1 port each): port 0x61 between
	// them is the PIT speaker/NMI-status port, which KVM's in-kernel PIT
	// handles. I8042KbdIRQ and I8042AuxIRQ are its keyboard and mouse
	// interrupts.
	I8042DataPort    = 0x60
	I8042CommandPort = 0x64
	I8042KbdIRQ      = 1
	I8042AuxIRQ      = 12

	// RTCPort is the CMOS index port (0x70); the data port follows at 0x71.
	// RTCIRQ is its interrupt, which the rtc model does not drive.
	RTCPort      = 0x70
	RTCPortCount = 2
	RTCIRQ       = 8

	// PCIConfigPort is CONFIG_ADDRESS of PCI configuration mechanism #1
	// (0xcf8); CONFIG_DATA follows at 0xcfc. The pci model covers all
	// eight ports, including the reset control register at 0xcf9
	// (ResetControlPort), which shares the CONFIG_ADDRESS dword on PC
	// chipsets and is forwarded by the pci model (see package pci).
	PCIConfigPort      = 0xcf8
	PCIConfigPortCount = 8
	ResetControlPort   = 0xcf9

	// DebugExitPort receives the guest agent's exit status byte (where
	// QEMU's isa-debug-exit usually sits), and BootMarkerPort the boot
	// marker byte (Firecracker's convention); both are 1 port.
	DebugExitPort  = 0xf4
	BootMarkerPort = 0x3f0

	// Ports Linux writes that govmm deliberately does not emulate; the VMM
	// registers a legacy.Sink (1 port each) on them so they do not show up
	// as unhandled:
	//   - POSTPort (0x80): the POST-code diagnostic port. Linux writes it
	//     as its default I/O delay (io_delay=0x80) around PIC and PIT
	//     programming.
	//   - DMAPagePort (0x87): the 8237 DMA page register of channel 1,
	//     which some kernels and firmware poke while probing legacy DMA.
	//   - IODelayPort (0xed): the alternative I/O-delay port
	//     (io_delay=0xed) that Linux uses on some machines.
	POSTPort    = 0x80
	DMAPagePort = 0x87
	IODelayPort = 0xed
)
