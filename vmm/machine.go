package vmm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hashicorp/go-multierror"
	"golang.org/x/sys/unix"

	"github.com/govmm/govmm/boot"
	"github.com/govmm/govmm/devices/bus"
	"github.com/govmm/govmm/devices/virtio/blk"
	virtionet "github.com/govmm/govmm/devices/virtio/net"
	"github.com/govmm/govmm/internal/ratelog"
	"github.com/govmm/govmm/internal/threadsched"
	"github.com/govmm/govmm/kvm"
	"github.com/govmm/govmm/memory"
	"github.com/govmm/govmm/vcpu"
)

// Addresses KVM needs for its own use on Intel hosts (a TSS for real-mode
// emulation and an identity-map page), in the MMIO hole below 4 GiB where
// no RAM and no device lives (api.rst, "KVM_SET_TSS_ADDR",
// "KVM_SET_IDENTITY_MAP_ADDR").
const (
	identityMapAddr = 0xfffbc000
	tssAddr         = 0xfffbd000
)

// RequiredCapabilities are the KVM capabilities govmm cannot run without.
var RequiredCapabilities = []kvm.Capability{
	kvm.CapIRQChip, kvm.CapUserMemory, kvm.CapSetTSSAddr, kvm.CapSetIdentityMapAddr,
	kvm.CapExtCPUID, kvm.CapPIT2, kvm.CapImmediateExit, kvm.CapIOEventFD, kvm.CapIRQFD,
}

// Outcome says how a VM ended.
type Outcome int

const (
	OutcomeCommandExited Outcome = iota // the guest agent reported its command's status
	OutcomePowerOff                     // the guest powered off
	OutcomeReset                        // the guest rebooted (keyboard controller, port 0xcf9, triple fault)
	OutcomePanic                        // the guest kernel panicked
	OutcomeStopped                      // the user stopped it (Ctrl-A x, a signal)
)

func (o Outcome) String() string {
	return [...]string{"command exited", "power off", "reset", "kernel panic", "stopped"}[o]
}

// Result is how a VM ended.
type Result struct {
	Outcome Outcome
	// Status is the guest command's exit status (OutcomeCommandExited).
	Status int
	// BootTime is launch to the guest agent's boot marker; zero if the
	// guest never got there.
	BootTime time.Duration
	// Cause says what ended the VM, for people: which device or vCPU
	// event, or "stopped".
	Cause string
}

// event is something a device reports that ends the VM.
type event struct {
	outcome Outcome
	status  int
	cause   string
}

// Machine is a VM ready to run.
type Machine struct {
	cfg Config
	log *slog.Logger
	// guestLog carries the warnings a guest can cause again and again
	// (reprogramming a BAR or an MSI-X vector into a refused place, in
	// a loop), rate-limited so that it cannot flood the host's log.
	guestLog *ratelog.Logger

	sys  *kvm.System
	vm   *kvm.VM
	mem  *memory.Guest
	cpus []*kvm.VCPU
	runs []*vcpu.Runner
	devs *deviceSet
	// disks are the opened, locked images; virtio the PCI devices.
	disks  []*blk.Disk
	nets   []openedNet
	virtio []*virtioPCI
	// netDevices are the virtio-net backends, for their counters.
	netDevices []*virtionet.Device
	msi        *msiRouter
	ended      chan event // devices report the end here; buffered, never blocks a vCPU

	bootMu   sync.Mutex // guards bootTime
	bootTime time.Duration
}

