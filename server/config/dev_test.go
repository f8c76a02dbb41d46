package config_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hookstream/hookstream/server/config"
)

// TestWithDev checks that dev credentials fill only the routes that have none.
func TestWithDev(t *testing.T) {
	t.Parallel()
	d := config.DevCredentials{MoveAPISecret: "whsec_ZGV2", MovementToken: "dev-movement", MVMNTToken: "dev-mvmnt", ListenerID: "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a", ListenerToken: "dev-listener"}
	tests := []struct {
		name      string
		edit      func(*config.Config)
		wantMVMNT []string
	}{
		{name: "none_configured", edit: func(*config.Config) {}, wantMVMNT: []string{"dev-mvmnt"}},
		{name: "configured_wins", edit: func(c *config.Config) { c.Providers.MVMNT.Tokens = []string{"mine"} }, wantMVMNT: []string{"mine"}},
		{name: "insecure_stays_insecure", edit: func(c *config.Config) { c.Providers.MVMNT.Insecure = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := config.Default()
			tt.edit(&c)
			got, err := config.WithDev(c, d)
			if err != nil {
				t.Fatalf("WithDev: got error %v, want none", err)
			}
			if diff := cmp.Diff(tt.wantMVMNT, got.Providers.MVMNT.Tokens); diff != "" {
				t.Errorf("mvmnt tokens (-want +got):\n%s", diff)
			}
			if got := got.Listeners[d.ListenerID].Tokens; len(got) != 1 || got[0] != d.ListenerToken {
				t.Errorf("listener tokens: got %v, want [%s]", got, d.ListenerToken)
			}
		})
	}
	if _, err := config.DevListen(config.Default()); err != nil {
		t.Errorf("DevListen(defaults): got error %v, want none (http.addr becomes %s)", err, config.DevHTTPAddr)
	}
	c := config.Default()
	c.HTTP.Addr = "0.0.0.0:8080"
	if _, err := config.DevListen(c); !errors.Is(err, config.ErrInvalid) {
		t.Errorf("DevListen(0.0.0.0:8080): got %v, want ErrInvalid", err)
	}
}
