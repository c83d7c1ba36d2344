package harness

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecide(t *testing.T) {
	usable := func() error { return nil }
	unusable := func() error { return errors.New("open /dev/kvm: no such file or directory\nmore detail") }
	for _, tc := range []struct {
		env      string
		probe    func() error
		want     Mode
		wantErr  string
		inReason string
	}{
		{env: "", probe: usable, want: Direct},
		{env: "auto", probe: usable, want: Direct},
		{env: "", probe: unusable, want: Nested, inReason: "no usable /dev/kvm here: open /dev/kvm: no such file"},
		{env: "direct", probe: usable, want: Direct},
		{env: "direct", probe: unusable, wantErr: "GOVMM_HARNESS=direct, but KVM is not usable here"},
		{env: "nested", probe: usable, want: Nested},
		{env: "skip", probe: unusable, want: Skip},
		{env: "sometimes", probe: usable, wantErr: `want auto, direct, nested or skip`},
	} {
		plan, err := decide(tc.env, tc.probe)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, "decide(%q)", tc.env)
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, tc.want, plan.Mode, "decide(%q)", tc.env)
		assert.Contains(t, plan.Reason, tc.inReason)
		assert.NotContains(t, plan.Reason, "\n")
	}
}
