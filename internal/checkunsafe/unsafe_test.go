package checkunsafe

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var allowedDirs = map[string]bool{"kvm": true, "memory": true}

func TestUnsafeOnlyInUnsafeFiles(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		require.NoError(t, err)
		checked++
		rel, _ := filepath.Rel(root, path)
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p != "unsafe" {
				continue
			}
			assert.True(t, strings.HasSuffix(path, "_unsafe.go"), "%s imports unsafe but is not a *_unsafe.go file", rel)
			assert.True(t, allowedDirs[filepath.Dir(rel)], "%s imports unsafe outside kvm/ and memory/", rel)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Greater(t, checked, 20, "the walk must have seen the repository's Go files")
}
