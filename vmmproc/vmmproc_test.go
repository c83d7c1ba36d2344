package vmmproc

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/vmm"
)

// A Spec arrives in the VMM process as govmm run built it, and leaves the
// environment.
func TestSpecCrossesExecInTheEnvironment(t *testing.T) {
	want := Spec{
		VM: vmm.Config{
			Kernel: "/k", Initrd: "/i", Vmlinux: "/v", MemoryBytes: 512 << 20, CPUs: 2,
			Cmdline: `console=ttyS0 govmm.cmd=WyJ0cnVlIl0 quoted="a b"`,
			Disks:   []vmm.DiskConfig{{Path: "/d.img", ReadOnly: true, Serial: "ref0"}},
			Nets:    []vmm.NetConfig{{Tap: "govmm3", TapFD: 7, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}}},
			Launch:  time.Date(2026, 11, 29, 15, 0, 0, 123456789, time.UTC),
		},
		Verbose: true, PrintBootTime: true, HasCommand: true, RemoveOnExit: []string{"/tmp/govmm-rootfs-1"},
	}
	env, err := withSpec([]string{"HOME=/root", specEnv + "=stale"}, want)
	require.NoError(t, err)
	require.Len(t, env, 2, "the stale spec is replaced, not repeated")
	assert.Equal(t, "HOME=/root", env[0])
	value, ok := strings.CutPrefix(env[1], specEnv+"=")
	require.True(t, ok)
	t.Setenv(specEnv, value)

	got, err := SpecFromEnv()
	require.NoError(t, err)
	assert.True(t, want.VM.Launch.Equal(got.VM.Launch))
	got.VM.Launch = want.VM.Launch
	assert.Equal(t, want, got)
	_, still := os.LookupEnv(specEnv)
	assert.False(t, still, "the spec is taken out of the environment")
}

func TestSpecFromEnvWithoutSpec(t *testing.T) {
	t.Setenv(specEnv, "")
	os.Unsetenv(specEnv)
	_, err := SpecFromEnv()
	assert.ErrorContains(t, err, "started by 'govmm run'")

	t.Setenv(specEnv, "{not json")
	_, err = SpecFromEnv()
	assert.ErrorContains(t, err, "decode the VM")
}

func TestExecutable(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "govmm-vmm")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	plain := filepath.Join(dir, "plain")
	require.NoError(t, os.WriteFile(plain, nil, 0o644))

	for _, tc := range []struct {
		name, env string
		want      string
		wantErr   string
	}{
		{name: "explicit", env: exe, want: exe},
		{name: "explicit, missing", env: filepath.Join(dir, "nope"), wantErr: "$GOVMM_VMM"},
		{name: "explicit, not executable", env: plain, wantErr: "not an executable file"},
		{name: "explicit, a directory", env: dir, wantErr: "not an executable file"},
		// This test binary has no govmm-vmm beside it.
		{name: "beside the executable", env: "", wantErr: ErrNoExecutable.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(PathEnv, tc.env)
			got, err := Executable()
			if tc.wantErr != "" {
				assert.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// A failed exec comes back as an error; the process goes on.
func TestExecFailure(t *testing.T) {
	err := Exec(filepath.Join(t.TempDir(), "missing"), Spec{})
	assert.ErrorContains(t, err, "exec ")
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{in: "1", want: []int{1}},
		{in: "0,2", want: []int{0, 2}},
		{in: "0-3", want: []int{0, 1, 2, 3}},
		{in: "1, 4-5", want: []int{1, 4, 5}},
		{in: "", wantErr: true},
		{in: "x", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "3-1", wantErr: true},
		{in: "99999", wantErr: true},
	} {
		set, err := parseCPUList(tc.in)
		if tc.wantErr {
			assert.Error(t, err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, len(tc.want), set.Count(), tc.in)
		for _, c := range tc.want {
			assert.True(t, set.IsSet(c), "%s: CPU %d", tc.in, c)
		}
	}
}

// Every thread of the process ends up on the CPUs asked for.
func TestPinFromEnv(t *testing.T) {
	var before unix.CPUSet
	require.NoError(t, unix.SchedGetaffinity(0, &before))
	cpu := -1
	for c := range len(before) * 64 {
		if before.IsSet(c) {
			cpu = c
		}
	}
	require.GreaterOrEqual(t, cpu, 0)
	t.Setenv(CPUsEnv, strconv.Itoa(cpu))
	require.NoError(t, PinFromEnv())
	defer func() {
		restore(t, before)
		runtime.UnlockOSThread()
	}()
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		require.NoError(t, err)
		var got unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &got); err != nil {
			continue // exited meanwhile
		}
		assert.Equal(t, 1, got.Count(), "thread %d", tid)
		assert.True(t, got.IsSet(cpu), "thread %d", tid)
	}
}

func restore(t *testing.T, set unix.CPUSet) {
	tasks, err := os.ReadDir("/proc/self/task")
	require.NoError(t, err)
	for _, task := range tasks {
		if tid, err := strconv.Atoi(task.Name()); err == nil {
			_ = unix.SchedSetaffinity(tid, &set)
		}
	}
}
