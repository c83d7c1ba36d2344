package guest

import (
	"net"
	"net/netip"
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

func TestNetRoundTrip(t *testing.T) {
	mac, err := net.ParseMAC("02:00:00:aa:bb:cc")
	require.NoError(t, err)
	for _, n := range []Net{
		{MAC: mac, Addr: netip.MustParsePrefix("10.213.0.2/24"), Gateway: netip.MustParseAddr("10.213.0.1")},
		{MAC: mac, Addr: netip.MustParsePrefix("fd00::2/64")},
	} {
		word, err := EncodeNet(n)
		require.NoError(t, err)
		cfg, err := ParseCmdline("console=ttyS0 " + word + " quiet")
		require.NoError(t, err)
		require.Len(t, cfg.Nets, 1)
		assert.Equal(t, n, cfg.Nets[0])
	}
	_, err = EncodeNet(Net{Addr: netip.MustParsePrefix("10.0.0.2/24")})
	assert.Error(t, err, "no MAC")
	for _, bad := range []string{
		"govmm.net=02:00:00:aa:bb:cc",
		"govmm.net=zz:00:00:aa:bb:cc,10.0.0.2/24,",
		"govmm.net=02:00:00:aa:bb:cc,10.0.0.2,",
		"govmm.net=02:00:00:aa:bb:cc,10.0.0.2/24,gateway",
	} {
		_, err := ParseCmdline(bad)
		assert.Error(t, err, bad)
	}
}

func TestContainerParam(t *testing.T) {
	word, err := EncodeContainer(ContainerDiskSerial)
	require.NoError(t, err)
	got, err := ParseCmdline("quiet " + word)
	require.NoError(t, err)
	assert.Equal(t, ContainerDiskSerial, got.ContainerDisk)

	got, err = ParseCmdline("quiet")
	require.NoError(t, err)
	assert.Empty(t, got.ContainerDisk, "no container unless asked")

	_, err = ParseCmdline(ContainerParam + "=")
	require.ErrorContains(t, err, "empty disk serial")
	for _, bad := range []string{"", "a b", "a,b", "a=b"} {
		_, err := EncodeContainer(bad)
		assert.Error(t, err, "EncodeContainer(%q)", bad)
	}
}
