package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// Errors of authentication and authorization. The gRPC and HTTP doors map them to
// UNAUTHENTICATED / 401 and PERMISSION_DENIED / 403.
var (
	// ErrUnauthenticated is wrapped when a call carries no credentials, or credentials no
	// principal has.
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrPermissionDenied is wrapped when the principal lacks the permission a call needs.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrConfig is wrapped by New's errors for rules that cannot be used.
	ErrConfig = errors.New("invalid authentication configuration")
)

// Permission is what a principal may do.
type Permission string

// The permissions, one per kind of internal call (see rules).
const (
	// PermConsume allows Subscribe, on the groups and providers of the principal.
	PermConsume Permission = "consume"
	// PermRead allows Tail, GetEvent and ListEvents.
	PermRead Permission = "read"
	// PermAdmin allows QuarantineService and the management of consumer groups.
	PermAdmin Permission = "admin"
	// PermProduce allows WebhookService over gRPC, for the principal's providers.
	PermProduce Permission = "produce"
)

// PrincipalConfig is one principal as configured.
type PrincipalConfig struct {
	// Name is the principal's name: in logs, in limits, and as the source of what it produces.
	Name string
	// TokenDigests are the SHA-256 digests of its bearer tokens. Tokens are kept and compared as
	// digests only.
	TokenDigests [][sha256.Size]byte
	// JWTSubjects are the subjects ("sub") of the JWTs that are this principal (with a
	// JWTVerifier).
	JWTSubjects []string
	// Certificates are the client certificate identities that are this principal: "CN=<common
	// name>", "DNS:<name>", "URI:<uri>" or "EMAIL:<address>" (subject alternative names).
	Certificates []string
	// Permissions it holds.
	Permissions []Permission
	// Groups are the consumer groups it may consume, as path.Match patterns ("billing-*").
	// Empty: any group.
	Groups []string
	// Providers it may consume and produce. Empty: every provider.
	Providers []hookstreamv1.Provider
}

// Principal returns the principal of a configuration.
func (c PrincipalConfig) principal() *principal {
	p := &principal{Principal: Principal{Name: c.Name}, perms: map[Permission]bool{}, groups: c.Groups}
	for _, perm := range c.Permissions {
		p.perms[perm] = true
	}
	if len(c.Providers) > 0 {
		p.providers = map[hookstreamv1.Provider]bool{}
		for _, pr := range c.Providers {
			p.providers[pr] = true
		}
	}
	return p
}

// principal is a principal with its permissions.
type principal struct {
	Principal
	perms     map[Permission]bool
	groups    []string
	providers map[hookstreamv1.Provider]bool // nil: every provider
}

func (p *principal) mayProvider(pr hookstreamv1.Provider) bool {
	return p.providers == nil || p.providers[pr]
}

func (p *principal) mayGroup(group string) bool {
	if len(p.groups) == 0 {
		return true
	}
	for _, pattern := range p.groups {
		if ok, _ := path.Match(pattern, group); ok {
			return true
		}
	}
	return false
}

// TokenDigest returns the digest a token is kept as: "sha256:<hex>" in configurations.
func TokenDigest(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ParseTokenDigest reads a "sha256:<hex>" digest.
func ParseTokenDigest(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	h, ok := strings.CutPrefix(s, "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return d, fmt.Errorf("%w: a token digest is \"sha256:\" and 64 hex digits", ErrConfig)
	}
	copy(d[:], b)
	return d, nil
}

// Authenticator finds the principal of credentials: a bearer token or a verified client
// certificate. It is safe for concurrent use.
type Authenticator struct {
	byToken   []tokenEntry
	byCert    map[string]*principal
	byName    map[string]*principal
	bySubject map[string]*principal
	jwt       *JWTVerifier // nil: JWTs are not accepted
}

type tokenEntry struct {
	digest [sha256.Size]byte
	p      *principal
}

