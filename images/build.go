package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/govmm/govmm/container"
	"github.com/govmm/govmm/guest"
)

// GuestModules are the modules the guest initramfs carries and the agent
// loads at start: Debian builds virtio-pci, virtio-blk, virtio-net and ext4
// as modules. Their dependencies are added by Resolve.
var GuestModules = []string{"virtio_pci", "virtio_blk", "virtio_net", "ext4", "crc32c_generic"}

// OuterModules are what the nested harness's outer guest needs: KVM for the
// emulated AMD CPU, and virtio-pci plus 9p to see the host's file system,
// overlayfs to make it writable in guest RAM, and tun for the taps of
// govmm's network tests.
var OuterModules = []string{"kvm_amd", "virtio_pci", "9pnet_virtio", "9p", "overlay", "tun"}

// Builder builds images into CacheDir from the govmm source tree at
// SourceDir (the guest agent and the outer init are built from source).
type Builder struct {
	CacheDir  string
	SourceDir string
	Progress  io.Writer
}

func (b *Builder) logf(format string, args ...any) {
	fmt.Fprintf(b.Progress, "images: "+format+"\n", args...)
}

// BuildAll builds every default image and records them in the manifest.
func (b *Builder) BuildAll(ctx context.Context) (*Manifest, error) {
	start := time.Now()
	generic, err := FetchKernel(ctx, b.CacheDir, GenericKernel, b.Progress)
	if err != nil {
		return nil, err
	}
	cloud, err := FetchKernel(ctx, b.CacheDir, CloudKernel, b.Progress)
	if err != nil {
		return nil, err
	}
	guestInitramfs, err := b.GuestInitramfs(ctx, generic, cloud)
	if err != nil {
		return nil, err
	}
	outerInitramfs, err := b.OuterInitramfs(ctx, generic)
	if err != nil {
		return nil, err
	}
	// Containers in the guest need runc; without it on this host, everything
	// else still works and `govmm run --container` says what to install.
	containerInitramfs, err := b.ContainerInitramfs(ctx, guestInitramfs)
	if errors.Is(err, container.ErrNoRunc) {
		b.logf("container initramfs: skipped: %v; govmm run --container will not work", err)
	} else if err != nil {
		return nil, err
	}
	probeRootfs, probeImage, err := b.ProbeRootfs(ctx)
	if err != nil {
		return nil, err
	}
	genericVmlinux, err := b.ExtractVmlinux(ctx, generic)
	if err != nil {
		return nil, err
	}
	cloudVmlinux, err := b.ExtractVmlinux(ctx, cloud)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Kernel:             generic.BzImage,
		KernelVmlinux:      genericVmlinux,
		CloudKernel:        cloud.BzImage,
		CloudVmlinux:       cloudVmlinux,
		Initramfs:          guestInitramfs,
		ContainerInitramfs: containerInitramfs,
		ProbeRootfs:        probeRootfs,
		ProbeRootfsImage:   probeImage,
		OuterKernel:        generic.BzImage,
		OuterInitramfs:     outerInitramfs,
	}
	if err := m.write(b.CacheDir); err != nil {
		return nil, err
	}
	b.logf("all images ready in %s (%.1fs); manifest %s", b.CacheDir, time.Since(start).Seconds(), ManifestPath(b.CacheDir))
	return m, nil
}

