package images

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Module is one loadable kernel module file.
type Module struct {
	Name    string   // canonical module name: '-' folded to '_'
	Path    string   // path of the .ko file
	Depends []string // canonical names of the modules it needs loaded first
}

// ModuleIndex maps module names to module files of one kernel's
// lib/modules/<release> tree. Debian's kernel packages ship no modules.dep,
// so dependencies are read from each module's .modinfo ELF section, the same
// place depmod reads them from.
type ModuleIndex struct {
	byName  map[string]*Module
	builtin map[string]bool // built into the kernel image (modules.builtin)
}

// CanonicalModuleName folds the spellings the kernel treats as equal
// ("kvm-amd" and "kvm_amd").
func CanonicalModuleName(name string) string {
	return strings.ReplaceAll(strings.TrimSuffix(name, ".ko"), "-", "_")
}

// IndexModules reads every .ko file under dir (a lib/modules/<release> tree).
// Dependencies are read lazily, in Resolve, so indexing thousands of files
// only walks the directory.
func IndexModules(dir string) (*ModuleIndex, error) {
	idx := &ModuleIndex{byName: map[string]*Module{}, builtin: map[string]bool{}}
	// modules.builtin names the modules compiled into the kernel, one
	// path per line (e.g. kernel/fs/ext4/ext4.ko): asking for one of
	// those is fine and loads nothing.
	if builtin, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(builtin)) {
			idx.builtin[CanonicalModuleName(filepath.Base(line))] = true
		}
	}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".ko") {
			return nil
		}
		name := CanonicalModuleName(filepath.Base(path))
		idx.byName[name] = &Module{Name: name, Path: path}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("index modules in %s: %w", dir, err)
	}
	if len(idx.byName) == 0 {
		return nil, fmt.Errorf("index modules in %s: no .ko files (compressed modules are not supported)", dir)
	}
	return idx, nil
}

// Resolve returns the named modules and everything they depend on, each once,
// ordered so that every module comes after its dependencies: the order in
// which to load them.
func (idx *ModuleIndex) Resolve(names ...string) ([]Module, error) {
	var order []Module
	state := map[string]int{} // 0 unvisited, 1 in progress, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle: %s", strings.Join(append(chain, name), " -> "))
		case 2:
			return nil
		}
		m, ok := idx.byName[name]
		if !ok && idx.builtin[name] {
			state[name] = 2
			return nil
		}
		if !ok {
			if len(chain) == 0 {
				return fmt.Errorf("module %s: not found", name)
			}
			return fmt.Errorf("module %s (needed by %s): not found", name, chain[len(chain)-1])
		}
		if m.Depends == nil {
			deps, err := readModuleDepends(m.Path)
			if err != nil {
				return err
			}
			m.Depends = deps
		}
		state[name] = 1
		for _, dep := range m.Depends {
			if err := visit(dep, append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, *m)
		return nil
	}
	for _, n := range names {
		if err := visit(CanonicalModuleName(n), nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModuleDepends reads the "depends=" entry of a module's .modinfo section:
// NUL-separated key=value strings.
func readModuleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, fmt.Errorf("read module %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read module %s .modinfo: %w", path, err)
	}
	deps := []string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte("depends="))
		if !ok || len(v) == 0 {
			continue
		}
		for _, d := range strings.Split(string(v), ",") {
			deps = append(deps, CanonicalModuleName(d))
		}
	}
	sort.Strings(deps)
	return deps, nil
}
