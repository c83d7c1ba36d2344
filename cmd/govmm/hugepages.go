package main

import (
	"os"
	"strings"
	"syscall"

	"github.com/govmm/govmm/vmmproc"
)

// disableTHPEnv marks a govmm that already runs with the Go heap's huge
// pages off, so it does not re-execute itself again.
const disableTHPEnv = "GOVMM_HEAP_THP_OFF"

// thpModeFile says whether the kernel backs anonymous memory with
// transparent huge pages always, on madvise only, or never.
const thpModeFile = "/sys/kernel/mm/transparent_hugepage/enabled"

// withoutHeapHugePages re-executes govmm run with GODEBUG=disablethp=1
// where transparent huge pages are "always" (Debian's default). There, the
// first touch of each 2 MiB-aligned stretch of the Go heap faults in a whole
// huge page, and govmm's heap of about one MiB costs 3.5 MiB or more of
// resident memory per VM: most of its own overhead. The runtime reads this
// setting only from the environment at start (runtime/extern.go), so the
// process starts over, once, under the same PID; execve of the static
// binary costs about a millisecond. Guest RAM is not the Go heap and keeps
// its huge pages. It returns only when it does nothing, or the exec failed.
//
// When the VM will run in govmm-vmm, the process govmm run execs, this one
// starts nothing over: it only puts the setting in its environment, for
// govmm-vmm to start with.
func withoutHeapHugePages(args []string) {
	mode, _ := os.ReadFile(thpModeFile)
	if !heapTHPReexecNeeded(args, os.Getenv(disableTHPEnv) != "", string(mode)) {
		return
	}
	if _, err := vmmproc.Executable(); err == nil {
		for _, kv := range heapTHPEnv(os.Environ()) {
			if k, v, ok := strings.Cut(kv, "="); ok && (k == "GODEBUG" || k == disableTHPEnv) {
				os.Setenv(k, v)
			}
		}
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, args, heapTHPEnv(os.Environ())) // on failure, go on with huge pages
}

// heapTHPReexecNeeded decides: only `govmm run` (the one command whose
// memory is measured per VM), only once, only where THP is "always".
func heapTHPReexecNeeded(args []string, already bool, thpMode string) bool {
	return len(args) >= 2 && args[1] == "run" && !already && strings.Contains(thpMode, "[always]")
}

// heapTHPEnv is env with disablethp=1 added to GODEBUG (keeping what the
// user set there) and the re-exec mark.
func heapTHPEnv(env []string) []string {
	out := make([]string, 0, len(env)+2)
	godebug := "disablethp=1"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GODEBUG="); ok {
			if v != "" {
				godebug = v + ",disablethp=1"
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "GODEBUG="+godebug, disableTHPEnv+"=1")
}