// GuestInitramfs builds the guest initramfs: u-root's core commands with
// govmm's agent as uinit, plus the guest modules of each kernel in kernels
// (a module loads only into the kernel it was built for; the agent picks
// the set of the kernel that booted).
func (b *Builder) GuestInitramfs(ctx context.Context, kernels ...*Kernel) (string, error) {
	const agentPkg = "github.com/govmm/govmm/guest/agent"
	// iobench measures disks and networks from inside the guest, for the
	// benchmarks.
	const iobenchPkg = "github.com/govmm/govmm/guest/iobench"
	// The isolation probe runs directly in the VM too (govmm isolation).
	const probePkg = "github.com/govmm/govmm/isolation/probe"
	type kernelModules struct {
		k    *Kernel
		mods []Module
	}
	var all []kernelModules
	h := sha256.New()
	for _, k := range kernels {
		mods, err := b.resolveModules(k, GuestModules)
		if err != nil {
			return "", fmt.Errorf("guest initramfs: %w", err)
		}
		all = append(all, kernelModules{k, mods})
		key, err := b.inputKey(ctx, k, mods, agentPkg, iobenchPkg, probePkg)
		if err != nil {
			return "", fmt.Errorf("guest initramfs: %w", err)
		}
		h.Write([]byte(key))
	}
	key := hex.EncodeToString(h.Sum(nil))
	out := filepath.Join(b.CacheDir, "initramfs", "guest-"+key[:16]+".cpio")
	if _, err := os.Stat(out); err == nil {
		b.logf("guest initramfs: cached (%s)", filepath.Base(out))
		return out, nil
	}
	tmpDir, err := os.MkdirTemp(b.CacheDir, ".build-")
	if err != nil {
		return "", fmt.Errorf("guest initramfs: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	args := []string{"tool", "u-root", "-o", filepath.Join(tmpDir, "initramfs.cpio"), "-uinitcmd=agent"}
	nmods := 0
	for _, km := range all {
		release := km.k.Package.Release()
		var order strings.Builder
		for _, m := range km.mods {
			dst := "lib/modules/" + release + "/govmm/" + m.Name + ".ko"
			args = append(args, "-files", m.Path+":"+dst)
			order.WriteString("/" + dst + "\n")
		}
		nmods += len(km.mods)
		orderFile := filepath.Join(tmpDir, "load-order-"+release)
		if err := os.WriteFile(orderFile, []byte(order.String()), 0o644); err != nil {
			return "", fmt.Errorf("guest initramfs: %w", err)
		}
		args = append(args, "-files", orderFile+":"+strings.TrimPrefix(guest.ModuleOrderFile(release), "/"))
	}
	args = append(args, "github.com/u-root/u-root/cmds/core/*", agentPkg, iobenchPkg, probePkg)
	b.logf("building guest initramfs with u-root (u-root core commands, govmm agent, iobench and probe, %d modules for %d kernels); the first build takes about a minute", nmods, len(all))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.SourceDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("guest initramfs: go %s: %w\n%s", strings.Join(args[:4], " "), err, tail(out, 20))
	}
	return out, b.publish(filepath.Join(tmpDir, "initramfs.cpio"), out)
}

// OuterInitramfs builds the nested harness's outer-guest initramfs: the
// static outer init as /init, and the modules it loads.
func (b *Builder) OuterInitramfs(ctx context.Context, k *Kernel) (string, error) {
	mods, err := b.resolveModules(k, OuterModules)
	if err != nil {
		return "", fmt.Errorf("outer initramfs: %w", err)
	}
	const initPkg = "github.com/govmm/govmm/harness/outerinit"
	key, err := b.inputKey(ctx, k, mods, initPkg)
	if err != nil {
		return "", fmt.Errorf("outer initramfs: %w", err)
	}
	out := filepath.Join(b.CacheDir, "initramfs", "outer-"+key[:16]+".cpio")
	if _, err := os.Stat(out); err == nil {
		b.logf("outer initramfs: cached (%s)", filepath.Base(out))
		return out, nil
	}
	tmpDir, err := os.MkdirTemp(b.CacheDir, ".build-")
	if err != nil {
		return "", fmt.Errorf("outer initramfs: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	b.logf("building outer initramfs (outer init, %d modules)", len(mods))
	initBin := filepath.Join(tmpDir, "init")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", initBin, initPkg)
	cmd.Dir = b.SourceDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("outer initramfs: build %s: %w\n%s", initPkg, err, tail(out, 20))
	}
	files := []cpioFile{{name: "init", src: initBin, mode: 0o755}}
	var order strings.Builder
	for _, m := range mods {
		name := "modules/" + m.Name + ".ko"
		files = append(files, cpioFile{name: name, src: m.Path, mode: 0o644})
		order.WriteString("/" + name + "\n")
	}
	files = append(files, cpioFile{name: "modules/order", data: []byte(order.String()), mode: 0o644})
	tmpOut := filepath.Join(tmpDir, "outer.cpio")
	if err := writeCPIO(tmpOut, files); err != nil {
		return "", fmt.Errorf("outer initramfs: %w", err)
	}
	return out, b.publish(tmpOut, out)
}

func (b *Builder) resolveModules(k *Kernel, names []string) ([]Module, error) {
	idx, err := IndexModules(k.ModulesDir)
	if err != nil {
		return nil, err
	}
	return idx.Resolve(names...)
}

// publish moves a finished build into place atomically, so an interrupted
// build never leaves a half-written image under the name of a good one.
func (b *Builder) publish(tmp, final string) error {
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("publish %s: %w", final, err)
	}
	if fi, err := os.Stat(final); err == nil {
		b.logf("built %s (%.1f MiB)", final, float64(fi.Size())/(1<<20))
	}
	// Drop the builds this one supersedes ("guest-<old key>.cpio").
	kind, _, _ := strings.Cut(filepath.Base(final), "-")
	old, _ := filepath.Glob(filepath.Join(filepath.Dir(final), kind+"-*.cpio"))
	for _, o := range old {
		if o != final {
			os.Remove(o)
		}
	}
	return nil
}

// inputKey hashes everything a built image depends on: the kernel package,
// the module files, the Go toolchain, go.mod/go.sum (which pin u-root and
// every other dependency) and the source of every package of this module
// that pkg imports, directly or not.
func (b *Builder) inputKey(ctx context.Context, k *Kernel, mods []Module, pkgs ...string) (string, error) {
	h := sha256.New()
	if k != nil {
		fmt.Fprintf(h, "kernel %s %s\n", k.Package, k.Package.SHA256)
	}
	for _, m := range mods {
		fmt.Fprintf(h, "module %s\n", m.Name)
	}
	args := append([]string{"list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{.Dir}}{{range .GoFiles}} {{.}}{{end}}{{end}}{{end}}`}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.SourceDir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=amd64")
	listing, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			return "", fmt.Errorf("go list %s: %w\n%s", pkgs, err, tail(exitErr.Stderr, 10))
		}
		return "", fmt.Errorf("go list %s (is Go installed?): %w", pkgs, err)
	}
	files := []string{filepath.Join(b.SourceDir, "go.mod"), filepath.Join(b.SourceDir, "go.sum")}
	for _, line := range strings.Split(strings.TrimSpace(string(listing)), "\n") {
		fields := strings.Fields(line)
		for _, f := range fields[1:] {
			files = append(files, filepath.Join(fields[0], f))
		}
	}
	sort.Strings(files)
	goVersion, err := exec.CommandContext(ctx, "go", "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %w", err)
	}
	fmt.Fprintf(h, "go %s", goVersion)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("hash inputs: %w", err)
		}
		rel, _ := filepath.Rel(b.SourceDir, f)
		fmt.Fprintf(h, "file %s %d\n", rel, len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type cpioFile struct {
	name    string
	src     string // file to copy, or
	data    []byte // contents, or
	symlink string // the target of a symbolic link
	mode    uint64
}

// writeCPIO writes a newc archive of files, with the directories they need.
func writeCPIO(path string, files []cpioFile) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := cpio.Newc.Writer(f)
	var recs []cpio.Record
	for _, cf := range files {
		if cf.symlink != "" {
			recs = append(recs, cpio.Symlink(cf.name, cf.symlink))
			continue
		}
		data := cf.data
		if cf.src != "" {
			if data, err = os.ReadFile(cf.src); err != nil {
				f.Close()
				return err
			}
		}
		recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: cf.name, Mode: cpio.S_IFREG | cf.mode}))
	}
	if err := cpio.WriteRecordsAndDirs(w, recs); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := cpio.WriteTrailer(w); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