// New builds the VM: KVM, memory, the kernel loaded, devices, vCPUs.
func New(cfg Config) (_ *Machine, err error) {
	if cfg.Launch.IsZero() {
		cfg.Launch = time.Now()
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Machine{cfg: cfg, log: cfg.Log, guestLog: ratelog.New(cfg.Log), ended: make(chan event, 8)}
	netsTaken := false // openNets closes the passed-on taps from then on
	defer func() {
		if err != nil && !netsTaken {
			for _, n := range cfg.Nets {
				virtionet.CloseTapFDs(n.TapFD)
			}
		}
		if err != nil {
			if cerr := m.Close(); cerr != nil {
				m.log.Debug("teardown after failed start", "err", cerr)
			}
		}
	}()

	// Read and check the user's files before touching KVM, so their
	// mistakes get their own errors.
	// The kernel and initrd are mapped, not read: they are copied into
	// guest RAM once, and a mapping's pages leave govmm's resident memory
	// when it is unmapped, where a read buffer would stay on the heap.
	kernelData, unmapKernel, err := mapFile(cfg.Kernel)
	if err != nil {
		return nil, fmt.Errorf("read kernel: %w", err)
	}
	defer unmapKernel()
	kernel, err := boot.ParseBzImage(kernelData)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", cfg.Kernel, err)
	}
	var vmlinux *boot.Vmlinux
	if cfg.Vmlinux != "" {
		data, unmap, err := mapFile(cfg.Vmlinux)
		if err != nil {
			return nil, fmt.Errorf("read vmlinux: %w", err)
		}
		defer unmap()
		if vmlinux, err = boot.ParseVmlinux(data); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Vmlinux, err)
		}
	}
	var initrd []byte
	if cfg.Initrd != "" {
		var unmapInitrd func()
		if initrd, unmapInitrd, err = mapFile(cfg.Initrd); err != nil {
			return nil, fmt.Errorf("read initrd: %w", err)
		}
		defer unmapInitrd()
	}

	if m.disks, err = openDisks(cfg.Disks); err != nil {
		return nil, err
	}
	netsTaken = true
	if m.nets, err = openNets(cfg.Nets); err != nil {
		return nil, err
	}

	if m.sys, err = kvm.Open(kvm.DevicePath); err != nil {
		return nil, err
	}
	if err := kvm.CheckStockGuests(kvm.DevicePath, kvm.GatherHostFacts(os.DirFS("/"))); err != nil {
		return nil, err
	}
	if err := m.sys.RequireExtensions(RequiredCapabilities...); err != nil {
		return nil, err
	}
	maxVCPUs, err := m.sys.CheckExtension(kvm.CapMaxVCPUs)
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(min(maxVCPUs, boot.MaxCPUs)); err != nil {
		return nil, err
	}
	if m.vm, err = m.sys.CreateVM(); err != nil {
		return nil, err
	}
	if err := m.vm.SetIdentityMapAddr(identityMapAddr); err != nil {
		return nil, err
	}
	if err := m.vm.SetTSSAddr(tssAddr); err != nil {
		return nil, err
	}
	// The in-kernel PIC, IOAPIC and local APICs, and the PIT: timer and
	// interrupt delivery never leave the kernel.
	if err := m.vm.CreateIRQChip(); err != nil {
		return nil, err
	}
	if err := m.vm.CreatePIT2(kvm.PITConfig{Flags: kvm.PITSpeakerDummy}); err != nil {
		return nil, err
	}

	if m.mem, err = memory.New(cfg.MemoryBytes); err != nil {
		return nil, fmt.Errorf("guest memory: %w", err)
	}
	for slot, r := range m.mem.Regions() {
		if err := m.vm.SetUserMemoryRegion(uint32(slot), r.GPA, r.Host, 0); err != nil {
			return nil, fmt.Errorf("guest memory at %#x: %w", r.GPA, err)
		}
	}
	entry, err := boot.Load(m.mem, kernel, boot.Config{Cmdline: cfg.Cmdline, Initrd: initrd, CPUs: cfg.CPUs, Vmlinux: vmlinux})
	if err != nil {
		return nil, fmt.Errorf("load kernel %s: %w", cfg.Kernel, err)
	}

	m.msi = newMSIRouter(m.vm)
	if m.devs, err = m.newDevices(); err != nil {
		return nil, err
	}

	supported, err := m.sys.SupportedCPUID()
	if err != nil {
		return nil, err
	}
	// An error here is an old kernel without the capability: the guest
	// then falls back to the count-down timer.
	tscDeadline, _ := m.sys.CheckExtension(kvm.CapTSCDeadlineTimer)
	for id := 0; id < cfg.CPUs; id++ {
		cpu, err := m.vm.CreateVCPU(id)
		if err != nil {
			return nil, err
		}
		m.cpus = append(m.cpus, cpu)
		if err := vcpu.Configure(cpu, supported, id, cfg.CPUs, tscDeadline > 0); err != nil {
			return nil, err
		}
		m.runs = append(m.runs, vcpu.NewRunner(cpu, m.devs.pio, m.devs.mmio))
	}
	if err := vcpu.SetBootState(m.cpus[0], entry); err != nil {
		return nil, err
	}
	return m, nil
}

