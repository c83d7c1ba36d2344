package kvm

import (
	"errors"
	"io/fs"
	"os"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const (
	cpuinfoIntel = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse vmx ssse3\n\nprocessor\t: 1\nflags\t\t: fpu vme de pse vmx ssse3\n"
	cpuinfoAMD   = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme svm sse4a\n"
	cpuinfoNone  = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse sse2\n"
	cpuinfoGuest = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu vme sse2 hypervisor\n"
)

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

func dir() *fstest.MapFile { return &fstest.MapFile{Mode: fs.ModeDir | 0o555} }

func TestGatherHostFacts(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
		want HostFacts
	}{
		{
			name: "nothing readable",
			fsys: fstest.MapFS{},
			want: HostFacts{},
		},
		{
			name: "intel with modules loaded",
			fsys: fstest.MapFS{
				"proc/cpuinfo":                           file(cpuinfoIntel),
				"proc/modules":                           file("kvm_intel 409600 0 - Live 0x0\nkvm 1130496 1 kvm_intel, Live 0x0\nirqbypass 16384 1 kvm, Live 0x0\n"),
				"sys/module/kvm_intel/parameters/nested": file("Y\n"),
			},
			want: HostFacts{
				CPUInfoKnown: true, VMX: true,
				ModulesKnown: true, KVMModule: true, KVMIntelModule: true,
				NestedIntel: "Y",
			},
		},
		{
			name: "amd with built-in kvm seen only in /sys/module",
			fsys: fstest.MapFS{
				"proc/cpuinfo":                         file(cpuinfoAMD),
				"sys/module/kvm":                       dir(),
				"sys/module/kvm_amd/parameters/nested": file("0\n"),
			},
			want: HostFacts{
				CPUInfoKnown: true, SVM: true,
				ModulesKnown: true, KVMModule: true, KVMAMDModule: true,
				NestedAMD: "0",
			},
		},
		{
			name: "guest without nested virtualization",
			fsys: fstest.MapFS{
				"proc/cpuinfo": file(cpuinfoGuest),
				"proc/modules": file(""),
			},
			want: HostFacts{CPUInfoKnown: true, Hypervisor: true, ModulesKnown: true},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, GatherHostFacts(tc.fsys))
		})
	}
}

func openError(errno unix.Errno) error {
	return &os.PathError{Op: "open", Path: DevicePath, Err: errno}
}

