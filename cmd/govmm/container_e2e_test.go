package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/govmm/govmm/container"
	"github.com/govmm/govmm/isolation"
	"github.com/govmm/govmm/isolation/compare"
)

// hostBootID is the boot ID of the kernel these tests run on (the nested
// harness's outer guest, or the KVM host).
func hostBootID(t *testing.T) string {
	t.Helper()
	id, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	require.NoError(t, err)
	return strings.TrimSpace(string(id))
}

// TestContainerInGuest: the probe runs in a runc container inside the VM,
// confined as the OCI configuration says, and its exit status comes out
// of govmm.
func TestContainerInGuest(t *testing.T) {
	t.Parallel()
	code, out, errOut := govmm(t, "run", "--container", "default", "--", "/probe", "--exit", "7")
	require.Equal(t, 7, code, "the container's status passes through\nstdout:\n%s\nstderr:\n%s", lastLines(out, 20), errOut)
	assert.Contains(t, out, isolation.StartedLine)
	r, err := isolation.ParseReport([]byte(out))
	require.NoError(t, err)
	assert.NotEqual(t, hostBootID(t), r.Kernel.BootID, "the container runs on the guest's kernel, not the host's")
	assert.Equal(t, container.DefaultHostname, r.Hostname)
	assert.Equal(t, 1, r.Processes.PID, "PID 1 of its own PID namespace")
	assert.Equal(t, 1, r.Processes.VisibleCount, "sees no other process")
	assert.Equal(t, 3, r.Identity.CapEffCount)
	assert.True(t, r.Identity.NoNewPrivs)
	assert.Equal(t, "ext4", r.Mounts.RootFSType, "the root is the read-only disk's file system")
	assert.Equal(t, "268435456", r.Resources.CgroupMemoryMax, "cgroup v2 memory.max applies in the guest")
	assert.Equal(t, []string{"lo"}, r.Interfaces, "its own network namespace")
	assert.False(t, r.Privileged.LoadModule.Allowed)
	for _, m := range r.Mounts.List {
		if m.Point == "/" {
			assert.True(t, m.ReadOnly, "read-only root")
		}
	}
}

// TestContainerFromDirectory: a root given as a directory (as runc on the
// host takes it) is turned into an image for the guest; a failing command
// in it reports its status.
func TestContainerFromDirectory(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range container.MountPoints {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	probe, err := os.ReadFile(filepath.Join(manifest(t).ProbeRootfs, "probe"))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(root, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "bin", "probe"), probe, 0o755))

	code, out, errOut := govmm(t, "run", "--container", root, "--", "probe", "--exit", "0")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", lastLines(out, 20), errOut)
	_, err = isolation.ParseReport([]byte(out))
	require.NoError(t, err, "found on the container's PATH, in /bin")

	code, out, _ = govmm(t, "run", "--container", root, "--", "/no/such/program")
	assert.NotEqual(t, 0, code, "a command missing from the root fails\n%s", lastLines(out, 10))
	leftovers, _ := filepath.Glob(filepath.Join(os.TempDir(), "govmm-rootfs-*"))
	assert.Empty(t, leftovers, "the temporary image is removed")
}

func TestContainerRejectsBadInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"run", "--container", "default"}, "give the command to run in the container"},
		{"missing root", []string{"run", "--container", "/no/such/rootfs", "--", "/probe"}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := govmm(t, tc.args...)
			assert.Equal(t, exitUsage, code, errOut)
			assert.Contains(t, errOut, tc.want)
		})
	}
}

// TestIsolation: the table's key facts. The host's container runs on the
// host's kernel; both VM places on a guest kernel of their own; only the
// host itself sees the host's process and file.
func TestIsolation(t *testing.T) {
	t.Parallel()
	code, out, errOut := govmm(t, "isolation", "--json", "-")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	// The table comes first, then the JSON.
	start := strings.Index(out, "\n[")
	require.GreaterOrEqual(t, start, 0, "JSON after the table:\n%s", out)
	assert.Contains(t, out[:start], "same kernel as first")
	var places []isolation.Place
	require.NoError(t, json.Unmarshal([]byte(out[start+1:]), &places))
	byName := map[string]*isolation.Report{}
	for _, p := range places {
		require.NotNil(t, p.Report, "%s: %s", p.Name, p.Error)
		byName[p.Name] = p.Report
	}
	host := byName[compare.PlaceHost]
	require.NotNil(t, host)
	assert.Equal(t, hostBootID(t), host.Kernel.BootID)
	assert.Equal(t, host.Kernel.BootID, byName[compare.PlaceHostContainer].Kernel.BootID, "a container shares the host's kernel")
	for _, vm := range []string{compare.PlaceVMContainer, compare.PlaceVM} {
		assert.NotEqual(t, host.Kernel.BootID, byName[vm].Kernel.BootID, "%s runs on the guest's kernel", vm)
	}
	assert.NotEqual(t, byName[compare.PlaceVMContainer].Kernel.BootID, byName[compare.PlaceVM].Kernel.BootID, "two VMs, two kernels")
	for name, r := range byName {
		assert.Equal(t, name == compare.PlaceHost, r.Visibility.HostPID.Allowed, "%s: host pid visible", name)
		assert.Equal(t, name == compare.PlaceHost, r.Visibility.HostFile.Allowed, "%s: host file visible", name)
		assert.Equal(t, name == compare.PlaceHost, r.Visibility.HostTCP.Allowed, "%s: host loopback listener reachable", name)
	}
	assert.True(t, byName[compare.PlaceVM].Privileged.LoadModule.Allowed, "root in the VM may load modules: into the guest's kernel")
	assert.False(t, byName[compare.PlaceHostContainer].Privileged.LoadModule.Allowed)
}