// NewAuthenticator returns the authenticator of principals, accepting JWTs verified by jwt when
// it is not nil. Names, token digests, certificate identities and JWT subjects must be unique.
// Errors wrap ErrConfig.
func NewAuthenticator(principals []PrincipalConfig, jwt *JWTVerifier) (*Authenticator, error) {
	a := &Authenticator{byCert: map[string]*principal{}, byName: map[string]*principal{}, bySubject: map[string]*principal{}, jwt: jwt}
	seen := map[[sha256.Size]byte]string{}
	for _, c := range principals {
		if c.Name == "" {
			return nil, fmt.Errorf("%w: a principal has no name", ErrConfig)
		}
		if _, dup := a.byName[c.Name]; dup {
			return nil, fmt.Errorf("%w: principal %q is configured twice", ErrConfig, c.Name)
		}
		if len(c.TokenDigests) == 0 && len(c.Certificates) == 0 && len(c.JWTSubjects) == 0 {
			return nil, fmt.Errorf("%w: principal %q has no tokens, certificates or JWT subjects", ErrConfig, c.Name)
		}
		if len(c.JWTSubjects) > 0 && jwt == nil {
			return nil, fmt.Errorf("%w: principal %q has JWT subjects but no JWKS is configured", ErrConfig, c.Name)
		}
		p := c.principal()
		for perm := range p.perms {
			switch perm {
			case PermConsume, PermRead, PermAdmin, PermProduce:
			default:
				return nil, fmt.Errorf("%w: principal %q: unknown permission %q (want consume, read, admin or produce)", ErrConfig, c.Name, perm)
			}
		}
		for _, g := range c.Groups {
			if _, err := path.Match(g, ""); err != nil {
				return nil, fmt.Errorf("%w: principal %q: group pattern %q: %w", ErrConfig, c.Name, g, err)
			}
		}
		a.byName[c.Name] = p
		for _, d := range c.TokenDigests {
			if other, dup := seen[d]; dup {
				return nil, fmt.Errorf("%w: principals %q and %q share a token", ErrConfig, other, c.Name)
			}
			seen[d] = c.Name
			a.byToken = append(a.byToken, tokenEntry{digest: d, p: p})
		}
		for _, id := range c.Certificates {
			if !validCertID(id) {
				return nil, fmt.Errorf("%w: principal %q: certificate %q: want CN=, DNS:, URI: or EMAIL:", ErrConfig, c.Name, id)
			}
			if other, dup := a.byCert[id]; dup {
				return nil, fmt.Errorf("%w: principals %q and %q share certificate %q", ErrConfig, other.Name, c.Name, id)
			}
			a.byCert[id] = p
		}
		for _, sub := range c.JWTSubjects {
			if other, dup := a.bySubject[sub]; dup || sub == "" {
				return nil, fmt.Errorf("%w: principal %q: JWT subject %q is empty or also %v's", ErrConfig, c.Name, sub, other.Name)
			}
			a.bySubject[sub] = p
		}
	}
	return a, nil
}

func validCertID(id string) bool {
	for _, prefix := range []string{"CN=", "DNS:", "URI:", "EMAIL:"} {
		if v, ok := strings.CutPrefix(id, prefix); ok && v != "" {
			return true
		}
	}
	return false
}

// Empty reports whether no principal is configured: the internal API is then open, which is
// allowed on loopback only.
func (a *Authenticator) Empty() bool { return len(a.byName) == 0 }

// token returns the principal of a bearer token. Every digest is compared, in constant time, so
// the time taken says nothing about which tokens exist.
func (a *Authenticator) token(tok string) *principal {
	got := sha256.Sum256([]byte(tok))
	var found *principal
	for _, e := range a.byToken {
		if subtle.ConstantTimeCompare(got[:], e.digest[:]) == 1 {
			found = e.p
		}
	}
	return found
}

// certificate returns the principal of a verified client certificate: its subject's common name
// or one of its subject alternative names.
func (a *Authenticator) certificate(cert *x509.Certificate) *principal {
	ids := []string{"CN=" + cert.Subject.CommonName}
	for _, n := range cert.DNSNames {
		ids = append(ids, "DNS:"+n)
	}
	for _, u := range cert.URIs {
		ids = append(ids, "URI:"+u.String())
	}
	for _, e := range cert.EmailAddresses {
		ids = append(ids, "EMAIL:"+e)
	}
	for _, id := range ids {
		if p, ok := a.byCert[id]; ok {
			return p
		}
	}
	return nil
}

// Credentials are what a call presents.
type Credentials struct {
	// Authorization is the Authorization header or metadata value ("Bearer <token>").
	Authorization string
	// Certificates are the verified chains' leaf certificates of a TLS client, if any.
	Certificates []*x509.Certificate
}

// Authenticate returns the principal of creds: the client certificate's, else the bearer
// token's. Errors wrap ErrUnauthenticated and never contain the credentials.
func (a *Authenticator) Authenticate(creds Credentials) (*principal, error) {
	for _, c := range creds.Certificates {
		if p := a.certificate(c); p != nil {
			return p, nil
		}
	}
	if creds.Authorization != "" {
		scheme, tok, ok := strings.Cut(creds.Authorization, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return nil, fmt.Errorf("%w: the authorization is not a bearer token", ErrUnauthenticated)
		}
		if a.jwt != nil && looksLikeJWT(tok) {
			return a.byJWT(tok)
		}
		if p := a.token(tok); p != nil {
			return p, nil
		}
		return nil, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	if len(creds.Certificates) > 0 {
		return nil, fmt.Errorf("%w: the client certificate is no principal's", ErrUnauthenticated)
	}
	return nil, fmt.Errorf("%w: no credentials", ErrUnauthenticated)
}

// byJWT returns the principal of a JWT's subject.
func (a *Authenticator) byJWT(tok string) (*principal, error) {
	sub, err := a.jwt.subject(tok, time.Now())
	if err != nil {
		return nil, err
	}
	if p := a.bySubject[sub]; p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("%w: %w: subject %q is no principal's", ErrUnauthenticated, errJWT, sub)
}

// byPrincipalName returns a configured principal.
func (a *Authenticator) byPrincipalName(name string) *principal { return a.byName[name] }
