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
// given. A directory is copied into a temporary ext4 image in a new
// directory, made, which the caller removes when the VM is done with it.
func containerImages(ctx context.Context, rootfs string, initrd *string, initrdGiven bool) (disk, made string, err error) {
	var m *images.Manifest
	if rootfs == "default" || !initrdGiven {
		dir, err := images.DefaultCacheDir()
		if err != nil {
			return "", "", err
		}
		if m, err = images.LoadManifest(dir); err != nil {
			return "", "", fmt.Errorf("--container: %w", err)
		}
	}
	if !initrdGiven {
		if m.ContainerInitramfs == "" {
			return "", "", errors.New("--container: 'govmm images' found no runc to pack into the guest: install it (apt-get install runc), then run 'govmm images' again")
		}
		*initrd = m.ContainerInitramfs
	}
	if rootfs == "default" {
		return m.ProbeRootfsImage, "", nil
	}
	fi, err := os.Stat(rootfs)
	if err != nil {
		return "", "", usageError{fmt.Errorf("--container: %w", err)}
	}
	if !fi.IsDir() {
		return rootfs, "", nil // an image: the disk checks it like any other
	}
	tmp, err := os.MkdirTemp("", "govmm-rootfs-")
	if err != nil {
		return "", "", fmt.Errorf("--container: %w", err)
	}
	image := filepath.Join(tmp, "rootfs.ext4")
	if err := images.MakeExt4(ctx, rootfs, image, "govmm-rootfs"); err != nil {
		os.RemoveAll(tmp)
		return "", "", fmt.Errorf("--container %s: %w", rootfs, err)
	}
	return image, tmp, nil
}
