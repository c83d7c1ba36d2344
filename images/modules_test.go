package images

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func names(mods []Module) []string {
	var out []string
	for _, m := range mods {
		out = append(out, m.Name)
	}
	return out
}

func TestResolveOrdersDependenciesFirst(t *testing.T) {
	// Depends pre-filled (non-nil), so no .ko file is read.
	idx := &ModuleIndex{byName: map[string]*Module{
		"kvm_amd":   {Name: "kvm_amd", Depends: []string{"ccp", "kvm"}},
		"kvm":       {Name: "kvm", Depends: []string{"irqbypass"}},
		"irqbypass": {Name: "irqbypass", Depends: []string{}},
		"ccp":       {Name: "ccp", Depends: []string{}},
		"a":         {Name: "a", Depends: []string{"b"}},
		"b":         {Name: "b", Depends: []string{"a"}},
		"broken":    {Name: "broken", Depends: []string{"missing"}},
		"ext4":      {Name: "ext4", Depends: []string{"jbd2"}},
	}, builtin: map[string]bool{"jbd2": true, "virtio": true}}
	for _, tc := range []struct {
		in      []string
		want    []string
		wantErr string
	}{
		{in: []string{"kvm-amd"}, want: []string{"ccp", "irqbypass", "kvm", "kvm_amd"}},
		{in: []string{"kvm", "kvm_amd", "kvm"}, want: []string{"irqbypass", "kvm", "ccp", "kvm_amd"}},
		{in: []string{"nosuch"}, wantErr: "module nosuch: not found"},
		{in: []string{"virtio"}, want: nil},
		{in: []string{"ext4"}, want: []string{"ext4"}},
		{in: []string{"broken"}, wantErr: "module missing (needed by broken): not found"},
		{in: []string{"a"}, wantErr: "module dependency cycle: a -> b -> a"},
	} {
		got, err := idx.Resolve(tc.in...)
		if tc.wantErr != "" {
			assert.ErrorContains(t, err, tc.wantErr, "Resolve(%q)", tc.in)
			continue
		}
		require.NoError(t, err, "Resolve(%q)", tc.in)
		assert.Equal(t, tc.want, names(got), "Resolve(%q)", tc.in)
	}
}

// TestResolveRealKernelModules reads dependencies from the .modinfo sections
// of the pinned Debian kernel's modules (the images must be built).
func TestResolveRealKernelModules(t *testing.T) {
	k := cachedKernel(t, GenericKernel)
	idx, err := IndexModules(k.ModulesDir)
	require.NoError(t, err)
	got, err := idx.Resolve("kvm_amd", "virtio_blk")
	require.NoError(t, err)
	assert.Equal(t, []string{"ccp", "irqbypass", "kvm", "kvm_amd", "virtio_ring", "virtio", "virtio_blk"}, names(got))
	for _, m := range got {
		assert.FileExists(t, m.Path)
	}
	got, err = idx.Resolve(GuestModules...)
	require.NoError(t, err)
	assert.Contains(t, names(got), "jbd2", "ext4 needs jbd2")
	assert.Contains(t, names(got), "net_failover", "virtio_net needs net_failover")

	_, err = IndexModules(t.TempDir())
	assert.ErrorContains(t, err, "no .ko files")
}
