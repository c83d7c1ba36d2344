package console

import (
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEscapeFilter(t *testing.T) {
	for _, tc := range []struct {
		name     string
		chunks   []string
		want     string
		wantQuit bool
	}{
		{name: "plain", chunks: []string{"ls -l\r"}, want: "ls -l\r"},
		{name: "quit", chunks: []string{"ab\x01xcd"}, want: "ab", wantQuit: true},
		{name: "quit upper case", chunks: []string{"\x01X"}, want: "", wantQuit: true},
		{name: "quit split across reads", chunks: []string{"ab\x01", "x"}, want: "ab", wantQuit: true},
		{name: "literal ctrl-a", chunks: []string{"\x01\x01a"}, want: "\x01a"},
		{name: "not an escape", chunks: []string{"\x01b"}, want: "\x01b"},
		{name: "ctrl-c passes", chunks: []string{"\x03"}, want: "\x03"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f EscapeFilter
			var got []byte
			quit := false
			for _, c := range tc.chunks {
				out, q := f.Filter([]byte(c))
				got = append(got, out...)
				quit = quit || q
			}
			assert.Equal(t, tc.want, string(got))
			assert.Equal(t, tc.wantQuit, quit)
		})
	}
}

func TestAttachNonTerminalForwardsUntilEOF(t *testing.T) {
	r, w, err := os.Pipe()
	require.NoError(t, err)
	var mu sync.Mutex
	var got []byte
	s, err := Attach(r, func(b []byte) { mu.Lock(); got = append(got, b...); mu.Unlock() }, func() { t.Error("quit on a pipe") })
	require.NoError(t, err)
	_, err = w.Write([]byte("echo hi\n\x01x"))
	require.NoError(t, err)
	require.NoError(t, w.Close())
	assert.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return string(got) == "echo hi\n"
	}, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, s.Restore())
	require.NoError(t, s.Restore(), "Restore twice is fine")
}

func TestAttachDevNull(t *testing.T) {
	null, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer null.Close()
	s, err := Attach(null, func([]byte) { t.Error("no input expected") }, func() {})
	require.NoError(t, err)
	require.NoError(t, s.Restore())
}
