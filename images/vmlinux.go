package images

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/govmm/govmm/boot"
)

// Decompressors for the payload formats of the pinned kernels, by magic
// number. Go's XZ readers lack the x86 BCJ filter the kernel's XZ uses, so
// the distribution's tools do it.
var decompressors = []struct {
	magic []byte
	tool  string
	pkg   string // Debian package with the tool
}{
	{[]byte{0xfd, '7', 'z', 'X', 'Z', 0}, "xz", "xz-utils"},
	{[]byte{0x02, 0x21, 0x4c, 0x18}, "lz4", "lz4"},
}

// ExtractVmlinux decompresses k's payload into an ELF vmlinux next to the
// bzImage, once: booted directly it spares the guest its decompressor. It
// returns the path.
func (b *Builder) ExtractVmlinux(ctx context.Context, k *Kernel) (string, error) {
	out := filepath.Join(filepath.Dir(filepath.Dir(k.BzImage)), "vmlinux-"+k.Package.Release())
	if _, err := os.Stat(out); err == nil {
		b.logf("vmlinux of %s: cached", k.Package.Release())
		return out, nil
	}
	data, err := os.ReadFile(k.BzImage)
	if err != nil {
		return "", fmt.Errorf("extract vmlinux: %w", err)
	}
	bz, err := boot.ParseBzImage(data)
	if err != nil {
		return "", fmt.Errorf("extract vmlinux: %w", err)
	}
	payload, size, err := bz.Payload()
	if err != nil {
		return "", fmt.Errorf("extract vmlinux from %s: %w", k.BzImage, err)
	}
	for _, d := range decompressors {
		if !bytes.HasPrefix(payload, d.magic) {
			continue
		}
		if _, err := exec.LookPath(d.tool); err != nil {
			return "", fmt.Errorf("extract vmlinux from %s: %s not found: apt-get install %s", k.BzImage, d.tool, d.pkg)
		}
		b.logf("extracting vmlinux of %s with %s", k.Package.Release(), d.tool)
		cmd := exec.CommandContext(ctx, d.tool, "-dc")
		cmd.Stdin = bytes.NewReader(payload)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		vmlinux, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("extract vmlinux from %s: %s -dc: %w\n%s", k.BzImage, d.tool, err, tail(stderr.Bytes(), 5))
		}
		if uint32(len(vmlinux)) != size {
			return "", fmt.Errorf("extract vmlinux from %s: got %d bytes, the kernel says %d", k.BzImage, len(vmlinux), size)
		}
		if _, err := boot.ParseVmlinux(vmlinux); err != nil {
			return "", fmt.Errorf("extract vmlinux from %s: %w", k.BzImage, err)
		}
		tmp := out + ".tmp"
		if err := os.WriteFile(tmp, vmlinux, 0o644); err != nil {
			return "", fmt.Errorf("extract vmlinux: %w", err)
		}
		if err := os.Rename(tmp, out); err != nil {
			return "", fmt.Errorf("extract vmlinux: %w", err)
		}
		return out, nil
	}
	return "", fmt.Errorf("extract vmlinux from %s: unknown compression (magic % x)", k.BzImage, payload[:min(6, len(payload))])
}
