package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteJSONReplacesWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bench.json")
	require.NoError(t, os.WriteFile(path, []byte(`{"old": true}`), 0o644))
	cmd := &cobra.Command{}
	var out bytes.Buffer
	cmd.SetOut(&out)

	require.NoError(t, writeJSON(cmd, path, map[string]int{"rounds": 3}))
	var got map[string]int
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &got))
	assert.Equal(t, map[string]int{"rounds": 3}, got)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left behind")
	assert.Empty(t, out.String(), "a file path writes nothing on stdout")

	require.NoError(t, writeJSON(cmd, "-", map[string]int{"rounds": 1}))
	assert.JSONEq(t, `{"rounds": 1}`, out.String())

	assert.ErrorContains(t, writeJSON(cmd, filepath.Join(dir, "missing", "x.json"), 1), "write ")
}