// Run runs the guest until it ends or ctx is done, and says how it ended.
func (m *Machine) Run(ctx context.Context) (Result, error) {
	type vcpuEnd struct {
		id   int
		stop vcpu.Stop
		err  error
	}
	ends := make(chan vcpuEnd, len(m.runs))
	for id, r := range m.runs {
		go func() {
			restore := m.vcpuThread(id)
			stop, err := r.Run()
			restore()
			ends <- vcpuEnd{id, stop, err}
		}()
	}
	// Setting the VM up (flags, images, tables, devices) left garbage on
	// the heap, and a heap this small never reaches Go's first collection:
	// it would stay resident for the VM's life. Collect once and hand the
	// free pages back, off the vCPUs' threads, while the guest boots.
	go func() {
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		m.log.Debug("govmm's own memory after setup", "heap_in_use", ms.HeapInuse, "heap_idle", ms.HeapIdle,
			"heap_released", ms.HeapReleased, "stacks", ms.StackInuse, "runtime_sys", ms.Sys)
	}()
	var res Result
	var runErr error
	running := len(m.runs)
	select {
	case <-ctx.Done():
		res.Outcome, res.Cause = OutcomeStopped, "stopped"
	case ev := <-m.ended:
		res.Outcome, res.Status, res.Cause = ev.outcome, ev.status, ev.cause
	case end := <-ends:
		running--
		res.Cause = fmt.Sprintf("vCPU %d: %s", end.id, end.stop)
		switch {
		case end.err != nil:
			runErr = end.err
			res.Cause = fmt.Sprintf("vCPU %d failed", end.id)
		case end.stop == vcpu.StopReset:
			res.Outcome = OutcomeReset
		case end.stop == vcpu.StopTripleFault:
			res.Outcome = OutcomeReset
			// A guest crash (unless it rebooted this way on purpose): where
			// it was is worth showing without -v.
			m.log.Warn("guest triple fault", "vcpu", end.id, "registers", m.runs[end.id].Registers())
		case end.stop == vcpu.StopCrash:
			res.Outcome = OutcomePanic
		default:
			res.Outcome = OutcomePowerOff
		}
	}
	for _, r := range m.runs {
		r.Kick()
	}
	for ; running > 0; running-- {
		if end := <-ends; end.err != nil && runErr == nil {
			runErr = end.err
		}
	}
	// Flush the console before deciding: a panic message may still be in
	// flight when the reset it causes arrives.
	if err := m.devs.flush(); err != nil {
		m.log.Debug("flush console", "err", err)
	}
	m.logCounters()
	if m.devs.panicked() && res.Outcome != OutcomeCommandExited {
		res.Outcome, res.Cause = OutcomePanic, "the kernel panicked"
	}
	m.bootMu.Lock()
	res.BootTime = m.bootTime
	m.bootMu.Unlock()
	return res, runErr
}

// vcpuThread prepares the calling goroutine's thread to run vCPU id: it
// locks the goroutine to it, for Run (which locks it too: locks nest),
// names it "vcpuN" (as top -H and /proc show it), and has it run as
// SCHED_NORMAL whatever policy the VMM's other threads have (package
// threadsched: they must not preempt it when they wake). The function it
// returns puts the thread back as it was, so that it rejoins the Go
// runtime's pool like the others, and unlocks it.
func (m *Machine) vcpuThread(id int) (restore func()) {
	runtime.LockOSThread()
	const comm = "/proc/thread-self/comm"
	name, nameErr := os.ReadFile(comm)
	if nameErr == nil {
		nameErr = os.WriteFile(comm, []byte(fmt.Sprintf("vcpu%d", id)), 0)
	}
	if nameErr != nil {
		m.log.Debug("vCPU thread not named", "vcpu", id, "err", nameErr)
	}
	old, err := threadsched.Get(0)
	if err == nil && old != threadsched.Normal {
		err = threadsched.Set(0, threadsched.Normal)
	}
	if err != nil {
		m.log.Warn("vCPU thread keeps the VMM's scheduling policy", "vcpu", id, "err", err)
		old = threadsched.Normal // nothing to put back
	}
	return func() {
		if old != threadsched.Normal {
			if err := threadsched.Set(0, old); err != nil {
				m.log.Debug("vCPU thread policy not restored", "vcpu", id, "err", err)
			}
		}
		if nameErr == nil {
			_ = os.WriteFile(comm, bytes.TrimSuffix(name, []byte("\n")), 0) // cosmetic
		}
		runtime.UnlockOSThread()
	}
}

