package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// KernelPackage pins one Debian kernel package by name, version and the
// sha256 of its .deb, so every machine boots byte-identical kernels.
type KernelPackage struct {
	Name    string // Debian package name
	Version string // Debian package version
	SHA256  string // of the .deb file
}

func (p KernelPackage) String() string { return p.Name + "=" + p.Version }

// Release is the kernel release the package installs, e.g. "6.1.0-56-amd64".
func (p KernelPackage) Release() string { return strings.TrimPrefix(p.Name, "linux-image-") }

// The pinned guest kernels: Debian bookworm's stock 6.1 kernels (generic
// and cloud flavour). Both are boot protocol 2.15 bzImages with 64-bit entry;
// their modules are uncompressed .ko files. To move to a newer kernel, change
// the version and checksum here together.
var (
	GenericKernel = KernelPackage{
		Name:    "linux-image-6.1.0-56-amd64",
		Version: "6.1.192-2",
		SHA256:  "a86e2049672f52354c4536a089203b6c82639420424d31c91cf31a181fd4d8f1",
	}
	CloudKernel = KernelPackage{
		Name:    "linux-image-6.1.0-56-cloud-amd64",
		Version: "6.1.192-2",
		SHA256:  "e7d02b943971edcb8790e256c02cfab3bca6c3d37c1bf25392a57c71300615ee",
	}
)

// Kernel is an unpacked kernel package in the cache.
type Kernel struct {
	Package    KernelPackage
	BzImage    string // path of the bzImage (boot/vmlinuz-<release>)
	ModulesDir string // path of lib/modules/<release>
}

const kernelStamp = ".complete"

// FetchKernel returns the unpacked, verified kernel package, downloading it
// with apt-get and unpacking it with dpkg-deb on first use. Progress goes to
// progress.
func FetchKernel(ctx context.Context, cacheDir string, pkg KernelPackage, progress io.Writer) (*Kernel, error) {
	dir := filepath.Join(cacheDir, "kernel", pkg.Name+"_"+pkg.Version)
	k := &Kernel{
		Package:    pkg,
		BzImage:    filepath.Join(dir, "boot", "vmlinuz-"+pkg.Release()),
		ModulesDir: filepath.Join(dir, "lib", "modules", pkg.Release()),
	}
	if stamp, err := os.ReadFile(filepath.Join(dir, kernelStamp)); err == nil && strings.TrimSpace(string(stamp)) == pkg.SHA256 {
		fmt.Fprintf(progress, "images: kernel %s: cached\n", pkg)
		return k, nil
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("fetch kernel %s: %s not found: the default kernel comes from Debian's archive, "+
				"so this needs a Debian or Ubuntu host; elsewhere pass your own bzImage with --kernel", pkg, tool)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", pkg, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".fetch-")
	if err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", pkg, err)
	}
	defer os.RemoveAll(tmp)

	fmt.Fprintf(progress, "images: downloading %s with apt-get\n", pkg)
	// The sandbox option keeps apt from warning that its _apt user cannot
	// write into a root-owned temporary directory.
	cmd := exec.CommandContext(ctx, "apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg.String())
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fetch kernel %s: apt-get download: %w\n%s\n"+
			"If apt cannot locate the package or version, run `apt-get update` first; if the pinned version has "+
			"left the archive, update the pin in images/kernel.go (or pass your own bzImage with --kernel)",
			pkg, err, tail(out, 10))
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		return nil, fmt.Errorf("fetch kernel %s: apt-get download left %d .deb files, want 1", pkg, len(debs))
	}
	sum, err := fileSHA256(debs[0])
	if err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", pkg, err)
	}
	if sum != pkg.SHA256 {
		return nil, fmt.Errorf("fetch kernel %s: checksum mismatch: got sha256 %s, pinned %s: refusing to use it", pkg, sum, pkg.SHA256)
	}
	fmt.Fprintf(progress, "images: verified sha256 %s; unpacking\n", sum[:16])
	root := filepath.Join(tmp, "root")
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("fetch kernel %s: dpkg-deb -x: %w\n%s", pkg, err, tail(out, 10))
	}
	if err := os.WriteFile(filepath.Join(root, kernelStamp), []byte(pkg.SHA256+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", pkg, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("fetch kernel %s: remove stale %s: %w", pkg, dir, err)
	}
	if err := os.Rename(root, dir); err != nil {
		return nil, fmt.Errorf("fetch kernel %s: %w", pkg, err)
	}
	for _, p := range []string{k.BzImage, k.ModulesDir} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("fetch kernel %s: package lacks %s: %w", pkg, p, err)
		}
	}
	return k, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tail returns the last n lines of out, for error messages.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
