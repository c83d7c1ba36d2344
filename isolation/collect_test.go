package isolation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// noSuchPID is beyond any pid_max (PID_MAX_LIMIT is 4M), so no process has it.
const noSuchPID = 1 << 30

// TestCollect runs Collect where the tests run and checks what must hold
// anywhere.
func TestCollect(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir()) // where the scratch directory goes
	r := Collect(Options{})
	for k, v := range r.Errors {
		t.Logf("error %s: %s", k, v)
	}

	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	assert.Equal(t, unix.ByteSliceToString(u.Release[:]), r.Kernel.Release)
	assert.NotEmpty(t, r.Kernel.Version)
	assert.Len(t, r.Kernel.BootID, 36, "a UUID")
	assert.LessOrEqual(t, len(r.Kernel.Cmdline), CmdlineMax)
	assert.Equal(t, unix.ByteSliceToString(u.Nodename[:]), r.Hostname)

	assert.Equal(t, os.Getpid(), r.Processes.PID)
	assert.Positive(t, r.Processes.VisibleCount)
	assert.True(t, r.Processes.PID1Cmdline != "" || r.Errors[ErrPID1Cmdline] != "", "PID 1's command or why not")

	assert.Equal(t, os.Getuid(), r.Identity.UID)
	assert.NotEmpty(t, r.Identity.CapEff)
	assert.Contains(t, []int{0, 1, 2}, r.Identity.Seccomp)

	assert.GreaterOrEqual(t, r.Resources.CPUsOnline, 1)
	assert.GreaterOrEqual(t, r.Resources.CPUsAffinity, 1)
	assert.Positive(t, r.Resources.MemTotalBytes)
	assert.True(t, r.Resources.CgroupMemoryMax != "" || r.Errors[ErrCgroupMemory] != "", "a memory limit or why not")

	assert.NotEmpty(t, r.Mounts.List)
	assert.Equal(t, len(r.Mounts.List), r.Mounts.Count)
	assert.NotEmpty(t, r.Mounts.RootFSType)
	assert.Equal(t, len(r.Devices.Names), r.Devices.Count)
	assert.True(t, len(r.Interfaces) > 0 || r.Errors[ErrInterfaces] != "")

	assert.Equal(t, Visibility{HostPID: skipped(""), HostFile: skipped(""), HostTCP: skipped("")}, r.Visibility)
	assert.Equal(t, 1, r.Privileged.PtracePID, "PID 1 when no host PID is given")
	for name, c := range map[string]Check{
		"load_module": r.Privileged.LoadModule,
		"kexec":       r.Privileged.Kexec,
		"ptrace_read": r.Privileged.PtraceRead,
		"io_ports":    r.Privileged.IOPorts,
		"mknod_block": r.Privileged.MknodBlock,
		"mount":       r.Privileged.Mount,
	} {
		assert.NotEmpty(t, c.Result, name)
		t.Logf("%s: %+v", name, c)
	}
	assert.Positive(t, r.PeakRSSBytes)

	// Every fact is in the report line and back.
	line, err := FormatReport(r)
	require.NoError(t, err)
	back, err := ParseReport(line)
	require.NoError(t, err)
	assert.Equal(t, r, back)
}

// TestCollectLeavesNoTrace checks the privileged operations undid
// themselves: no scratch directory, no mount left behind.
func TestCollectLeavesNoTrace(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	r := Collect(Options{})
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries)
	mountinfo, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	assert.NotContains(t, string(mountinfo), "govmm-probe-")
	t.Logf("mknod: %+v, mount: %+v", r.Privileged.MknodBlock, r.Privileged.Mount)
}

func TestCollectSeesThisHost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	file := filepath.Join(t.TempDir(), "host-only")
	require.NoError(t, os.WriteFile(file, nil, 0o600))

	r := Collect(Options{HostPID: os.Getpid(), HostFile: file, HostAddr: ln.Addr().String()})
	ok := Check{Allowed: true, Result: "ok"}
	assert.Equal(t, Visibility{HostPID: ok, HostFile: ok, HostTCP: ok}, r.Visibility)
	// Reading its own memory is always allowed: address 0 is just unmapped.
	assert.Equal(t, os.Getpid(), r.Privileged.PtracePID)
	assert.Equal(t, Check{Allowed: true, Result: "EFAULT: bad address"}, r.Privileged.PtraceRead)
}

func TestCollectMissesWhatIsNotThere(t *testing.T) {
	// A port that nothing listens on: bound, then closed again.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	r := Collect(Options{HostPID: noSuchPID, HostFile: "/nonexistent/govmm-probe", HostAddr: addr})
	assert.Equal(t, Check{Result: "ESRCH: no such process"}, r.Visibility.HostPID)
	assert.Equal(t, Check{Result: "ENOENT: no such file or directory"}, r.Visibility.HostFile)
	assert.Equal(t, Check{Result: "ECONNREFUSED: connection refused"}, r.Visibility.HostTCP)
	assert.Equal(t, Check{Result: "ESRCH: no such process"}, r.Privileged.PtraceRead)
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		passed []unix.Errno
		want   Check
	}{
		{name: "success", err: nil, want: Check{Allowed: true, Result: "ok"}},
		{name: "denied", err: unix.EPERM, passed: []unix.Errno{unix.EBADF}, want: Check{Result: "EPERM: operation not permitted"}},
		{name: "passed the check", err: unix.EBADF, passed: []unix.Errno{unix.EBADF}, want: Check{Allowed: true, Result: "EBADF: bad file descriptor"}},
		{name: "not built in", err: unix.ENOSYS, passed: []unix.Errno{unix.EBADF}, want: Check{Result: "ENOSYS: function not implemented"}},
		{name: "wrapped", err: &os.PathError{Op: "stat", Path: "/x", Err: unix.ENOENT}, want: Check{Result: "ENOENT: no such file or directory"}},
		{name: "wrapped and passed", err: fmt.Errorf("kill: %w", unix.EPERM), passed: []unix.Errno{unix.EPERM}, want: Check{Allowed: true, Result: "EPERM: operation not permitted"}},
		{name: "no errno", err: errors.New("something else"), want: Check{Result: "something else"}},
		{name: "unknown errno", err: unix.Errno(4095), want: Check{Result: "errno 4095: " + unix.Errno(4095).Error()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, outcome(tt.err, tt.passed...))
		})
	}
}

func TestDescribeTimeout(t *testing.T) {
	err := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}
	assert.True(t, strings.HasPrefix(describe(err), "timeout: "), describe(err))
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func TestScratchOpsWithoutWritableDirectory(t *testing.T) {
	mknod, mount := checkScratchOps("/nonexistent/a", "/nonexistent/b")
	assert.Equal(t, "skipped: no writable directory (ENOENT: no such file or directory)", mknod.Result)
	assert.False(t, mknod.Allowed)
	assert.Equal(t, mknod, mount)
}