func TestDiagnose(t *testing.T) {
	intelLoaded := HostFacts{CPUInfoKnown: true, VMX: true, ModulesKnown: true, KVMModule: true, KVMIntelModule: true}
	tests := []struct {
		name        string
		openErr     error
		facts       HostFacts
		wantReason  []string // substrings of Reason
		wantAdvice  []string // substrings of the joined Advice
		wantErrnoIs error
	}{
		{
			name:        "missing node in a vm without nested virtualization",
			openErr:     openError(unix.ENOENT),
			facts:       HostFacts{CPUInfoKnown: true, Hypervisor: true, ModulesKnown: true},
			wantReason:  []string{"/dev/kvm does not exist", "virtual machine", "without nested virtualization", "no vmx or svm"},
			wantAdvice:  []string{"/sys/module/kvm_intel/parameters/nested", "modprobe kvm_amd nested=1", "-cpu host", "bare-metal"},
			wantErrnoIs: fs.ErrNotExist,
		},
		{
			name:       "missing node on bare metal with virtualization disabled",
			openErr:    openError(unix.ENOENT),
			facts:      HostFacts{CPUInfoKnown: true, ModulesKnown: true},
			wantReason: []string{"does not exist", "no vmx or svm"},
			wantAdvice: []string{"BIOS/UEFI"},
		},
		{
			name:       "missing node, intel module not loaded",
			openErr:    openError(unix.ENOENT),
			facts:      HostFacts{CPUInfoKnown: true, VMX: true, ModulesKnown: true, KVMModule: true},
			wantReason: []string{"kvm_intel module is not loaded"},
			wantAdvice: []string{"sudo modprobe kvm_intel", "disabled by bios"},
		},
		{
			name:       "missing node, amd module not loaded",
			openErr:    openError(unix.ENOENT),
			facts:      HostFacts{CPUInfoKnown: true, SVM: true, ModulesKnown: true},
			wantReason: []string{"kvm_amd module is not loaded"},
			wantAdvice: []string{"sudo modprobe kvm_amd"},
		},
		{
			name:       "missing node although the driver is loaded",
			openErr:    openError(unix.ENOENT),
			facts:      intelLoaded,
			wantReason: []string{"kvm_intel module is loaded", "not created or not passed through"},
			wantAdvice: []string{"--device /dev/kvm", "mknod /dev/kvm c 10 232"},
		},
		{
			name:       "missing node, nothing known",
			openErr:    openError(unix.ENOENT),
			facts:      HostFacts{},
			wantReason: []string{"could not be determined"},
			wantAdvice: []string{"vmx or svm", "lsmod", "--device /dev/kvm"},
		},
		{
			name:        "permission denied",
			openErr:     openError(unix.EACCES),
			facts:       intelLoaded,
			wantReason:  []string{"permission denied", "/dev/kvm"},
			wantAdvice:  []string{"sudo usermod -aG kvm $USER", "log out and back in", "ls -l /dev/kvm"},
			wantErrnoIs: fs.ErrPermission,
		},
		{
			name:       "operation not permitted",
			openErr:    openError(unix.EPERM),
			facts:      intelLoaded,
			wantReason: []string{"permission denied"},
			wantAdvice: []string{"kvm group"},
		},
		{
			name:       "node without a driver",
			openErr:    openError(unix.ENXIO),
			facts:      HostFacts{CPUInfoKnown: true, SVM: true},
			wantReason: []string{"no KVM driver is behind it"},
			wantAdvice: []string{"sudo modprobe kvm_amd", "dmesg"},
		},
		{
			name:       "anything else",
			openErr:    openError(unix.EIO),
			facts:      intelLoaded,
			wantReason: []string{"could not be opened"},
			wantAdvice: []string{"dmesg"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := Diagnose(DevicePath, tc.openErr, tc.facts)
			require.NotNil(t, e)
			for _, s := range tc.wantReason {
				assert.Contains(t, e.Reason, s)
			}
			require.NotEmpty(t, e.Advice, "every diagnosis must say what to do")
			for _, s := range tc.wantAdvice {
				assert.Contains(t, e.Error(), s)
			}
			assert.Equal(t, tc.facts, e.Facts)

			var err error = e
			assert.ErrorIs(t, err, ErrUnavailable)
			assert.ErrorIs(t, err, tc.openErr)
			if tc.wantErrnoIs != nil {
				assert.ErrorIs(t, err, tc.wantErrnoIs)
			}
			var ue *UnavailableError
			require.True(t, errors.As(err, &ue))
			assert.Equal(t, DevicePath, ue.Path)
			assert.Regexp(t, `^kvm is unavailable: [a-z/]`, err.Error(), "errors start lowercase")
		})
	}
}

// TestOpenDiagnoses checks that Open itself turns failures into
// *UnavailableError, using paths that fail the same way on any machine.
func TestOpenDiagnoses(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		wantReason string
	}{
		{name: "missing device node", path: "/nonexistent/kvm", wantReason: "/nonexistent/kvm does not exist"},
		{name: "not a kvm device", path: "/dev/null", wantReason: "not a KVM device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sys, err := Open(tc.path)
			assert.Nil(t, sys)
			require.ErrorIs(t, err, ErrUnavailable)
			var ue *UnavailableError
			require.ErrorAs(t, err, &ue)
			assert.Contains(t, ue.Reason, tc.wantReason)
			assert.NotEmpty(t, ue.Advice)
		})
	}
}

func TestAPIVersionError(t *testing.T) {
	err := error(apiVersionError(DevicePath, 11))
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorContains(t, err, "version 11")
	assert.ErrorContains(t, err, "needs version 12")
}

func TestCheckStockGuests(t *testing.T) {
	require.NoError(t, CheckStockGuests(DevicePath, HostFacts{KVMModule: true, KVMAMDModule: true}))
	facts := GatherHostFacts(fstest.MapFS{
		"sys/module/kvm/parameters/halt_poll_ns": {Data: []byte("0")},
		"sys/module/kvm_pvm/parameters/x":        {Data: []byte("1")},
	})
	require.True(t, facts.PVMModule)
	err := CheckStockGuests(DevicePath, facts)
	require.ErrorIs(t, err, ErrUnavailable)
	assert.ErrorContains(t, err, "PVM")
	assert.ErrorContains(t, err, "govmm with-kvm")
}
