package blk

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// SectorSize is the unit of virtio-blk addresses (virtio 1.2 section 5.2.6).
const SectorSize = 512

// Disk is an open, locked raw image.
type Disk struct {
	f        *os.File
	path     string
	size     uint64
	readOnly bool
}

// ErrLocked says another process (or another disk of this VM) holds the
// image.
var ErrLocked = errors.New("disk image is in use by another VM (it is locked)")

// OpenDisk opens the raw image at path for a VM and locks it.
func OpenDisk(path string, readOnly bool) (*Disk, error) {
	flags := os.O_RDWR
	if readOnly {
		flags = os.O_RDONLY
	}
	f, err := os.OpenFile(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(path, readOnly, err)
	}
	d, err := newDisk(f, path, readOnly)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// openError explains a failed open: a read-only image asked for read-write
// names the fix.
func openError(path string, readOnly bool, err error) error {
	if !readOnly && (errors.Is(err, os.ErrPermission) || errors.Is(err, unix.EROFS)) {
		return fmt.Errorf("disk %s: %w: to give it to the guest read-only, add ,readonly to --disk", path, err)
	}
	return fmt.Errorf("disk %s: %w", path, err)
}

func newDisk(f *os.File, path string, readOnly bool) (*Disk, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", path, err)
	}
	var size uint64
	switch {
	case st.Mode().IsRegular():
		size = uint64(st.Size())
	case st.Mode()&os.ModeDevice != 0:
		s, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKGETSIZE64)
		if err != nil {
			return nil, fmt.Errorf("disk %s: size of block device: %w", path, err)
		}
		size = uint64(s)
	default:
		return nil, fmt.Errorf("disk %s: not a regular file or block device (%s)", path, st.Mode().Type())
	}
	if size == 0 {
		return nil, fmt.Errorf("disk %s: the image is empty; create one with e.g. `truncate -s 1G %s` or `mkfs.ext4 -d DIR %s 1G`", path, path, path)
	}
	if size%SectorSize != 0 {
		return nil, fmt.Errorf("disk %s: size %d is not a multiple of %d-byte sectors; a raw image's size must be (is it a raw image?)", path, size, SectorSize)
	}
	how := unix.LOCK_EX
	if readOnly {
		how = unix.LOCK_SH // read-only users may share an image, never with a writer
	}
	if err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("disk %s: %w", path, ErrLocked)
		}
		return nil, fmt.Errorf("disk %s: lock: %w", path, err)
	}
	return &Disk{f: f, path: path, size: size, readOnly: readOnly}, nil
}

// Path is the image's path.
func (d *Disk) Path() string { return d.path }

// Size is the image's size in bytes.
func (d *Disk) Size() uint64 { return d.size }

// ReadOnly reports whether the guest may only read the disk.
func (d *Disk) ReadOnly() bool { return d.readOnly }

// Close unlocks and closes the image.
func (d *Disk) Close() error {
	if err := d.f.Close(); err != nil {
		return fmt.Errorf("close disk %s: %w", d.path, err)
	}
	return nil
}
