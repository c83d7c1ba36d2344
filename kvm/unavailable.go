package kvm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is wrapped by every error that means "KVM cannot be used
// on this host at all", as opposed to a failure of one operation. Test for
// it with errors.Is; use errors.As with *UnavailableError for the details.
var ErrUnavailable = errors.New("kvm is unavailable")

// UnavailableError explains why KVM cannot be used here and what to do
// about it. [Open] returns it for every failure; [Diagnose] builds it.
type UnavailableError struct {
	// Path is the device path that was tried, usually DevicePath.
	Path string
	// Reason says in plain words why KVM is unusable.
	Reason string
	// Advice lists steps that would fix it, most likely first.
	Advice []string
	// Facts are what was observed about the host while diagnosing.
	Facts HostFacts
	// Err is the underlying failure (e.g. the *fs.PathError from open), or
	// nil.
	Err error
}

// Error renders the reason, the advice and the underlying error on one
// line, lowercase, so it can be wrapped like any other error.
func (e *UnavailableError) Error() string {
	var b strings.Builder
	b.WriteString("kvm is unavailable: ")
	b.WriteString(e.Reason)
	if len(e.Advice) > 0 {
		b.WriteString("; to fix: ")
		b.WriteString(strings.Join(e.Advice, "; "))
	}
	if e.Err != nil {
		b.WriteString(" (")
		b.WriteString(e.Err.Error())
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap exposes both ErrUnavailable and the underlying error, so that
// errors.Is(err, ErrUnavailable) and errors.Is(err, fs.ErrPermission) both
// work.
func (e *UnavailableError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.Err}
}

// HostFacts are the observations [Diagnose] reasons over. Gather them from
// a filesystem view with [GatherHostFacts]; tests build them directly or
// from an fstest.MapFS.
type HostFacts struct {
	// CPUInfoKnown is set when /proc/cpuinfo could be read; the CPU flags
	// below are meaningful only then.
	CPUInfoKnown bool
	// VMX and SVM report the Intel VT-x and AMD-V CPU flags.
	VMX, SVM bool
	// Hypervisor reports the "hypervisor" CPU flag: this host is itself a
	// virtual machine, so hardware virtualization needs nested support.
	Hypervisor bool

	// ModulesKnown is set when /proc/modules or /sys/module could be read;
	// the module fields below are meaningful only then.
	ModulesKnown bool
	// KVMModule, KVMIntelModule and KVMAMDModule report whether the kvm,
	// kvm_intel and kvm_amd modules are loaded (or built in).
	KVMModule, KVMIntelModule, KVMAMDModule bool

	// NestedIntel and NestedAMD hold the trimmed contents of
	// /sys/module/kvm_{intel,amd}/parameters/nested ("Y", "1", "N", "0"),
	// or "" when the file is absent. They say whether guests of this host
	// may themselves use KVM.
	NestedIntel, NestedAMD string

	// PVMModule reports the kvm_pvm module: KVM backed by PVM, a
	// software virtualization (no VT-x/AMD-V) that runs only guest kernels
	// built to run under it.
	PVMModule bool
}

// GatherHostFacts reads what [Diagnose] needs from fsys, which is rooted
// at the host's "/" (os.DirFS("/") in production). Missing or unreadable
// files simply leave the corresponding facts unknown.
func GatherHostFacts(fsys fs.FS) HostFacts {
	var f HostFacts
	if cpuinfo, err := fs.ReadFile(fsys, "proc/cpuinfo"); err == nil {
		f.CPUInfoKnown = true
		f.VMX, f.SVM, f.Hypervisor = parseCPUFlags(cpuinfo)
	}
	if modules, err := fs.ReadFile(fsys, "proc/modules"); err == nil {
		f.ModulesKnown = true
		sc := bufio.NewScanner(bytes.NewReader(modules))
		for sc.Scan() {
			name, _, _ := strings.Cut(sc.Text(), " ")
			f.noteModule(name)
		}
	}
	// Built-in modules never appear in /proc/modules, but any module with
	// parameters (kvm, kvm_intel and kvm_amd all have some) has a directory
	// under /sys/module.
	if entries, err := fs.ReadDir(fsys, "sys/module"); err == nil {
		f.ModulesKnown = true
		for _, e := range entries {
			f.noteModule(e.Name())
		}
	}
	f.NestedIntel = readTrimmed(fsys, "sys/module/kvm_intel/parameters/nested")
	f.NestedAMD = readTrimmed(fsys, "sys/module/kvm_amd/parameters/nested")
	return f
}

func (f *HostFacts) noteModule(name string) {
	switch name {
	case "kvm":
		f.KVMModule = true
	case "kvm_intel":
		f.KVMIntelModule = true
	case "kvm_amd":
		f.KVMAMDModule = true
	case "kvm_pvm":
		f.PVMModule = true
	}
}

// parseCPUFlags scans the "flags" lines of /proc/cpuinfo.
func parseCPUFlags(cpuinfo []byte) (vmx, svm, hypervisor bool) {
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(key) != "flags" {
			continue
		}
		for _, flag := range strings.Fields(value) {
			switch flag {
			case "vmx":
				vmx = true
			case "svm":
				svm = true
			case "hypervisor":
				hypervisor = true
			}
		}
	}
	return vmx, svm, hypervisor
}

