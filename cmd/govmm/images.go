package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/govmm/govmm/images"
)

func newImagesCommand() *cobra.Command {
	var cacheDir, sourceDir string
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Build the default guest images (kernel, initramfs) into the cache",
		Long: `Build the default guest images into the cache directory:

  - Debian bookworm's stock kernels (linux-image-amd64 and its cloud flavour)
    at a pinned version, downloaded with apt-get and checked against a
    pinned sha256;
  - the guest initramfs: u-root's core commands with govmm's guest agent;
  - the nested test harness's outer-guest initramfs.

Each image is keyed by the content of its inputs: a second run with nothing
changed finishes in seconds and changes nothing. The guest agent is built
from source, so run this from a govmm checkout (or pass --source).

On a non-Debian host, skip this and pass your own kernel to 'govmm run
--kernel'.`,
		Example: `  govmm images
  GOVMM_CACHE=/var/cache/govmm govmm images`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := stopOnSignal(cmd.Context())
			defer stop()
			if cacheDir == "" {
				d, err := images.DefaultCacheDir()
				if err != nil {
					return err
				}
				cacheDir = d
			}
			if sourceDir == "" {
				d, err := findSourceDir()
				if err != nil {
					return err
				}
				sourceDir = d
			}
			if err := os.MkdirAll(cacheDir, 0o755); err != nil {
				return fmt.Errorf("create cache directory: %w", err)
			}
			b := &images.Builder{CacheDir: cacheDir, SourceDir: sourceDir, Progress: cmd.ErrOrStderr()}
			_, err := b.BuildAll(ctx)
			return err
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache", "", "cache directory (default $GOVMM_CACHE, else ~/.cache/govmm)")
	cmd.Flags().StringVar(&sourceDir, "source", "", "govmm source tree to build the guest agent from (default: the checkout containing the current directory)")
	return cmd
}

// findSourceDir finds the govmm checkout that contains the working directory.
func findSourceDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(mod), "module github.com/govmm/govmm\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", usageError{errors.New("not inside a govmm source checkout: run from one, or pass --source DIR")}
		}
		dir = parent
	}
}
