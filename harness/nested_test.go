package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/harness/job"
	"github.com/govmm/govmm/internal/devtest"
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
// after starting it, and those before the $FAKE_QEMU_CRASH_UNTIL-th
// panic (QEMU exits without a status, as with panic=-1); the one that gets through prints the start line,
// writes "out" and "err" to the job's two ports and reports exit status 5,
// and then, for attempts before the $FAKE_QEMU_STUCK_UNTIL-th, locks up
// instead of powering off.
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
if [ "$n" -lt "${FAKE_QEMU_CRASH_UNTIL:-0}" ]; then
	cat >> "$console" <<'EOF'
[   97.897744] BUG: TASK stack guard page was hit at 00000000b5d3f2a1 (stack is 00000000c1e7d0b3..00000000f0a4a9c2)
[   97.897744] stack guard page: 0000 [#1] PREEMPT SMP NOPTI
[   97.897744] RIP: 0010:exc_page_fault+0x1a/0x180
[   97.897744] Kernel panic - not syncing: Fatal exception in interrupt
EOF
	exit 0
fi
echo out >&3
echo err >&4
printf '{"exit_code":5,"kvm":true}' > "$rundir/status.json"
if [ "$n" -lt "${FAKE_QEMU_STUCK_UNTIL:-0}" ]; then
	# the job is done, but the kernel hangs on its way down
	echo "[  873.612466] watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [init:1]" >> "$console"
	exec sleep 600
fi
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
		crashUntil  int
		stuckUntil  int
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
			wantErr: []string{"stalled, locked up or crashed 2 times in a row", "pnp: PnP ACPI: found 7 devices"}},
		{name: "locks up once during a test job", bootsOn: 1, lockupUntil: 2, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 2,
			wantStderr: "locked up (BUG: soft lockup) (attempt 1 of 3); rerunning the job"},
		{name: "locks up during a job that must not rerun", bootsOn: 1, lockupUntil: 2, attempts: 3, wantRuns: 1,
			wantErr: []string{"locked up (BUG: soft lockup) while the command ran", "not rerun", "CPU#3 stuck"}},
		{name: "boot stall, then lockup, then through", bootsOn: 2, lockupUntil: 3, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 3},
		{name: "hangs silently during a test job", bootsOn: 1, silentUntil: 2, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 2,
			wantStderr: "locked up (no heartbeat for 1s)"},
		{name: "outer kernel crashes during a test job", bootsOn: 1, crashUntil: 3, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 3,
			wantStderr: "crashed (BUG: TASK stack guard page was hit at 00000000b5d3f2a1 (stack is 00000000c1e7d0b3..00000000f0a4a9c2)) (attempt 2 of 3); rerunning"},
		{name: "outer kernel crashes during a job that must not rerun", bootsOn: 1, crashUntil: 2, attempts: 3, wantRuns: 1,
			wantErr: []string{"crashed (BUG: TASK stack guard page was hit", "not rerun", "RIP: 0010:exc_page_fault", "Fatal exception"}},
		// The job's status stands: the job is not rerun, and the lockup
		// on the way down is not the job's failure.
		{name: "hangs on its way down after the job", bootsOn: 1, stuckUntil: 2, retryHung: true, attempts: 3, wantCode: 5, wantRuns: 1,
			wantStderr: "did not power off within 1s of the job's end; stopped it"},
		{name: "outer kernel crashes every time", bootsOn: 1, crashUntil: 99, retryHung: true, attempts: 2, wantRuns: 2,
			wantErr: []string{"crashed 2 times in a row", "RIP: 0010:exc_page_fault"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := filepath.Join(t.TempDir(), "count")
			t.Setenv("FAKE_QEMU_COUNT", count)
			t.Setenv("FAKE_QEMU_BOOTS_ON", fmt.Sprint(tc.bootsOn))
			t.Setenv("FAKE_QEMU_LOCKUP_UNTIL", fmt.Sprint(tc.lockupUntil))
			t.Setenv("FAKE_QEMU_SILENT_UNTIL", fmt.Sprint(tc.silentUntil))
			t.Setenv("FAKE_QEMU_CRASH_UNTIL", fmt.Sprint(tc.crashUntil))
			t.Setenv("FAKE_QEMU_STUCK_UNTIL", fmt.Sprint(tc.stuckUntil))
			o := Outer{Kernel: kernel, Initramfs: kernel, QEMU: qemu, Timeout: time.Minute,
				BootTimeout: time.Second, HangTimeout: time.Second, PowerOffGrace: time.Second, BootAttempts: tc.attempts, RetryHungJob: tc.retryHung}
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
			if tc.stuckUntil == 0 {
				assert.True(t, strings.HasSuffix(stderr.String(), "err\n"), "the job's stderr comes last: %q", stderr.String())
			}
			assert.Contains(t, stderr.String(), tc.wantStderr)
		})
	}
}

