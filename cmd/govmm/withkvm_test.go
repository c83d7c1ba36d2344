package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/internal/devtest"
)

// govmm with-kvm, told to stop with SIGTERM (what timeout(1), a cancelled CI
// job and service managers send), stops its command and exits 130, as for
// Ctrl-C, instead of dying and leaving the command running.
func TestWithKVMStopsItsCommandOnSIGTERM(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	require.NoError(t, err)
	pidFile := filepath.Join(t.TempDir(), "pid")
	// The shell writes its PID, then becomes sleep under that PID.
	cmd := exec.Command(exe, "with-kvm", "--", "sh", "-c", `echo $$ > "$1.tmp" && mv "$1.tmp" "$1" && exec sleep 600`, "sh", pidFile)
	cmd.Env = append(os.Environ(), asGovmmEnv+"=1")
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()

	var sleeper int
	require.Eventually(t, func() bool {
		data, err := os.ReadFile(pidFile)
		if err != nil {
			return false
		}
		sleeper, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil
	}, time.Minute, 50*time.Millisecond, "the command did not start")
	defer syscall.Kill(sleeper, syscall.SIGKILL) // not left behind if the test fails

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("govmm with-kvm went on running after SIGTERM")
	}
	assert.Equal(t, 130, cmd.ProcessState.ExitCode(), "exit status")
	assert.Eventually(t, func() bool { return devtest.Exited(sleeper) },
		10*time.Second, 50*time.Millisecond, "the command (pid %d) outlived govmm with-kvm", sleeper)
}
