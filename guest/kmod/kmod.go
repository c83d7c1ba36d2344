// Package kmod loads kernel modules from inside a guest, in the order an
// image build wrote down (each module after its dependencies), with no
// modprobe, depmod or modules.dep needed in the initramfs.
package kmod

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Load loads one module file. A module that is already loaded is fine.
func Load(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

// LoadOrdered loads every module listed in orderFile (one path per line,
// blank lines ignored), in order. onError decides what a failure means: it
// gets the error and returns it to stop, or nil to go on with the next one.
func LoadOrdered(orderFile string, onError func(error) error) error {
	f, err := os.Open(orderFile)
	if err != nil {
		return fmt.Errorf("load modules: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		path := strings.TrimSpace(sc.Text())
		if path == "" {
			continue
		}
		if err := Load(path); err != nil {
			if err := onError(err); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("load modules: read %s: %w", orderFile, err)
	}
	return nil
}
