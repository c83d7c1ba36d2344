package images

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/u-root/u-root/pkg/cpio"
)

// cachedKernel returns a kernel package from the default cache: these tests
// run after `make images` and fail, saying so, when it has not run.
func cachedKernel(t *testing.T, pkg KernelPackage) *Kernel {
	t.Helper()
	dir, err := DefaultCacheDir()
	require.NoError(t, err)
	if _, err := LoadManifest(dir); err != nil {
		t.Fatalf("%v", err)
	}
	var progress bytes.Buffer
	k, err := FetchKernel(context.Background(), dir, pkg, &progress)
	require.NoError(t, err)
	assert.Contains(t, progress.String(), "cached")
	return k
}

func sourceDir(t *testing.T) string {
	dir, err := filepath.Abs("..")
	require.NoError(t, err)
	return dir
}

func TestOuterInitramfsIsCachedByContent(t *testing.T) {
	k := cachedKernel(t, GenericKernel)
	var progress bytes.Buffer
	b := &Builder{CacheDir: t.TempDir(), SourceDir: sourceDir(t), Progress: &progress}
	first, err := b.OuterInitramfs(context.Background(), k)
	require.NoError(t, err)
	fi1, err := os.Stat(first)
	require.NoError(t, err)

	progress.Reset()
	second, err := b.OuterInitramfs(context.Background(), k)
	require.NoError(t, err)
	assert.Equal(t, first, second)
	assert.Contains(t, progress.String(), "cached")
	fi2, err := os.Stat(second)
	require.NoError(t, err)
	assert.Equal(t, fi1.ModTime(), fi2.ModTime(), "a cached build must not be rewritten")

	// The archive holds the init and the modules, listed in load order.
	f, err := os.Open(first)
	require.NoError(t, err)
	defer f.Close()
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(f))
	require.NoError(t, err)
	byName := map[string]cpio.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	require.Contains(t, byName, "init")
	assert.Equal(t, uint64(0o755), byName["init"].Mode&0o777)
	require.Contains(t, byName, "modules/order")
	order := make([]byte, byName["modules/order"].FileSize)
	_, err = byName["modules/order"].ReadAt(order, 0)
	require.NoError(t, err)
	assert.Contains(t, string(order), "/modules/kvm.ko\n/modules/kvm_amd.ko\n")
}

func TestFetchKernelRefusesABadChecksum(t *testing.T) {
	bad := CloudKernel
	bad.SHA256 = "0000000000000000000000000000000000000000000000000000000000000000"
	cache := t.TempDir()
	_, err := FetchKernel(context.Background(), cache, bad, &bytes.Buffer{})
	require.ErrorContains(t, err, "checksum mismatch")
	assert.ErrorContains(t, err, "refusing to use it")
	entries, _ := os.ReadDir(filepath.Join(cache, "kernel"))
	assert.Empty(t, entries, "nothing may be left in the cache")
}

func TestFetchKernelUnknownVersionSaysWhatToDo(t *testing.T) {
	missing := GenericKernel
	missing.Version = "0.0.0-govmm-no-such-version"
	_, err := FetchKernel(context.Background(), t.TempDir(), missing, &bytes.Buffer{})
	require.ErrorContains(t, err, "apt-get download")
	assert.ErrorContains(t, err, "apt-get update")
	assert.ErrorContains(t, err, "--kernel")
}

func TestLoadManifestNotBuilt(t *testing.T) {
	_, err := LoadManifest(t.TempDir())
	require.ErrorIs(t, err, ErrNotBuilt)
	assert.ErrorContains(t, err, "make images")
}
