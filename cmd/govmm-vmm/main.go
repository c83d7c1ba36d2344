// Command govmm-vmm runs one VM for 'govmm run', which execs it with the
// VM's description once it has checked the flags and prepared the images.
// It holds the VMM and nothing else, so the process that runs guest code
// maps as little as it can. It is not meant to be started by hand.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/govmm/govmm/vmmproc"
)

// exitUsage is govmm's status for a usage error.
const exitUsage = 2

func main() {
	spec, err := vmmproc.SpecFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", vmmproc.ExecutableName, err)
		os.Exit(exitUsage)
	}
	code, err := vmmproc.Run(context.Background(), spec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "govmm: %v\n", err)
		os.Exit(vmmproc.ExitFailure)
	}
	os.Exit(code)
}
