package main

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// ext4Image makes a real ext4 image holding files, with mkfs.ext4 -d.
func ext4Image(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "root")
	require.NoError(t, os.Mkdir(src, 0o755))
	for name, content := range files {
		require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte(content), 0o644))
	}
	img := filepath.Join(dir, "disk.img")
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-d", src, img, "32M").CombinedOutput()
	require.NoError(t, err, "mkfs.ext4 (apt-get install e2fsprogs): %s", out)
	return img
}

// imageFile reads a file out of an ext4 image on the host, with debugfs.
func imageFile(t *testing.T, img, name string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", "cat /"+name, img).Output()
	require.NoError(t, err)
	return string(out)
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return sha256.Sum256(b)
}

// TestDiskReadWrite: the guest mounts an ext4 image, reads a file the host
// put there, writes one of its own and unmounts; afterwards the host finds
// the guest's file in the image, and the file system is clean.
func TestDiskReadWrite(t *testing.T) {
	t.Parallel()
	img := ext4Image(t, map[string]string{"hello.txt": "hello from the host\n"})
	code, out, errOut := govmm(t, "run", "--disk", img, "--", "sh", "-c",
		"mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && cat /mnt/hello.txt && "+
			"echo 'written by the guest' > /mnt/from-guest.txt && sync && umount /mnt && echo unmounted")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "hello from the host\nunmounted\n")
	assert.Equal(t, "written by the guest\n", imageFile(t, img, "from-guest.txt"))
	fsck, err := exec.Command("e2fsck", "-fn", img).CombinedOutput()
	assert.NoError(t, err, "the guest left the file system clean: %s", fsck)
}

// TestReadOnlyDiskRefusesWrites: a read-only disk reads, refuses writes,
// and the image stays byte for byte the same.
func TestReadOnlyDiskRefusesWrites(t *testing.T) {
	t.Parallel()
	img := ext4Image(t, map[string]string{"ref.txt": "reference data\n"})
	before := fileSum(t, img)
	code, out, errOut := govmm(t, "run", "--disk", img+",readonly", "--", "sh", "-c",
		"cat /sys/block/vda/ro; "+
			// O_SYNC: the write returns only once the device answered it.
			"if dd if=/dev/zero of=/dev/vda bs=512 count=1 oflag=sync; then echo raw-write-accepted; else echo raw-write-refused; fi; "+
			"mkdir -p /mnt && mount -t ext4 -o ro /dev/vda /mnt && cat /mnt/ref.txt && "+
			"if echo x > /mnt/new.txt; then echo fs-write-accepted; else echo fs-write-refused; fi")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "govmm-agent: started\n1\n", "the kernel sees a read-only disk")
	assert.Contains(t, out, "raw-write-refused\n")
	assert.Contains(t, out, "reference data\n")
	assert.Contains(t, out, "fs-write-refused\n")
	assert.Equal(t, before, fileSum(t, img), "the image must not change")
}

// TestTwoDisks: two disks at once, in --disk order, with their serials.
// The guest's driver notifies through the devices' I/O ports, and every
// notification is taken by an ioeventfd: none reaches the VMM as an exit.
func TestTwoDisks(t *testing.T) {
	t.Parallel()
	first := ext4Image(t, map[string]string{"which.txt": "first\n"})
	second := ext4Image(t, map[string]string{"which.txt": "second\n"})
	code, out, errOut := govmm(t, "run", "--verbose", "--disk", first+",serial=disk-one", "--disk", second+",readonly", "--", "sh", "-c",
		"mkdir -p /a /b && mount -t ext4 /dev/vda /a && mount -t ext4 -o ro /dev/vdb /b && "+
			"cat /a/which.txt /b/which.txt /sys/block/vda/serial; echo; cat /sys/block/vdb/ro; umount /a; "+
			"grep -c ': virtio-pci-modern' /proc/ioports")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", out, errOut)
	assert.Contains(t, out, "first\nsecond\ndisk-one\n1\n2\n", "the files, the serial, read-only, and both drivers holding their ports")
	assert.Equal(t, 2, strings.Count(errOut, `"notifications by exit"=0`), "stderr:\n%s", errOut)
}

// TestDiskErrors: bad --disk arguments fail before the VM is built, with
// the reason and the fix, and leave the image alone.
func TestDiskErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd.img")
	require.NoError(t, os.WriteFile(odd, make([]byte, 1000), 0o644))
	locked := filepath.Join(dir, "locked.img")
	require.NoError(t, os.WriteFile(locked, make([]byte, 1<<20), 0o644))
	// Another VM holds locked.img: this process, with the same kind of lock.
	f, err := os.OpenFile(locked, os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	require.NoError(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	lockedSum := fileSum(t, locked)

	for _, tc := range []struct {
		name     string
		disk     string
		wantCode int
		want     []string
	}{
		{"missing image", filepath.Join(dir, "nope.img"), exitFailure, []string{"nope.img", "no such file"}},
		{"odd size", odd, exitFailure, []string{"not a multiple of 512-byte sectors"}},
		{"locked", locked, exitFailure, []string{"in use by another VM"}},
		{"locked, read-only", locked + ",readonly", exitFailure, []string{"in use by another VM"}},
		{"unknown option", odd + ",format=qcow2", exitUsage, []string{`unknown option "format=qcow2"`}},
		{"no path", ",readonly", exitUsage, []string{"no image path"}},
		{"serial too long", odd + ",serial=123456789012345678901", exitUsage, []string{"longer than 20 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := govmm(t, "run", "--disk", tc.disk, "--", "true")
			assert.Equal(t, tc.wantCode, code, "stderr:\n%s", errOut)
			for _, w := range tc.want {
				assert.Contains(t, errOut, w)
			}
			assert.NotContains(t, errOut, "panic:")
		})
	}
	assert.Equal(t, lockedSum, fileSum(t, locked))
}
