package boot

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// defaultTestKernel is the Debian kernel `make images` downloads, in the
// cache directory package images uses ($GOVMM_CACHE, else the user's cache
// directory); boot cannot import images, which imports boot.
func defaultTestKernel() string {
	dir := os.Getenv("GOVMM_CACHE")
	if dir == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(cache, "govmm")
	}
	return filepath.Join(dir, "kernel/linux-image-6.1.0-56-amd64_6.1.192-2/boot/vmlinuz-6.1.0-56-amd64")
}

var (
	kernelOnce sync.Once
	kernelData []byte
	kernelErr  error
	kernelFile string // the path kernelData was read from
)

// realKernel returns the bytes of the test bzImage: $GOVMM_TEST_KERNEL, or
// the Debian kernel `make images` fetches. Callers must not modify them.
// It fails the test, never skips it, when neither exists.
func realKernel(t testing.TB) []byte {
	t.Helper()
	kernelOnce.Do(func() {
		var tried []string
		for _, path := range []string{os.Getenv("GOVMM_TEST_KERNEL"), defaultTestKernel()} {
			if path == "" {
				continue
			}
			kernelFile = path
			kernelData, kernelErr = os.ReadFile(path)
			if kernelErr == nil {
				return
			}
			tried = append(tried, path)
		}
		kernelErr = fmt.Errorf("no test kernel at %s: run make images (or set GOVMM_TEST_KERNEL to a bzImage): %w", strings.Join(tried, " or "), kernelErr)
	})
	require.NoError(t, kernelErr)
	return kernelData
}

// realKernelPath is the file realKernel read.
func realKernelPath(t testing.TB) string {
	realKernel(t)
	return kernelFile
}

// realKernelCopy returns a private copy of the test bzImage to corrupt.
func realKernelCopy(t testing.TB) []byte {
	return append([]byte(nil), realKernel(t)...)
}

// syntheticBzImage builds a small valid bzImage: 4 setup sectors (via the
// legacy setup_sects 0), protocol 2.15 and a payload of payloadSize bytes.
func syntheticBzImage(payloadSize int) []byte {
	le := binary.LittleEndian
	const setupSize = 5 * 512
	b := make([]byte, setupSize+payloadSize)
	b[hdrSetupSects] = 0
	le.PutUint16(b[hdrBootFlag:], bootFlag)
	b[hdrJump] = shortJumpOpcode
	b[hdrJump+1] = 0x6a // header ends at 0x26c, as in 2.15 kernels
	copy(b[hdrMagic:], "HdrS")
	le.PutUint16(b[hdrVersion:], 0x020f)
	le.PutUint16(b[hdrKernelVersion:], 0x300) // string at 0x500
	copy(b[0x500:], "9.9.9-test\x00")
	b[hdrLoadFlags] = LoadedHigh
	le.PutUint32(b[hdrInitrdAddrMax:], 0x7fffffff)
	le.PutUint32(b[hdrKernelAlignment:], 0x200000)
	b[hdrRelocatable] = 1
	le.PutUint16(b[hdrXLoadFlags:], XLFKernel64|XLFCanBeLoadedAbove4G)
	le.PutUint32(b[hdrCmdlineSize:], 2047)
	le.PutUint64(b[hdrPrefAddress:], DefaultLoadAddr)
	le.PutUint32(b[hdrInitSize:], 1<<20)
	for i := setupSize; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}
