package guest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommandRoundTrip(t *testing.T) {
	for _, argv := range [][]string{
		{"true"},
		{"sh", "-c", "exit 3"},
		{"echo", "quotes ' \" and spaces", "--", "x=y", "ünïcode", ""},
	} {
		word, err := EncodeCommand(argv)
		require.NoError(t, err)
		assert.NotContains(t, word, " ", "the word must survive the kernel's whitespace split")
		assert.NotContains(t, word, "\"")
		got, err := ParseCmdline("console=ttyS0 quiet " + word + " panic=-1")
		require.NoError(t, err)
		assert.Equal(t, argv, got.Command, "ParseCmdline(EncodeCommand(%q))", argv)
	}
}

func TestParseCmdline(t *testing.T) {
	for _, tc := range []struct {
		name, cmdline string
		want          []string
		wantErr       string
	}{
		{name: "no command", cmdline: "console=ttyS0 quiet", want: nil},
		{name: "empty", cmdline: "", want: nil},
		{name: "not base64", cmdline: "govmm.cmd=!!!", wantErr: "parse govmm.cmd"},
		{name: "not json", cmdline: "govmm.cmd=bm90IGpzb24", wantErr: "parse govmm.cmd"},
		{name: "empty array", cmdline: "govmm.cmd=W10", wantErr: "empty command"},
		{name: "empty program", cmdline: "govmm.cmd=WyIiXQ", wantErr: "empty command"},
		{name: "json object", cmdline: "govmm.cmd=e30", wantErr: "parse govmm.cmd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseCmdline(tc.cmdline)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got.Command)
		})
	}
	_, err := EncodeCommand(nil)
	assert.Error(t, err)
}

func FuzzParseCmdline(f *testing.F) {
	f.Add("console=ttyS0 govmm.cmd=WyJ0cnVlIl0")
	f.Add("govmm.cmd=")
	f.Fuzz(func(t *testing.T, cmdline string) {
		c, err := ParseCmdline(cmdline)
		if err == nil && c.Command != nil {
			assert.NotEmpty(t, c.Command[0])
		}
	})
}
