package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/harness/job"
)

// defaultOuter is the outer guest `make images` built. These tests boot it,
// so they need QEMU and the images, but not /dev/kvm: they run on any host.
func defaultOuter(t *testing.T) *Outer {
	t.Helper()
	o, err := DefaultOuter()
	require.NoError(t, err)
	return o
}

func TestNestedRunsHostCommandWithKVM(t *testing.T) {
	o := defaultOuter(t)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code, err := o.Run(context.Background(), Command{
		Args: []string{"sh", "-c", `test -c /dev/kvm || exit 99
echo "hello from $(uname -r)"; echo to-stderr >&2; echo scratch > /tmp/govmm-harness-write && cat /tmp/govmm-harness-write; exit 7`},
		Stdout: &stdout, Stderr: &stderr,
	})
	require.NoError(t, err)
	t.Logf("outer guest round trip: %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, 7, code, "exit status; stdout %q stderr %q", stdout.String(), stderr.String())
	assert.Equal(t, "hello from 6.1.0-56-amd64\nscratch\n", stdout.String())
	assert.Equal(t, "to-stderr\n", stderr.String())
}

func TestNestedHarnessFailuresSayWhatToDo(t *testing.T) {
	good := defaultOuter(t)
	for _, tc := range []struct {
		name  string
		outer Outer
		args  []string
		want  []string
	}{
		{
			name:  "no qemu",
			outer: Outer{Kernel: good.Kernel, Initramfs: good.Initramfs, QEMU: "qemu-system-x86_64-not-installed"},
			args:  []string{"true"},
			want:  []string{"not found", "apt-get install qemu-system-x86"},
		},
		{
			name:  "images missing",
			outer: Outer{Kernel: good.Kernel, Initramfs: "/nonexistent/outer.cpio"},
			args:  []string{"true"},
			want:  []string{"/nonexistent/outer.cpio", "make images"},
		},
		{
			name:  "empty command",
			outer: *good,
			want:  []string{"empty command"},
		},
		{
			name:  "program not found",
			outer: *good,
			args:  []string{"govmm-no-such-program"},
			want:  []string{"govmm-no-such-program", "not found"},
		},
		{
			name:  "outer kernel does not boot",
			outer: Outer{Kernel: good.Initramfs, Initramfs: good.Initramfs, Timeout: time.Minute},
			args:  []string{"true"},
			want:  []string{"qemu", "console"},
		},
		{
			name:  "timeout",
			outer: Outer{Kernel: good.Kernel, Initramfs: good.Initramfs, Timeout: 3 * time.Second},
			args:  []string{"sleep", "600"},
			want:  []string{"did not finish within 3s", "raise the timeout"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.outer.Run(context.Background(), Command{Args: tc.args})
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// fakeQEMU is a stand-in for qemu-system-x86_64 that acts out an outer
// guest: attempts before the $FAKE_QEMU_BOOTS_ON-th stall before the init
// starts the job; attempts before the $FAKE_QEMU_LOCKUP_UNTIL-th lock up
// after starting it; the one that gets through prints the start line,
// writes "out" and "err" to the job's two ports and reports exit status 5.
const fakeQEMU = `#!/bin/sh
prev=
for a in "$@"; do
	case "$prev" in -serial) case "$a" in file:*) console=${a#file:};; esac;; esac
	case "$a" in *mount_tag=govmm-job*) rundir=${a#local,path=}; rundir=${rundir%%,mount_tag=*};; esac
	prev=$a
done
n=$(( $(cat "$FAKE_QEMU_COUNT" 2>/dev/null || echo 0) + 1 ))
echo $n > "$FAKE_QEMU_COUNT"
echo "[    1.825171] pnp: PnP ACPI: found 7 devices" > "$console"
if [ "$n" -lt "$FAKE_QEMU_BOOTS_ON" ]; then exec sleep 600; fi
echo "govmm-outer: starting the job" >> "$console"
if [ "$n" -lt "${FAKE_QEMU_SILENT_UNTIL:-0}" ]; then
	exec sleep 600 # hung without a word: no heartbeat
fi
if [ "$n" -lt "${FAKE_QEMU_LOCKUP_UNTIL:-0}" ]; then
	echo "[  673.612466] watchdog: BUG: soft lockup - CPU#3 stuck for 514s! [ksoftirqd/3:31]" >> "$console"
	exec sleep 600
fi
echo out >&3
echo err >&4
printf '{"exit_code":5,"kvm":true}' > "$rundir/status.json"
`

// TestNestedRestartsAStalledBoot checks, with a fake QEMU, that an outer
// guest that stalls before starting the job is restarted, that one whose
// kernel locks up during the job is rerun only when the job may run twice,
// and that the harness gives up with the console after BootAttempts.
func TestNestedRestartsAStalledBoot(t *testing.T) {
	dir := t.TempDir()
	qemu := filepath.Join(dir, "qemu")
	require.NoError(t, os.WriteFile(qemu, []byte(fakeQEMU), 0o755))
	kernel := filepath.Join(dir, "kernel")
	require.NoError(t, os.WriteFile(kernel, nil, 0o644))

	for _, tc := range []struct {
		name        string
		bootsOn     int
		lockupUntil int
		silentUntil int
		retryHung   bool
		attempts    int
		wantCode    int
		wantErr     []string
		wantRuns    int
		wantStderr  string
	}{
		{name: "boots first time", bootsOn: 1, attempts: 3, wantCode: 5, wantRuns: 1},
		{name: "boots on the third attempt", bootsOn: 3, attempts: 3, wantCode: 5, wantRuns: 3, wantStderr: "restarting it"},
		{name: "never boots", bootsOn: 99, attempts: 2, wantRuns: 2,
			wantErr: []string{"stalled or locked up 2 times in a row", "pnp: PnP ACPI: found 7 devices"}},
		{name: "locks up once during a test job", bootsOn: 1, lockupUntil: 2, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 2,
			wantStderr: "locked up (BUG: soft lockup) (attempt 1 of 3); rerunning the job"},
		{name: "locks up during a job that must not rerun", bootsOn: 1, lockupUntil: 2, attempts: 3, wantRuns: 1,
			wantErr: []string{"locked up (BUG: soft lockup) while the command ran", "not rerun", "CPU#3 stuck"}},
		{name: "boot stall, then lockup, then through", bootsOn: 2, lockupUntil: 3, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 3},
		{name: "hangs silently during a test job", bootsOn: 1, silentUntil: 2, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 2,
			wantStderr: "locked up (no heartbeat for 1s)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := filepath.Join(t.TempDir(), "count")
			t.Setenv("FAKE_QEMU_COUNT", count)
			t.Setenv("FAKE_QEMU_BOOTS_ON", fmt.Sprint(tc.bootsOn))
			t.Setenv("FAKE_QEMU_LOCKUP_UNTIL", fmt.Sprint(tc.lockupUntil))
			t.Setenv("FAKE_QEMU_SILENT_UNTIL", fmt.Sprint(tc.silentUntil))
			o := Outer{Kernel: kernel, Initramfs: kernel, QEMU: qemu, Timeout: time.Minute,
				BootTimeout: time.Second, HangTimeout: time.Second, BootAttempts: tc.attempts, RetryHungJob: tc.retryHung}
			var stdout, stderr bytes.Buffer
			code, err := o.Run(context.Background(), Command{Args: []string{"true"}, Stdout: &stdout, Stderr: &stderr})
			runs, readErr := os.ReadFile(count)
			require.NoError(t, readErr)
			assert.Equal(t, fmt.Sprint(tc.wantRuns), strings.TrimSpace(string(runs)), "QEMU runs")
			if tc.wantErr != nil {
				require.Error(t, err)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantCode, code)
			assert.Equal(t, "out\n", stdout.String())
			assert.True(t, strings.HasSuffix(stderr.String(), "err\n"), "the job's stderr comes last: %q", stderr.String())
			assert.Contains(t, stderr.String(), tc.wantStderr)
		})
	}
}

// TestWorkDirShare: only a command that asks for it gets its working
// directory shared read-write with the host, and never the root.
func TestWorkDirShare(t *testing.T) {
	dir := t.TempDir()
	o := &Outer{}
	for _, tc := range []struct {
		name      string
		c         Command
		wantShare bool
	}{
		{"not asked", Command{Args: []string{"true"}, Dir: dir}, false},
		{"asked", Command{Args: []string{"true"}, Dir: dir, ShareDir: true}, true},
		{"the root", Command{Args: []string{"true"}, Dir: "/", ShareDir: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j, err := o.job(tc.c)
			require.NoError(t, err)
			assert.Equal(t, tc.wantShare, j.ShareDir)
			args := strings.Join(o.qemuArgs("/run", "/run/console.log", j), " ")
			if tc.wantShare {
				assert.Contains(t, args, "local,path="+dir+",mount_tag="+job.WorkDirTag+",security_model=none")
			} else {
				assert.NotContains(t, args, job.WorkDirTag)
			}
			assert.Contains(t, args, "path=/,mount_tag="+job.HostRootTag+",security_model=none,readonly=on", "the host root stays read-only")
		})
	}
}

func TestDefaultOuterCPUs(t *testing.T) {
	for _, tc := range []struct{ host, want int }{{1, 1}, {2, 2}, {3, 3}, {4, 4}, {64, 4}, {0, 1}} {
		assert.Equal(t, tc.want, defaultOuterCPUs(tc.host), "host CPUs %d", tc.host)
	}
}
