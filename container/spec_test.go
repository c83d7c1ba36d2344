package container

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpecRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		id   string
		want string
	}{
		{"relative root", Config{RootFS: "rootfs", Args: []string{"/probe"}}, "c", "absolute path"},
		{"no command", Config{RootFS: "/r"}, "c", "no command"},
		{"empty argv0", Config{RootFS: "/r", Args: []string{""}}, "c", "no command"},
		{"no id", Config{RootFS: "/r", Args: []string{"/probe"}}, "", "no id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Spec(tc.c, tc.id)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestSpecIsolates(t *testing.T) {
	s, err := Spec(Config{RootFS: "/r", Args: []string{"/probe", "--exit", "3"}}, "c1")
	require.NoError(t, err)
	assert.Equal(t, specs.Version, s.Version)
	assert.True(t, s.Root.Readonly, "read-only root")
	assert.Equal(t, "/r", s.Root.Path)
	assert.True(t, s.Process.NoNewPrivileges)
	assert.Equal(t, []string{"/probe", "--exit", "3"}, s.Process.Args)
	assert.Equal(t, DefaultHostname, s.Hostname)
	var ns []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		assert.Empty(t, n.Path, "a new namespace, not the host's")
		ns = append(ns, n.Type)
	}
	for _, want := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.IPCNamespace,
		specs.UTSNamespace, specs.MountNamespace, specs.CgroupNamespace} {
		assert.Contains(t, ns, want)
	}
	assert.NotContains(t, ns, specs.UserNamespace, "root in the container is root: the comparison is of a plain runc container")
	require.NotNil(t, s.Linux.Resources.Memory.Limit)
	assert.EqualValues(t, DefaultMemoryMax, *s.Linux.Resources.Memory.Limit)
	assert.EqualValues(t, DefaultPidsMax, s.Linux.Resources.Pids.Limit)
	assert.Equal(t, "/govmm/c1", s.Linux.CgroupsPath)
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_PTRACE", "CAP_MKNOD", "CAP_SYS_BOOT"} {
		assert.NotContains(t, s.Process.Capabilities.Bounding, c)
		assert.NotContains(t, s.Process.Capabilities.Effective, c)
	}
	// Every mount lands on a mount point the root must provide, or inside
	// a file system the spec itself mounts.
	for _, m := range s.Mounts {
		top, _, _ := strings.Cut(strings.TrimPrefix(m.Destination, "/"), "/")
		assert.True(t, slices.Contains(MountPoints, top), "mount %s needs /%s in MountPoints", m.Destination, top)
	}
}

func TestSpecLimits(t *testing.T) {
	s, err := Spec(Config{RootFS: "/r", Args: []string{"x"}, MemoryMax: 64 << 20, PidsMax: 8, Hostname: "h", CgroupsPath: "/x/y", Env: []string{"A=b"}}, "c")
	require.NoError(t, err)
	assert.EqualValues(t, 64<<20, *s.Linux.Resources.Memory.Limit)
	assert.EqualValues(t, 8, s.Linux.Resources.Pids.Limit)
	assert.Equal(t, "h", s.Hostname)
	assert.Equal(t, "/x/y", s.Linux.CgroupsPath)
	assert.Equal(t, []string{"A=b"}, s.Process.Env)
}

func TestWriteBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bundle")
	require.NoError(t, WriteBundle(dir, Config{RootFS: "/r", Args: []string{"/probe"}}, "c"))
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var back specs.Spec
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, "/r", back.Root.Path)
	assert.Equal(t, []string{"/probe"}, back.Process.Args)

	require.Error(t, WriteBundle(dir, Config{RootFS: "r"}, "c"))
}

func TestCommand(t *testing.T) {
	for _, tc := range []struct {
		r    Runtime
		want []string
	}{
		{Runtime{Runc: "/usr/sbin/runc"}, []string{"/usr/sbin/runc", "run", "--bundle", "/b", "id"}},
		{Runtime{Runc: "runc", StateDir: "/run/x", NoPivot: true}, []string{"runc", "--root", "/run/x", "run", "--bundle", "/b", "--no-pivot", "id"}},
	} {
		cmd := tc.r.Command(t.Context(), "/b", "id")
		assert.Equal(t, tc.want, cmd.Args)
	}
}

func TestExitStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -TERM $$", 128 + 15},
	} {
		err := execCommand(t, tc.script)
		got, serr := ExitStatus(err)
		require.NoError(t, serr)
		assert.Equal(t, tc.want, got, tc.script)
	}
	_, err := ExitStatus(os.ErrNotExist)
	assert.Error(t, err)
}

func TestPivotRootFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{errors.New("runc: exit status 1: runc run failed: unable to start container process: error during container init: error jailing process inside rootfs: pivot_root .: invalid argument"), true},
		{errors.New("runc: exit status 1: openat2 /sys/fs/cgroup/x/pids.max: no such file or directory"), false},
	} {
		assert.Equal(t, tc.want, PivotRootFailed(tc.err), "PivotRootFailed(%v)", tc.err)
	}
}
