package main

import (
	"os"
	"strings"
	"syscall"
)

// disableTHPEnv marks a govmm that already runs with the Go heap's huge
// pages off, so it does not re-execute itself again.
const disableTHPEnv = "GOVMM_HEAP_THP_OFF"

// withoutHeapHugePages re-executes govmm run with GODEBUG=disablethp=1
// where transparent huge pages are "always" (Debian's default). There, the
// first touch of each 2 MiB-aligned stretch of the Go heap faults in a whole
// huge page, and govmm's heap of about one MiB costs 3.5 MiB or more of
// resident memory per VM: most of its own overhead. The runtime reads this
// setting only from the environment at start (runtime/extern.go), so the
// process starts over, once, under the same PID; execve of the static
// binary costs about a millisecond. Guest RAM is not the Go heap and keeps
// its huge pages. It returns only when it does nothing, or the exec failed.
func withoutHeapHugePages(args []string) {
	if len(args) < 2 || args[1] != "run" || os.Getenv(disableTHPEnv) != "" {
		return
	}
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || !strings.Contains(string(mode), "[always]") {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	godebug := "disablethp=1"
	if old := os.Getenv("GODEBUG"); old != "" {
		godebug = old + ",disablethp=1"
	}
	env := append(os.Environ(), "GODEBUG="+godebug, disableTHPEnv+"=1")
	_ = syscall.Exec(exe, args, env) // on failure, go on with huge pages
}
