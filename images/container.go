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

	"github.com/u-root/u-root/pkg/ldd"

	"github.com/govmm/govmm/container"
)

// RuncGuestPath is where the container initramfs holds runc.
const RuncGuestPath = "/usr/sbin/runc"

// ContainerInitramfs builds the initramfs for containers in the guest:
// the guest initramfs followed by a second archive with this host's runc
// and the shared libraries it loads. The kernel unpacks concatenated newc
// archives one after the other (Documentation/driver-api/early-userspace/
// buffer-format.rst), so the u-root build is not repeated, and the default
// initramfs stays lean for VMs without containers.
// It returns container.ErrNoRunc when runc is not installed.
func (b *Builder) ContainerInitramfs(ctx context.Context, guestInitramfs string) (string, error) {
	runc, err := container.FindRunc()
	if err != nil {
		return "", err
	}
	runc, err = filepath.EvalSymlinks(runc)
	if err != nil {
		return "", fmt.Errorf("container initramfs: %w", err)
	}
	libs, err := ldd.FList(runc)
	if err != nil {
		return "", fmt.Errorf("container initramfs: libraries of %s: %w", runc, err)
	}
	files := []cpioFile{{name: strings.TrimPrefix(RuncGuestPath, "/"), src: runc, mode: 0o755}}
	seen := map[string]bool{}
	for _, lib := range libs {
		if seen[lib] {
			continue
		}
		seen[lib] = true
		fi, err := os.Lstat(lib)
		if err != nil {
			return "", fmt.Errorf("container initramfs: %w", err)
		}
		name := strings.TrimPrefix(lib, "/")
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(lib)
			if err != nil {
				return "", fmt.Errorf("container initramfs: %w", err)
			}
			files = append(files, cpioFile{name: name, symlink: target})
			continue
		}
		files = append(files, cpioFile{name: name, src: lib, mode: uint64(fi.Mode().Perm())})
	}
	h := sha256.New()
	fmt.Fprintf(h, "guest %s\n", filepath.Base(guestInitramfs))
	for _, f := range files {
		fmt.Fprintf(h, "file %s -> %s\n", f.name, f.symlink)
		if f.src != "" {
			if err := hashFile(h, f.src); err != nil {
				return "", fmt.Errorf("container initramfs: %w", err)
			}
		}
	}
	key := hex.EncodeToString(h.Sum(nil))
	out := filepath.Join(b.CacheDir, "initramfs", "container-"+key[:16]+".cpio")
	if _, err := os.Stat(out); err == nil {
		b.logf("container initramfs: cached (%s)", filepath.Base(out))
		return out, nil
	}
	tmpDir, err := os.MkdirTemp(b.CacheDir, ".build-")
	if err != nil {
		return "", fmt.Errorf("container initramfs: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	b.logf("building container initramfs: the guest initramfs plus %s and %d libraries", runc, len(files)-1)
	extra := filepath.Join(tmpDir, "runc.cpio")
	if err := writeCPIO(extra, files); err != nil {
		return "", fmt.Errorf("container initramfs: %w", err)
	}
	tmpOut := filepath.Join(tmpDir, "container.cpio")
	if err := concatFiles(tmpOut, guestInitramfs, extra); err != nil {
		return "", fmt.Errorf("container initramfs: %w", err)
	}
	return out, b.publish(tmpOut, out)
}

// ProbeRootfs builds the default container root file system: the static
// isolation probe as /probe, and the mount points container.Spec needs. It
// returns the directory (for runc on the host) and an ext4 image of it made
// with mkfs.ext4 -d (for the guest's read-only disk): the same tree.
func (b *Builder) ProbeRootfs(ctx context.Context) (dir, image string, err error) {
	const probePkg = "github.com/govmm/govmm/isolation/probe"
	key, err := b.inputKey(ctx, nil, nil, probePkg)
	if err != nil {
		return "", "", fmt.Errorf("probe rootfs: %w", err)
	}
	dir = filepath.Join(b.CacheDir, "rootfs", "probe-"+key[:16])
	image = dir + ".ext4"
	if _, err := os.Stat(image); err == nil {
		b.logf("probe rootfs: cached (%s)", filepath.Base(dir))
		return dir, image, nil
	}
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		return "", "", fmt.Errorf("probe rootfs: mkfs.ext4 not found (apt-get install e2fsprogs)")
	}
	tmpDir, err := os.MkdirTemp(b.CacheDir, ".build-")
	if err != nil {
		return "", "", fmt.Errorf("probe rootfs: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	b.logf("building probe rootfs (static isolation probe, ext4 image)")
	tree := filepath.Join(tmpDir, "rootfs")
	for _, d := range container.MountPoints {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return "", "", fmt.Errorf("probe rootfs: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(tree, "probe"), probePkg)
	cmd.Dir = b.SourceDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("probe rootfs: build %s: %w\n%s", probePkg, err, tail(out, 20))
	}
	tmpImage := filepath.Join(tmpDir, "rootfs.ext4")
	if err := MakeExt4(ctx, tree, tmpImage, "govmm-probe"); err != nil {
		return "", "", fmt.Errorf("probe rootfs: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "", fmt.Errorf("probe rootfs: %w", err)
	}
	// The directory first, then the image: the image's presence says both
	// are complete.
	os.RemoveAll(dir)
	if err := os.Rename(tree, dir); err != nil {
		return "", "", fmt.Errorf("probe rootfs: %w", err)
	}
	if err := os.Rename(tmpImage, image); err != nil {
		return "", "", fmt.Errorf("probe rootfs: %w", err)
	}
	b.logf("built %s and %s", dir, filepath.Base(image))
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "probe-*"))
	for _, o := range old {
		if o != dir && o != image {
			os.RemoveAll(o)
		}
	}
	return dir, image, nil
}

// MakeExt4 makes an ext4 image at image holding the tree at dir (mkfs.ext4
// -d), sized for the tree with room to spare.
func MakeExt4(ctx context.Context, dir, image, label string) error {
	var used int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		used += fi.Size() + 4096
		return nil
	})
	if err != nil {
		return fmt.Errorf("measure %s: %w", dir, err)
	}
	// ext4's metadata (inode tables, journal) on top of the files.
	sizeMiB := max(16, used*3/2>>20+8)
	cmd := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-L", label, "-d", dir, image, fmt.Sprintf("%dM", sizeMiB))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s: %w\n%s", dir, err, tail(out, 10))
	}
	return nil
}

func hashFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// concatFiles writes the files in order into a new file at out.
func concatFiles(out string, in ...string) error {
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	for _, p := range in {
		r, err := os.Open(p)
		if err != nil {
			w.Close()
			return err
		}
		_, err = io.Copy(w, r)
		r.Close()
		if err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}
