package vmm

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestConsoleWatcher(t *testing.T) {
	for _, tc := range []struct {
		name      string
		writes    []string
		wantEnds  []Outcome
		wantPanic bool
	}{
		{name: "ordinary output", writes: []string{"Linux version 6.1\n", "Run /init as init process\n"}},
		{name: "power off", writes: []string{"[   9.1] reboot: Power down\n"}, wantEnds: []Outcome{OutcomePowerOff}},
		{name: "halt (power off without ACPI)", writes: []string{"[   9.4] reboot: System halted\n"}, wantEnds: []Outcome{OutcomePowerOff}},
		{name: "power off split", writes: []string{"[   9.1] reboot: Pow", "er down\n"}, wantEnds: []Outcome{OutcomePowerOff}},
		{
			name:      "panic, then its end",
			writes:    []string{"Kernel panic - not syncing: VFS: Unable to mount root fs\n", "Call Trace:\n", "---[ end Kernel panic - not syncing: VFS ]---\n"},
			wantEnds:  []Outcome{OutcomePanic},
			wantPanic: true,
		},
		{name: "panic start only", writes: []string{"Kernel pan", "ic - not syncing: oops\n"}, wantPanic: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			var ends []Outcome
			c := &consoleWatcher{w: &out, onEnd: func(o Outcome, _ string) { ends = append(ends, o) }}
			var all string
			for _, w := range tc.writes {
				n, err := c.Write([]byte(w))
				assert.NoError(t, err)
				assert.Equal(t, len(w), n)
				all += w
			}
			assert.Equal(t, all, out.String(), "output passes through unchanged")
			assert.Equal(t, tc.wantEnds, ends)
			assert.Equal(t, tc.wantPanic, c.panicked.Load())
		})
	}
}
