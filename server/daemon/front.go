package daemon

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/verify"
)

// unchecked accepts every request: for a route the configuration marks insecure.
type unchecked struct{}

func (unchecked) VerifyHeader(http.Header, url.Values) (bool, error) { return true, nil }

func (unchecked) VerifyBody(http.Header, []byte) error { return nil }

// verifiers builds each route's authenticity check from the configuration. A route without
// credentials gets none (it accepts nothing) unless it is marked insecure, which is logged loudly.
func verifiers(cfg config.Config, log *slog.Logger) (moveapi, movement, mvmnt gateway.Verifier, listeners map[string]gateway.Listener, err error) {
	warn := func(route string) {
		log.Warn("INSECURE: webhooks on this route are accepted without any authenticity check; never do this in production", "route", route)
	}
	p := cfg.Providers
	switch {
	case p.MoveAPI.Insecure:
		moveapi = unchecked{}
		warn("/webhooks/moveapi")
	case len(p.MoveAPI.Secrets) > 0:
		if moveapi, err = verify.Svix(p.MoveAPI.Secrets, p.MoveAPI.Tolerance, nil); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("providers.moveapi.secrets: %w", err)
		}
	}
	switch {
	case p.Movement.Insecure:
		movement = unchecked{}
		warn("/webhooks/movement")
	case len(p.Movement.Tokens) > 0:
		movement = verify.Token(p.Movement.Tokens)
	}
	switch {
	case p.MVMNT.Insecure:
		mvmnt = unchecked{}
		warn("/webhooks/mvmnt")
	case len(p.MVMNT.Tokens) > 0:
		mvmnt = verify.APIKey("X-Api-Key", p.MVMNT.Tokens)
	}
	listeners = make(map[string]gateway.Listener, len(cfg.Listeners))
	for id, l := range cfg.Listeners {
		route := "/webhooks/v1/listeners/" + id + "/notify"
		gl := gateway.Listener{DedupHeader: l.DedupHeader}
		switch {
		case l.Insecure:
			gl.Verifier = unchecked{}
			warn(route)
		case len(l.Tokens) > 0:
			gl.Verifier = verify.Bearer(l.Tokens)
			if len(l.HMAC.Secrets) > 0 {
				h := l.HMAC
				sig, err := verify.HMAC(h.Header, h.Algorithm, h.Prefix, h.Encoding, h.Secrets)
				if err != nil {
					return nil, nil, nil, nil, fmt.Errorf("listeners.%s.hmac: %w", id, err)
				}
				gl.Verifier = verify.All(gl.Verifier, sig)
			}
		}
		listeners[strings.ToLower(id)] = gl
	}
	return moveapi, movement, mvmnt, listeners, nil
}
