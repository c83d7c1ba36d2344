package kvm

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"
)

const (
	// DevicePath is where the KVM device node normally lives.
	DevicePath = "/dev/kvm"
	// APIVersion is the only KVM API version this package speaks; it has
	// been 12 since Linux 2.6.22 (api.rst, section "KVM_GET_API_VERSION").
	APIVersion = 12
)

// System is an open KVM device: the handle for system ioctls.
type System struct {
	fd   int
	path string
}

// Open opens the KVM device at path (normally DevicePath) and checks that it
// speaks KVM API version 12. Every failure is an *UnavailableError (so
// errors.Is(err, ErrUnavailable) holds) explaining why KVM is unusable and
// what to do.
func Open(path string) (*System, error) {
	fd, err := openRetry(path)
	if err != nil {
		return nil, Diagnose(path, &os.PathError{Op: "open", Path: path, Err: err}, GatherHostFacts(os.DirFS("/")))
	}
	s := &System{fd: fd, path: path}
	version, err := ioctl(fd, kvmGetAPIVersion, 0)
	if err != nil {
		err = notKVMError(path, fmt.Errorf("get api version (KVM_GET_API_VERSION): %w", err))
	} else if version != APIVersion {
		err = apiVersionError(path, version)
	}
	if err != nil {
		if cerr := s.Close(); cerr != nil {
			return nil, multierror.Append(err, cerr)
		}
		return nil, err
	}
	return s, nil
}

// openRetry opens path read-write, close-on-exec, retrying if a signal
// interrupts the open.
func openRetry(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// Close closes the KVM device. VMs created from it stay valid. Closing
// twice is a no-op.
func (s *System) Close() error {
	if s.fd < 0 {
		return nil
	}
	fd := s.fd
	s.fd = -1
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("close %s: %w", s.path, err)
	}
	return nil
}

// CheckExtension asks whether the kernel supports c. The result is 0 for
// "no"; positive values mean "yes" and, for some capabilities (e.g.
// CapNrVCPUs, CapMaxVCPUs, CapNrMemslots), carry a limit.
func (s *System) CheckExtension(c Capability) (int, error) {
	n, err := ioctl(s.fd, kvmCheckExtension, uintptr(c))
	if err != nil {
		return 0, fmt.Errorf("check extension %v (KVM_CHECK_EXTENSION): %w", c, err)
	}
	return n, nil
}

// ErrMissingCapability is wrapped by the error RequireExtensions returns
// when the kernel lacks a capability.
var ErrMissingCapability = errors.New("kvm capability missing")

// RequireExtensions checks every capability in caps and fails, naming all
// the missing ones at once, unless the kernel supports each of them.
func (s *System) RequireExtensions(caps ...Capability) error {
	var missing []string
	for _, c := range caps {
		n, err := s.CheckExtension(c)
		if err != nil {
			return err
		}
		if n == 0 {
			missing = append(missing, c.String())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("kernel lacks %s: %w", strings.Join(missing, ", "), ErrMissingCapability)
	}
	return nil
}

// VCPUMmapSize returns the size of the region each vCPU's kvm_run structure
// is mapped from: struct kvm_run plus the pages that follow it (port I/O
// data, coalesced MMIO ring). api.rst, section "KVM_GET_VCPU_MMAP_SIZE".
func (s *System) VCPUMmapSize() (int, error) {
	n, err := ioctl(s.fd, kvmGetVCPUMmapSize, 0)
	if err != nil {
		return 0, fmt.Errorf("get vcpu mmap size (KVM_GET_VCPU_MMAP_SIZE): %w", err)
	}
	if n < sizeofRun {
		return 0, fmt.Errorf("get vcpu mmap size (KVM_GET_VCPU_MMAP_SIZE): kernel reports %d bytes, less than struct kvm_run (%d bytes)", n, sizeofRun)
	}
	return n, nil
}

// maxCPUIDEntries bounds the buffer SupportedCPUID offers the kernel. The
// kernel's own limit (KVM_MAX_CPUID_ENTRIES) is 256; the headroom allows
// for future growth without looping forever on a kernel that keeps
// answering E2BIG.
const maxCPUIDEntries = 4096

// SupportedCPUID returns the CPUID leaves KVM can present to a guest on
// this host (api.rst, section "KVM_GET_SUPPORTED_CPUID"). Entries are a
// starting point for [VCPU.SetCPUID2], usually after adjustment.
func (s *System) SupportedCPUID() ([]CPUIDEntry2, error) {
	for n := 256; n <= maxCPUIDEntries; n *= 2 {
		buf, err := marshalCPUID2(make([]CPUIDEntry2, n))
		if err != nil {
			return nil, err
		}
		if _, err := ioctlBuf(s.fd, kvmGetSupportedCPUID, buf); err != nil {
			if errors.Is(err, unix.E2BIG) {
				continue
			}
			return nil, fmt.Errorf("get supported cpuid (KVM_GET_SUPPORTED_CPUID) with room for %d entries: %w", n, err)
		}
		entries, err := unmarshalCPUID2(buf)
		if err != nil {
			return nil, fmt.Errorf("get supported cpuid (KVM_GET_SUPPORTED_CPUID): %w", err)
		}
		return entries, nil
	}
	return nil, fmt.Errorf("get supported cpuid (KVM_GET_SUPPORTED_CPUID): kernel needs more than %d entries: %w", maxCPUIDEntries, unix.E2BIG)
}

// MSRIndexList returns the indices of the MSRs KVM saves and restores for
// a guest (api.rst, section "KVM_GET_MSR_INDEX_LIST").
func (s *System) MSRIndexList() ([]uint32, error) {
	// The kernel writes the count it needs into the header before failing
	// with E2BIG, so the first call (with room for none) sizes the second.
	// The loop tolerates the count changing between calls, which it should
	// not, but bounds the retries.
	n := uint32(0)
	for range 4 {
		buf, err := marshalMSRList(n)
		if err != nil {
			return nil, err
		}
		_, err = ioctlBuf(s.fd, kvmGetMSRIndexList, buf)
		if errors.Is(err, unix.E2BIG) {
			n = nativeEndian.Uint32(buf)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("get msr index list (KVM_GET_MSR_INDEX_LIST): %w", err)
		}
		indices, err := unmarshalMSRList(buf)
		if err != nil {
			return nil, fmt.Errorf("get msr index list (KVM_GET_MSR_INDEX_LIST): %w", err)
		}
		return indices, nil
	}
	return nil, fmt.Errorf("get msr index list (KVM_GET_MSR_INDEX_LIST): count kept changing: %w", unix.E2BIG)
}

// CreateVM creates a virtual machine with the default (type 0) machine
// type. The VM is independent of the System afterwards.
func (s *System) CreateVM() (*VM, error) {
	mmapSize, err := s.VCPUMmapSize()
	if err != nil {
		return nil, fmt.Errorf("create vm: %w", err)
	}
	fd, err := ioctl(s.fd, kvmCreateVM, 0)
	if err != nil {
		return nil, fmt.Errorf("create vm (KVM_CREATE_VM): %w", err)
	}
	return &VM{fd: fd, vcpuMmapSize: mmapSize}, nil
}
