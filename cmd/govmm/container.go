package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/govmm/govmm/images"
)

// containerImages resolves --container ROOTFS to a disk image for the
// guest, and picks the container initramfs (with runc) unless --initrd was
// given. A directory is copied into a temporary ext4 image, which cleanup
// removes.
func containerImages(ctx context.Context, rootfs string, initrd *string, initrdGiven bool) (disk string, cleanup func(), err error) {
	cleanup = func() {}
	var m *images.Manifest
	if rootfs == "default" || !initrdGiven {
		dir, err := images.DefaultCacheDir()
		if err != nil {
			return "", cleanup, err
		}
		if m, err = images.LoadManifest(dir); err != nil {
			return "", cleanup, fmt.Errorf("--container: %w", err)
		}
	}
	if !initrdGiven {
		if m.ContainerInitramfs == "" {
			return "", cleanup, errors.New("--container: 'govmm images' found no runc to pack into the guest: install it (apt-get install runc), then run 'govmm images' again")
		}
		*initrd = m.ContainerInitramfs
	}
	if rootfs == "default" {
		return m.ProbeRootfsImage, cleanup, nil
	}
	fi, err := os.Stat(rootfs)
	if err != nil {
		return "", cleanup, usageError{fmt.Errorf("--container: %w", err)}
	}
	if !fi.IsDir() {
		return rootfs, cleanup, nil // an image: the disk checks it like any other
	}
	tmp, err := os.MkdirTemp("", "govmm-rootfs-")
	if err != nil {
		return "", cleanup, fmt.Errorf("--container: %w", err)
	}
	cleanup = func() { os.RemoveAll(tmp) }
	image := filepath.Join(tmp, "rootfs.ext4")
	if err := images.MakeExt4(ctx, rootfs, image, "govmm-rootfs"); err != nil {
		cleanup()
		return "", func() {}, fmt.Errorf("--container %s: %w", rootfs, err)
	}
	return image, cleanup, nil
}
