// Package vmmproc is the process that runs a VM.
//
// `govmm run` parses flags, finds images, builds container disks and so on;
// then, by exec, it becomes govmm-vmm, a small executable that holds the VMM
// and nothing else (no command-line framework, no image builder, no
// benchmarks), and hands it a Spec. The process that runs guest code thus
// maps less code: less resident memory per VM, and less code a hostile
// guest could find a way into. Exec, not a child process, keeps one process
// per VM: the same PID, terminal, signals and exit status as before.
//
// Without govmm-vmm beside govmm (or at $GOVMM_VMM), govmm runs the VM in
// its own process: the same Run, only with more of govmm mapped.
package vmmproc
