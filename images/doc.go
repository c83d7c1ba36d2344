// Package images builds the guest images govmm boots and tests with: a pinned,
// checksum-verified Debian kernel (bzImage plus its modules), the guest
// initramfs (u-root with govmm's guest agent as uinit) and the outer-guest
// initramfs of the nested-KVM test harness.
//
// Images are built on demand into a cache directory and never committed.
// Every step is keyed by the content of its inputs, so a second build with
// nothing changed does no work.
package images