// TestCrashExcerpt: a crashed outer kernel's console is cut to the start
// of its first report and its last lines; a console without a panic is no
// crash (the job or QEMU failed otherwise).
func TestCrashExcerpt(t *testing.T) {
	var long []string
	for i := range 100 {
		long = append(long, fmt.Sprintf("[ %d.0] line %d", i, i))
	}
	long[50] = "[ 50.0] BUG: unable to handle page fault for address: ffffb1c0c0a3fff8"
	long[99] = "[ 99.0] Kernel panic - not syncing: Fatal exception"
	for _, tc := range []struct {
		name        string
		console     []string
		wantCrash   string
		wantHas     []string
		wantMissing []string
	}{
		{name: "no panic", console: []string{"[ 1.0] BUG: soft lockup - CPU#1 stuck for 22s!", "[ 2.0] job ended"}},
		{name: "short", console: []string{"[ 1.0] booting", "[ 2.0] general protection fault, probably for non-canonical address 0xdead: 0000 [#1]", "[ 2.1] Kernel panic - not syncing: Fatal exception"},
			wantCrash: "general protection fault, probably for non-canonical address 0xdead: 0000 [#1]",
			wantHas:   []string{"[ 1.0] booting", "Kernel panic"}},
		{name: "long", console: long,
			wantCrash:   "BUG: unable to handle page fault for address: ffffb1c0c0a3fff8",
			wantHas:     []string{"[ 50.0] BUG: unable", "line 79\n[...]\n[ 90.0] line 90", "Kernel panic"},
			wantMissing: []string{"line 49", "line 80\n", "line 89"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			console := []byte(strings.Join(tc.console, "\n") + "\n")
			crash, excerpt, ok := kernelCrash(console)
			assert.Equal(t, tc.wantCrash != "", ok)
			assert.Equal(t, tc.wantCrash, crash)
			if !ok {
				return
			}
			for _, w := range tc.wantHas {
				assert.Contains(t, excerpt, w)
			}
			for _, w := range tc.wantMissing {
				assert.NotContains(t, excerpt, w)
			}
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

// harnessHelperEnv makes the test binary a harness running a long job, to
// be killed by TestOuterGuestDiesWithItsHarness.
const harnessHelperEnv = "GOVMM_TEST_HARNESS_HELPER"

// A harness killed outright (SIGKILL: nothing of it runs to clean up) takes
// its outer guest with it, rather than leaving QEMU to run on.
func TestOuterGuestDiesWithItsHarness(t *testing.T) {
	if os.Getenv(harnessHelperEnv) == "1" {
		o := defaultOuter(t)
		_, _ = o.Run(context.Background(), Command{Args: []string{"sleep", "600"}})
		t.Fatal("the outer guest's job ended; it should have been killed first")
	}
	defaultOuter(t) // the images must be there, as for the other tests here
	helper := exec.Command(os.Args[0], "-test.run=^TestOuterGuestDiesWithItsHarness$", "-test.count=1")
	helper.Env = append(os.Environ(), harnessHelperEnv+"=1")
	require.NoError(t, helper.Start())
	helperDone := make(chan struct{})
	go func() { helper.Wait(); close(helperDone) }()

	var qemu int
	require.Eventually(t, func() bool {
		qemu = childOf(t, helper.Process.Pid, "qemu-system")
		return qemu != 0
	}, time.Minute, 100*time.Millisecond, "the helper started no outer guest")
	require.NoError(t, helper.Process.Kill())
	<-helperDone

	assert.Eventually(t, func() bool { return devtest.Exited(qemu) },
		30*time.Second, 100*time.Millisecond, "QEMU (pid %d) outlived the harness that started it", qemu)
	if !devtest.Exited(qemu) {
		syscall.Kill(qemu, syscall.SIGKILL) // not left running after a failure
	}
}

// childOf returns the PID of a child of parent whose command name starts
// with comm, or 0.
func childOf(t *testing.T, parent int, comm string) int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(t, err)
	for _, path := range stats {
		data, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(data)
		start, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if start < 0 || end < start || !strings.HasPrefix(s[start+1:end], comm) {
			continue
		}
		var state byte
		var ppid, pid int
		if _, err := fmt.Sscanf(s[end+2:], "%c %d", &state, &ppid); err != nil || ppid != parent {
			continue
		}
		if _, err := fmt.Sscanf(s, "%d", &pid); err == nil {
			return pid
		}
	}
	return 0
}
