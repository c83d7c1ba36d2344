package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/container"
)

const (
	// containerRoot is where the agent mounts the container's root file
	// system, and containerBundle where it writes the OCI bundle.
	containerRoot   = "/run/govmm/rootfs"
	containerBundle = "/run/govmm/bundle"
	// runcPath is where the container initramfs carries runc
	// (images.RuncGuestPath).
	runcPath = "/usr/sbin/runc"
	// containerID names the one container of the guest.
	containerID = "govmm"
)

// runContainer runs argv in a runc container whose root is the ext4 file
// system on the disk with the given serial, and returns the status to
// report: the container process's, or 125-127 when the agent could not run
// it (the shell's convention, as for commands run directly).
func runContainer(serial string, argv []string) int {
	if len(argv) == 0 {
		log.Printf("container: no command to run")
		return 125
	}
	if _, err := os.Stat(runcPath); err != nil {
		log.Printf("container: this initramfs has no runc (%v): boot the container initramfs of 'govmm images' (govmm run --container picks it)", err)
		return 127
	}
	dev, err := findDiskBySerial(serial, 5*time.Second)
	if err != nil {
		log.Printf("container: %v", err)
		return 125
	}
	if err := os.MkdirAll(containerRoot, 0o755); err != nil {
		log.Printf("container: %v", err)
		return 125
	}
	if err := unix.Mount(dev, containerRoot, "ext4", unix.MS_RDONLY|unix.MS_NODEV, ""); err != nil {
		log.Printf("container: mount %s (serial %s) read-only on %s: %v", dev, serial, containerRoot, err)
		return 125
	}
	cfg := container.Config{RootFS: containerRoot, Args: argv}
	if err := container.WriteBundle(containerBundle, cfg, containerID); err != nil {
		log.Printf("container: %v", err)
		return 125
	}
	// The guest's root is the initramfs: runc's pivot_root cannot leave it.
	rt := container.Runtime{Runc: runcPath, NoPivot: true}
	cmd := rt.Command(context.Background(), containerBundle, containerID)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = console, console, console
	cmd.Dir = "/"
	status, err := container.ExitStatus(cmd.Run())
	if err != nil {
		log.Printf("container: %v", err)
		return 126
	}
	return status
}

// findDiskBySerial finds the block device whose virtio serial (GET_ID,
// /sys/block/NAME/serial) is serial, waiting up to timeout for it to appear.
func findDiskBySerial(serial string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		names, _ := filepath.Glob("/sys/block/vd*/serial")
		for _, p := range names {
			got, err := os.ReadFile(p)
			if err == nil && strings.TrimSpace(string(got)) == serial {
				return "/dev/" + filepath.Base(filepath.Dir(p)), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no disk with serial %q (disks seen: %d)", serial, len(names))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
