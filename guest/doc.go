// Package guest holds what the host and govmm's guest agent agree on: how a
// command travels to the guest on the kernel command line, and the I/O ports
// the agent uses to talk back (boot marker, exit status).
//
// The agent itself is the command in ./agent, built into the guest initramfs
// as u-root's uinit.
package guest
