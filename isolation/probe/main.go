// Command probe reports what a process sees and may do where it runs: on
// the host, in a container, in a govmm guest. It prints
// isolation.StartedLine at once, then the report as one line,
// isolation.ReportPrefix and compact JSON, and exits with the status --exit
// asks for (the VMM's tests check exit statuses propagate).
//
// It is built static (CGO_ENABLED=0) to run in any root file system, and
// is a plain main package so it also fits in a u-root busybox.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/govmm/govmm/isolation"
)

func main() {
	// First, before flags or anything else: the line times process start.
	// os.Stdout is unbuffered, so it is out when the write returns.
	fmt.Fprintln(os.Stdout, isolation.StartedLine)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, reports to stdout and returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts isolation.Options
	fs.IntVar(&opts.HostPID, "host-pid", 0, "a `pid` on the host, to check whether it is visible (0 skips)")
	fs.StringVar(&opts.HostFile, "host-file", "", "a `path` only the host sees, to check whether it is visible")
	fs.StringVar(&opts.HostAddr, "host-addr", "", "a `host:port` TCP listener on the host, to check whether it is reachable")
	exit := fs.Int("exit", 0, "exit `status` after reporting")
	sleep := fs.Duration("sleep", 0, "how long to sleep after reporting, before exiting")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "probe: unexpected arguments %q\n", fs.Args())
		return 2
	}
	line, err := isolation.FormatReport(isolation.Collect(opts))
	if err != nil {
		fmt.Fprintf(stderr, "probe: %v\n", err)
		return 1
	}
	// One write, so no other output on the console splits the line.
	if _, err := stdout.Write(line); err != nil {
		fmt.Fprintf(stderr, "probe: write report: %v\n", err)
		return 1
	}
	time.Sleep(*sleep)
	return *exit
}
