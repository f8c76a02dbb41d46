package config

import "fmt"

// DevHTTPAddr is http.addr under `hookstream serve --dev` when http.addr is left at its default
// (":8080", every interface): dev mode listens on loopback only, so the default becomes its
// loopback twin. An explicit ":8080" is taken as the default too.
const DevHTTPAddr = "127.0.0.1:8080"

// DevCredentials are the credentials `hookstream serve --dev` generates: one per provider and
// one listener. They are kept in the data directory, so that a restart reuses them.
type DevCredentials struct {
	// MoveAPISecret is a Svix endpoint secret, "whsec_<base64>".
	MoveAPISecret string `koanf:"moveapi_secret"`
	// MovementToken is a Movement shared secret.
	MovementToken string `koanf:"movement_token"`
	// MVMNTToken is an MVMNT x-api-key token.
	MVMNTToken string `koanf:"mvmnt_token"`
	// ListenerID is the UUID of the listener.
	ListenerID string `koanf:"listener_id"`
	// ListenerToken is the listener's Bearer token.
	ListenerToken string `koanf:"listener_token"`
}

// DevListen returns c as `hookstream serve --dev` listens: http.addr at its default becomes
// DevHTTPAddr. It returns an error wrapping ErrInvalid when http.addr, grpc.addr or api.addr
// is beyond loopback: dev mode prints its credentials and leaves the internal API open.
func DevListen(c Config) (Config, error) {
	if c.HTTP.Addr == Default().HTTP.Addr {
		c.HTTP.Addr = DevHTTPAddr
	}
	for _, l := range []struct{ key, addr string }{{"http.addr", c.HTTP.Addr}, {"grpc.addr", c.GRPC.Addr}, {"api.addr", c.API.Addr}} {
		if !Loopback(l.addr) {
			return Config{}, fmt.Errorf("%w: %s %q is beyond loopback: serve --dev listens on loopback only", ErrInvalid, l.key, l.addr)
		}
	}
	return c, nil
}

// WithDev returns c with the credentials of d for the routes that have none: a provider with
// no credentials (and not insecure) gets d's, and d's listener is added when no listener is
// configured. Configured credentials win. It returns the errors of Load's checks.
func WithDev(c Config, d DevCredentials) (Config, error) {
	p := &c.Providers
	if len(p.MoveAPI.Secrets) == 0 && !p.MoveAPI.Insecure {
		p.MoveAPI.Secrets = []string{d.MoveAPISecret}
	}
	if len(p.Movement.Tokens) == 0 && !p.Movement.Insecure {
		p.Movement.Tokens = []string{d.MovementToken}
	}
	if len(p.MVMNT.Tokens) == 0 && !p.MVMNT.Insecure {
		p.MVMNT.Tokens = []string{d.MVMNTToken}
	}
	if len(c.Listeners) == 0 {
		c.Listeners = withListenerDefaults(map[string]Listener{d.ListenerID: {Tokens: []string{d.ListenerToken}}})
	}
	return c, c.check()
}
