package vmmproc

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
