// Package vcpu prepares KVM vCPUs for a Linux guest (CPUID, MSRs, FPU, local
// APIC, the boot register state) and runs each one in an exit loop that only
// decodes and dispatches: port I/O and MMIO go to the VMM's buses, every
// other exit ends the loop with a typed reason. No device logic lives here.
package vcpu
