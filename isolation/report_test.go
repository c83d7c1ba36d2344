package isolation

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func sampleReport(bootID string) Report {
	return Report{
		Kernel:    Kernel{Release: "6.1.0-28-amd64", Version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)", BootID: bootID},
		Hostname:  "host",
		Processes: Processes{PID: 42, PID1Cmdline: "/sbin/init", VisibleCount: 120},
		Privileged: Privileged{
			LoadModule: Check{Allowed: false, Result: "EPERM: operation not permitted"},
		},
	}
}

func TestFormatAndParseReport(t *testing.T) {
	want := sampleReport("bb86857f-65e3-401b-894d-2e3d25e4a8e0")
	line, err := FormatReport(want)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(line), ReportPrefix))
	require.True(t, strings.HasSuffix(string(line), "\n"))
	assert.Equal(t, 1, strings.Count(string(line), "\n"), "the report must be one line")

	got, err := ParseReport(line)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestParseReportAmongConsoleNoise(t *testing.T) {
	older, err := FormatReport(sampleReport("older"))
	require.NoError(t, err)
	newer, err := FormatReport(sampleReport("newer"))
	require.NoError(t, err)
	crlf := strings.ReplaceAll(string(newer), "\n", "\r\n")

	output := "[    0.000000] Linux version 6.1.0\r\n" +
		StartedLine + "\r\n" +
		string(older) +
		"some text mentioning " + ReportPrefix + "{not at line start}\n" +
		crlf +
		"[    1.234567] reboot: Power down\r\n"
	got, err := ParseReport([]byte(output))
	require.NoError(t, err)
	assert.Equal(t, "newer", got.Kernel.BootID, "the last report line wins")
}

func TestParseReportWithoutTrailingNewline(t *testing.T) {
	line, err := FormatReport(sampleReport("id"))
	require.NoError(t, err)
	got, err := ParseReport([]byte("noise\n" + strings.TrimSuffix(string(line), "\n")))
	require.NoError(t, err)
	assert.Equal(t, "id", got.Kernel.BootID)
}

func TestParseReportErrors(t *testing.T) {
	tests := []struct {
		name   string
		output string
		want   []string
	}{
		{
			name:   "no marker",
			output: StartedLine + "\nKernel panic - not syncing: Attempted to kill init!\n",
			want:   []string{ReportPrefix, "Kernel panic"},
		},
		{
			name:   "empty output",
			output: "",
			want:   []string{ReportPrefix, "0 bytes"},
		},
		{
			name:   "marker not at line start",
			output: "x " + ReportPrefix + "{}\n",
			want:   []string{ReportPrefix},
		},
		{
			name:   "bad JSON",
			output: StartedLine + "\n" + ReportPrefix + `{"kernel": {"release": 5` + "\n",
			want:   []string{"decode probe report", "release", "unexpected end of JSON input"},
		},
		{
			name:   "truncated JSON",
			output: ReportPrefix + `{"kernel":{"rel`,
			want:   []string{"decode probe report"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseReport([]byte(tt.output))
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseReportErrorShowsOnlyTheTail(t *testing.T) {
	output := strings.Repeat("early noise ", 1000) + "the last words"
	_, err := ParseReport([]byte(output))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the last words")
	assert.Less(t, len(err.Error()), 600)
}
