package isolation_test

import (
	"bytes"
	"debug/elf"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/isolation"
)

// buildProbe builds ./probe as the VMM's tests will: static, without cgo.
func buildProbe(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the probe with")
	}
	bin := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command(goBin, "build", "-o", bin, "./probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./probe:\n%s", out)
	return bin
}

// runProbe runs the probe and returns its stdout and exit status.
func runProbe(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		require.NoError(t, err, "run the probe")
	}
	if stderr.Len() > 0 {
		t.Logf("probe stderr: %s", stderr.String())
	}
	return stdout.String(), cmd.ProcessState.ExitCode()
}

func TestProbeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the probe")
	}
	bin := buildProbe(t)

	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		require.NoError(t, err)
		defer f.Close()
		for _, p := range f.Progs {
			assert.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary has no interpreter")
		}
		libs, err := f.ImportedLibraries()
		require.NoError(t, err)
		assert.Empty(t, libs)
	})

	t.Run("report", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		file := filepath.Join(t.TempDir(), "host-only")
		require.NoError(t, os.WriteFile(file, nil, 0o600))

		out, status := runProbe(t, bin, "--host-pid", strconv.Itoa(os.Getpid()), "--host-file", file, "--host-addr", ln.Addr().String())
		assert.Equal(t, 0, status)
		require.True(t, strings.HasPrefix(out, isolation.StartedLine+"\n"), "output starts with the started line: %q", out)
		assert.Equal(t, 2, strings.Count(out, "\n"), "the started line and the report line")

		r, err := isolation.ParseReport([]byte(out))
		require.NoError(t, err)
		assert.NotEqual(t, os.Getpid(), r.Processes.PID, "the probe's own PID")
		assert.Equal(t, os.Getpid(), r.Options.HostPID)
		assert.True(t, r.Visibility.HostPID.Allowed, r.Visibility.HostPID.Result)
		assert.True(t, r.Visibility.HostFile.Allowed, r.Visibility.HostFile.Result)
		assert.True(t, r.Visibility.HostTCP.Allowed, r.Visibility.HostTCP.Result)
		assert.Len(t, r.Kernel.BootID, 36)

		var table bytes.Buffer
		isolation.WriteTable(&table, []isolation.Place{{Name: "here", Report: &r}})
		t.Logf("report line: %d bytes\n%s", len(out), table.String())
	})

	t.Run("exit status", func(t *testing.T) {
		out, status := runProbe(t, bin, "--exit", "7")
		assert.Equal(t, 7, status)
		_, err := isolation.ParseReport([]byte(out))
		assert.NoError(t, err, "the report comes before the exit")
	})

	t.Run("sleep", func(t *testing.T) {
		start := time.Now()
		_, status := runProbe(t, bin, "--sleep", "200ms")
		assert.Equal(t, 0, status)
		assert.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
	})

	t.Run("bad flag", func(t *testing.T) {
		out, status := runProbe(t, bin, "--no-such-flag")
		assert.Equal(t, 2, status)
		assert.Equal(t, isolation.StartedLine+"\n", out, "started, then no report")
	})
}
