package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Manifest records where the current default images are; `make images`
// writes it, `govmm run` and the test harness read it.
type Manifest struct {
	Kernel      string `json:"kernel"`       // default guest bzImage
	CloudKernel string `json:"cloud_kernel"` // Debian's cloud-flavour bzImage
	// KernelVmlinux and CloudVmlinux are the two kernels' payloads,
	// decompressed: `govmm run` boots them instead of the bzImages'
	// decompressors.
	KernelVmlinux string `json:"kernel_vmlinux"`
	CloudVmlinux  string `json:"cloud_vmlinux"`
	Initramfs     string `json:"initramfs"` // default guest initramfs
	// ContainerInitramfs is Initramfs plus runc and its libraries, for
	// containers in the guest; "" when the host had no runc to pack.
	ContainerInitramfs string `json:"container_initramfs,omitempty"`
	// ProbeRootfs is the default container root file system (the static
	// isolation probe and the mount points a container needs), and
	// ProbeRootfsImage the same tree as an ext4 image, for the guest.
	ProbeRootfs      string `json:"probe_rootfs"`
	ProbeRootfsImage string `json:"probe_rootfs_image"`
	OuterKernel      string `json:"outer_kernel"`    // nested harness: outer guest's bzImage
	OuterInitramfs   string `json:"outer_initramfs"` // nested harness: outer guest's initramfs
}

// CacheDirEnv names the environment variable that overrides the cache
// directory.
const CacheDirEnv = "GOVMM_CACHE"

// DefaultCacheDir is $GOVMM_CACHE, else $XDG_CACHE_HOME/govmm, else
// ~/.cache/govmm, else (no home directory, as under some CI runners)
// govmm-cache-UID in the temporary directory.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheDirEnv); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("govmm-cache-%d", os.Getuid())), nil
	}
	return filepath.Join(d, "govmm"), nil
}

// ManifestPath is where the manifest of cacheDir lives.
func ManifestPath(cacheDir string) string { return filepath.Join(cacheDir, "images.json") }

// ErrNotBuilt means the images have not been built yet.
var ErrNotBuilt = errors.New("guest images are not built: run `make images` (or `govmm images`)")

// LoadManifest reads the manifest of cacheDir and checks that every image
// it names is still there.
func LoadManifest(cacheDir string) (*Manifest, error) {
	raw, err := os.ReadFile(ManifestPath(cacheDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w (no %s)", ErrNotBuilt, ManifestPath(cacheDir))
	}
	if err != nil {
		return nil, fmt.Errorf("read image manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("read image manifest %s: %w", ManifestPath(cacheDir), err)
	}
	for _, p := range []string{m.Kernel, m.KernelVmlinux, m.CloudKernel, m.CloudVmlinux, m.Initramfs, m.OuterKernel, m.OuterInitramfs, m.ProbeRootfs, m.ProbeRootfsImage} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w (%s is missing)", ErrNotBuilt, p)
		}
	}
	if m.ContainerInitramfs != "" {
		if _, err := os.Stat(m.ContainerInitramfs); err != nil {
			return nil, fmt.Errorf("%w (%s is missing)", ErrNotBuilt, m.ContainerInitramfs)
		}
	}
	return &m, nil
}

func (m *Manifest) write(cacheDir string) error {
	raw, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	raw = append(raw, '\n')
	if old, err := os.ReadFile(ManifestPath(cacheDir)); err == nil && string(old) == string(raw) {
		return nil // unchanged: leave the file (and its mtime) alone
	}
	tmp := ManifestPath(cacheDir) + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		return fmt.Errorf("write image manifest: %w", err)
	}
	if err := os.Rename(tmp, ManifestPath(cacheDir)); err != nil {
		return fmt.Errorf("write image manifest: %w", err)
	}
	return nil
}
