package daemon

import (
	"fmt"
	"log/slog"

	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/tlsconf"
)

// Check reports whether New would accept cfg, without opening the event log or binding any
// address: it reads the principals' token files and variables (through getenv), the JWKS
// file, the TLS files and the providers' secrets as New does. Its errors wrap config.ErrInvalid, name the key at
// fault, and hold no secret.
func Check(cfg config.Config, getenv func(string) string) error {
	if _, err := auth.FromConfig(cfg.Auth, getenv); err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	discard := slog.New(slog.DiscardHandler)
	listeners := []struct {
		key   string
		files tlsconf.Files
	}{
		{"http.tls", tlsconf.Files{CertFile: cfg.HTTP.TLS.CertFile, KeyFile: cfg.HTTP.TLS.KeyFile}},
		{"grpc.tls", internalTLS(cfg.GRPC.TLS, cfg.Auth)},
		{"api.tls", internalTLS(cfg.API.TLS, cfg.Auth)},
	}
	for _, l := range listeners {
		if _, err := tlsconf.Server(l.files, discard); err != nil {
			return fmt.Errorf("%w: %s: %w", config.ErrInvalid, l.key, err)
		}
	}
	if _, _, _, _, err := verifiers(cfg, discard); err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	return nil
}
