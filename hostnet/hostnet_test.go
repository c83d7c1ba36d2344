package hostnet

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAutoAddresses(t *testing.T) {
	for _, tc := range []struct {
		tap         string
		host, guest string
		wantErr     bool
	}{
		{tap: "govmm0", host: "10.213.0.1/24", guest: "10.213.0.2/24"},
		{tap: "govmm7", host: "10.213.7.1/24", guest: "10.213.7.2/24"},
		{tap: "govmm255", host: "10.213.255.1/24", guest: "10.213.255.2/24"},
		{tap: "govmm256", wantErr: true},
		{tap: "tap0", wantErr: true},
		{tap: "govmm", wantErr: true},
	} {
		t.Run(tc.tap, func(t *testing.T) {
			host, guest, err := autoAddresses(tc.tap)
			if tc.wantErr {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "govmm0 to govmm255")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, netip.MustParsePrefix(tc.host), host)
			assert.Equal(t, netip.MustParsePrefix(tc.guest), guest)
		})
	}
}
