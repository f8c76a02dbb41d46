// Package auth authenticates the callers of hookstream's internal API (gRPC and its HTTP
// mapping) and authorizes each call against one table of rules: a principal (from a bearer
// token, a client certificate or a JWT) holds permissions, and each RPC needs one.
package auth

import "context"

// Principal is an authenticated caller of the internal API.
type Principal struct {
	// Name identifies the principal in logs, limits and the events it produces (its source):
	// the configured name of its token, or its certificate's subject.
	Name string
}

type principalKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal of the call ctx belongs to. Calls on a loopback-only
// internal API without authentication configured have none: ok is false.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
