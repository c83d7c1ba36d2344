// Package vmm wires a virtual machine together: KVM, guest memory, the
// boot loader, the devices and the vCPUs, and decides what the guest's end
// means (its command's exit status, a power-off, a reset, a panic). It owns
// no device or ABI logic of its own; those live in their packages.
package vmm