// logCounters logs, for debugging, where the guest's exits went (per vCPU
// by kind, and the busiest device ranges) and the network devices'
// counters. Call it once every vCPU has stopped.
func (m *Machine) logCounters() {
	if !m.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	for id, r := range m.runs {
		e := r.Exits()
		m.log.Debug("vCPU exits", "vcpu", id, "io", e.IO, "mmio", e.MMIO, "interrupted", e.Interrupted, "other", e.Other)
	}
	for i, d := range m.netDevices {
		st := d.Stats()
		m.log.Debug("virtio-net counters", "tap", m.nets[i].tap.Name(), "tx_frames", st.TxFrames, "tx_dropped", st.TxDropped,
			"rx_frames", st.RxFrames, "rx_dropped", st.RxDropped, "rx_direct", st.RxDirect, "wakeups", st.Wakeups, "tx_kicks", st.TxKicks, "rx_kicks", st.RxKicks)
	}
	const busiest = 6
	for _, space := range []struct {
		name string
		hits []bus.Hits
	}{{"port I/O", m.devs.pio.Hits()}, {"MMIO", m.devs.mmio.Hits()}} {
		for _, h := range space.hits[:min(len(space.hits), busiest)] {
			if h.Count > 0 {
				m.log.Debug("busiest "+space.name+" ranges", "base", fmt.Sprintf("%#x", h.Base), "size", h.Size, "device", h.Device, "accesses", h.Count)
			}
		}
	}
}

// SendConsoleInput queues bytes for the guest's serial console.
func (m *Machine) SendConsoleInput(b []byte) { m.devs.consoleInput(b) }

// end reports an event that ends the VM and stops every vCPU at once. It
// never blocks: the first event decides, later ones are dropped. Devices
// call it on the vCPU goroutine whose access caused it, so that vCPU
// stops before it re-enters the guest: a guest that resets through the
// keyboard controller goes on to triple-fault a moment later if it is
// still running.
func (m *Machine) end(ev event) {
	select {
	case m.ended <- ev:
	default:
	}
	for _, r := range m.runs {
		r.Kick()
	}
}

// Close releases everything New acquired, vCPUs first, KVM last.
func (m *Machine) Close() error {
	var errs *multierror.Error
	// Virtio devices first: their workers stop before the memory they
	// use goes away.
	for _, p := range m.virtio {
		errs = multierror.Append(errs, p.close())
	}
	for _, d := range m.disks {
		errs = multierror.Append(errs, d.Close())
	}
	for _, n := range m.nets {
		errs = multierror.Append(errs, n.tap.Close())
	}
	if m.devs != nil {
		errs = multierror.Append(errs, m.devs.close())
	}
	for _, c := range m.cpus {
		errs = multierror.Append(errs, c.Close())
	}
	if m.vm != nil {
		errs = multierror.Append(errs, m.vm.Close())
	}
	if m.mem != nil {
		errs = multierror.Append(errs, m.mem.Close())
	}
	if m.sys != nil {
		errs = multierror.Append(errs, m.sys.Close())
	}
	return errs.ErrorOrNil()
}

// mapFile maps a file read-only. An empty file maps to an empty slice.
func mapFile(path string) (data []byte, unmap func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Size() == 0 {
		return []byte{}, func() {}, nil
	}
	data, err = unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_PRIVATE)
	if err != nil {
		return nil, nil, fmt.Errorf("map %s: %w", path, err)
	}
	return data, func() {
		if err := unix.Munmap(data); err != nil {
			slog.Warn("unmap file", "path", path, "err", err)
		}
	}, nil
}
