// Package job is the contract between the nested harness on the host and the
// init program of its outer guest: what to run, and how the result comes
// back. Both sides share it so neither can drift.
package job

import "time"

// HeartbeatEvery is how often the outer init writes HeartbeatFile.
const HeartbeatEvery = 5 * time.Second

const (
	// HostRootTag is the 9p mount tag of the host's root file system, shared
	// read-only into the outer guest.
	HostRootTag = "govmm-hostroot"
	// JobTag is the 9p mount tag of the per-run directory, shared read-write,
	// that holds JobFile (host to guest) and StatusFile (guest to host).
	JobTag = "govmm-job"
	// WorkDirTag is the 9p mount tag of the job's working directory, shared
	// read-write when Job.ShareDir is set.
	WorkDirTag = "govmm-workdir"
	JobFile    = "job.json"
	StatusFile = "status.json"
	// HeartbeatFile is rewritten by the outer init every HeartbeatEvery
	// while the job runs, with a counter: a host that sees it stop
	// changing knows the outer kernel has hung, even one too stuck to
	// print a lockup report.
	HeartbeatFile = "heartbeat"

	// InsideEnv is set in the environment of every command the outer guest
	// runs, so a test binary knows it is already inside the harness.
	InsideEnv = "GOVMM_HARNESS_INSIDE"

	// ConsoleTTY carries the kernel's console and the init's own messages;
	// StdoutTTY and StderrTTY carry the command's two output streams, each to
	// its own file on the host, so they never interleave with kernel messages.
	ConsoleTTY = "/dev/ttyS0"
	StdoutTTY  = "/dev/ttyS1"
	StderrTTY  = "/dev/ttyS2"

	// StartedLine is what the outer init prints on ConsoleTTY just before it
	// starts the job. Until the host sees it nothing of the job has run, so
	// an outer guest that stalls before it may be restarted safely.
	StartedLine = "govmm-outer: starting the job"
)

// Job is what the outer guest runs: a command, seen in the host's file system
// (made writable by an in-memory overlay), as root.
type Job struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	Dir  string   `json:"dir"`
	// ShareDir mounts the host's Dir read-write over the overlay, so what
	// the command writes there (reports, charts) reaches the host.
	ShareDir bool `json:"share_dir,omitempty"`
}

// Status is what the outer guest reports back.
type Status struct {
	// ExitCode is the command's exit status (128+signal when a signal ended it).
	ExitCode int `json:"exit_code"`
	// Error is set when the outer init could not run the command at all.
	Error string `json:"error,omitempty"`
	// KVM says whether /dev/kvm was usable inside the outer guest.
	KVM bool `json:"kvm"`
}