func readTrimmed(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Diagnose turns a failure to open the KVM device at path into an
// *UnavailableError that says why and what to do. It is a pure function of
// its arguments so that every branch can be tested without the host having
// (or lacking) KVM.
func Diagnose(path string, openErr error, facts HostFacts) *UnavailableError {
	e := &UnavailableError{Path: path, Facts: facts, Err: openErr}
	switch {
	case errors.Is(openErr, fs.ErrNotExist):
		diagnoseMissingNode(e)
	case errors.Is(openErr, fs.ErrPermission):
		e.Reason = fmt.Sprintf("permission denied: the current user may not open %s", path)
		e.Advice = []string{
			"add the user to the kvm group with `sudo usermod -aG kvm $USER`, then log out and back in (or run `newgrp kvm`) so the new group takes effect",
			fmt.Sprintf("if that does not help, check the node with `ls -l %s`: it is normally owned by group kvm with mode 0660 (set by udev)", path),
		}
	case errors.Is(openErr, unix.ENXIO), errors.Is(openErr, unix.ENODEV):
		e.Reason = fmt.Sprintf("%s exists but no KVM driver is behind it", path)
		e.Advice = append(loadModuleAdvice(facts),
			"check `dmesg | grep -i kvm`: \"disabled by bios\" means VT-x/AMD-V must be enabled in the firmware setup")
	default:
		e.Reason = fmt.Sprintf("%s could not be opened", path)
		e.Advice = []string{"check `dmesg | grep -i kvm` for the kernel's explanation"}
	}
	return e
}

// diagnoseMissingNode handles the commonest failure: there is no device
// node at all. That has three usual causes, told apart by the CPU flags and
// the loaded modules.
func diagnoseMissingNode(e *UnavailableError) {
	f := e.Facts
	switch {
	case f.CPUInfoKnown && !f.VMX && !f.SVM && f.Hypervisor:
		e.Reason = fmt.Sprintf("%s does not exist: this machine is a virtual machine (the CPU reports the \"hypervisor\" flag) started without nested virtualization, so it has no vmx or svm flag in /proc/cpuinfo", e.Path)
		e.Advice = []string{
			"enable nested virtualization for this VM on its host: on a Linux/KVM host `cat /sys/module/kvm_intel/parameters/nested` (or kvm_amd) must print Y or 1 (set it with `modprobe kvm_intel nested=1` or `modprobe kvm_amd nested=1`), and the VM must get the host CPU model (e.g. QEMU `-cpu host`)",
			"on a cloud provider, use an instance type that supports nested virtualization, or a bare-metal instance",
		}
	case f.CPUInfoKnown && !f.VMX && !f.SVM:
		e.Reason = fmt.Sprintf("%s does not exist: the CPU reports no hardware virtualization (no vmx or svm flag in /proc/cpuinfo)", e.Path)
		e.Advice = []string{
			"enable Intel VT-x or AMD-V (SVM) in the BIOS/UEFI setup and reboot",
			"if the firmware has no such option, this CPU cannot run KVM",
		}
	case f.CPUInfoKnown && f.ModulesKnown && !vendorModuleLoaded(f):
		e.Reason = fmt.Sprintf("%s does not exist: the CPU supports virtualization but the %s module is not loaded", e.Path, vendorModule(f))
		e.Advice = append(loadModuleAdvice(f),
			"if loading fails, check `dmesg | grep -i kvm`: \"disabled by bios\" means VT-x/AMD-V must be enabled in the firmware setup")
	case f.CPUInfoKnown && f.ModulesKnown:
		e.Reason = fmt.Sprintf("%s does not exist although the CPU supports virtualization and the %s module is loaded: the device node was not created or not passed through", e.Path, vendorModule(f))
		e.Advice = []string{
			fmt.Sprintf("in a container, pass the device in (e.g. `docker run --device %s`)", e.Path),
			fmt.Sprintf("otherwise create it: `sudo mknod %s c 10 232 && sudo chgrp kvm %[1]s && sudo chmod 0660 %[1]s`, and check the udev rules that should have done so", e.Path),
		}
	default:
		e.Reason = fmt.Sprintf("%s does not exist and the cause could not be determined (/proc/cpuinfo or the module list was unreadable)", e.Path)
		e.Advice = []string{
			"check that /proc/cpuinfo lists the vmx or svm flag; if not, enable VT-x/AMD-V in firmware, or nested virtualization if this is a VM",
			"check that `lsmod` lists kvm_intel or kvm_amd; if not, load it with `sudo modprobe kvm_intel` or `sudo modprobe kvm_amd`",
			"in a container, pass the device in (e.g. `docker run --device /dev/kvm`)",
		}
	}
}

func vendorModuleLoaded(f HostFacts) bool {
	switch {
	case f.VMX:
		return f.KVMModule && f.KVMIntelModule
	case f.SVM:
		return f.KVMModule && f.KVMAMDModule
	default:
		return f.KVMModule && (f.KVMIntelModule || f.KVMAMDModule)
	}
}

func vendorModule(f HostFacts) string {
	switch {
	case f.VMX:
		return "kvm_intel"
	case f.SVM:
		return "kvm_amd"
	default:
		return "kvm_intel or kvm_amd"
	}
}

func loadModuleAdvice(f HostFacts) []string {
	switch {
	case f.VMX:
		return []string{"load the driver with `sudo modprobe kvm_intel` (add kvm_intel to /etc/modules-load.d/ to keep it across reboots)"}
	case f.SVM:
		return []string{"load the driver with `sudo modprobe kvm_amd` (add kvm_amd to /etc/modules-load.d/ to keep it across reboots)"}
	default:
		return []string{"load the driver with `sudo modprobe kvm_intel` or `sudo modprobe kvm_amd`, matching the CPU vendor"}
	}
}

// apiVersionError reports a kernel whose KVM API version is not the one
// this package was written against.
func apiVersionError(path string, got int) *UnavailableError {
	return &UnavailableError{
		Path:   path,
		Reason: fmt.Sprintf("%s reports KVM API version %d, but govmm needs version %d", path, got, APIVersion),
		Advice: []string{"run on a Linux kernel with the stable KVM API (every kernel since 2.6.22 reports version 12)"},
	}
}

// notKVMError reports a path that opened but does not answer
// KVM_GET_API_VERSION, i.e. is not the KVM device.
func notKVMError(path string, err error) *UnavailableError {
	return &UnavailableError{
		Path:   path,
		Reason: fmt.Sprintf("%s is not a KVM device: it rejected KVM_GET_API_VERSION", path),
		Advice: []string{fmt.Sprintf("check the path; the KVM device is %s, a character device with number 10:232", DevicePath)},
		Err:    err,
	}
}

// CheckStockGuests says whether a /dev/kvm that opened fine can also run
// stock guest kernels. KVM backed by PVM (kvm_pvm) answers every ioctl and
// runs simple code, but an unmodified kernel never gets past its
// decompressor there; only guest kernels built for PVM boot.
func CheckStockGuests(path string, f HostFacts) error {
	if !f.PVMModule {
		return nil
	}
	return &UnavailableError{
		Path:   path,
		Reason: "this host's KVM is PVM (module kvm_pvm), a software virtualization that boots only guest kernels built for it, not the stock kernels govmm runs",
		Advice: []string{
			"run through govmm's nested harness, which emulates a CPU with AMD-V in QEMU: `govmm with-kvm -- govmm run ...` (needs qemu-system-x86)",
			"or use a host with hardware virtualization (vmx or svm in /proc/cpuinfo)",
		},
		Facts: f,
	}
}
