// Package legacy holds govmm's small single-register PC ports:
//
//   - [ResetControl]: the chipset's reset control register (port 0xcf9 on
//     PCs, reached through package pci's Host). Writing it with bit 2
//     (RST_CPU) set resets the machine; Linux's reboot=pci path writes 0x02
//     then 0x06.
//   - [DebugExit]: a one-byte port (0xf4 in govmm) to which the guest agent
//     writes its command's exit status, where QEMU's isa-debug-exit usually
//     sits.
//   - [BootMarker]: a one-byte port (0x3f0 in govmm, Firecracker's
//     convention) to which the guest's init writes 123 when it starts, so
//     the VMM can time the boot without parsing console output.
//   - [Sink]: a device for ports that Linux writes but govmm deliberately
//     does not emulate, so they do not count as unhandled (see the list in
//     package devices, layout.go): reads return all ones, writes are
//     dropped, and both are counted.
//
// The models take no port numbers; the VMM registers them. Their callbacks
// run on the goroutine of the vCPU that made the access, without any lock
// held, once per qualifying write.
package legacy
