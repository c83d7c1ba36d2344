package devices

// Device is one emulated device as a bus sees it.
//
// offset is relative to the base at which the device was registered, and
// data is the access: 1, 2, 4 or 8 bytes in the guest's (little-endian)
// byte order. Read fills data; Write consumes it. The bus only passes
// accesses that lie wholly inside the device's range, but a device must
// still cope with any offset and length without panicking: the guest is
// hostile. Neither method returns an error: guest mistakes are counted and
// logged by the device, never fatal. data must not be retained after the
// call returns (it usually aliases the vCPU's kvm_run page).
type Device interface {
	Read(offset uint64, data []byte)
	Write(offset uint64, data []byte)
}

// IRQLine is one interrupt input of the interrupt controller, as seen by a
// device. SetLevel(true) asserts the line and SetLevel(false) deasserts it.
// The VMM implements it with KVM_IRQ_LINE on the in-kernel irqchip, which
// turns a low-to-high transition into an edge for edge-triggered inputs.
//
// Devices call SetLevel with their own lock held: an implementation must
// not call back into the device, and should return promptly.
type IRQLine interface {
	SetLevel(high bool)
}

// IRQLineFunc adapts a function to [IRQLine].
type IRQLineFunc func(high bool)

// SetLevel calls f(high).
func (f IRQLineFunc) SetLevel(high bool) { f(high) }

// NoIRQ is an [IRQLine] that goes nowhere, for devices wired to no
// interrupt (guests that poll).
type NoIRQ struct{}

// SetLevel does nothing.
func (NoIRQ) SetLevel(bool) {}
