// Package verify checks the authenticity of webhook requests on their exact raw body, before
// anything parses it: Svix / Standard Webhooks signatures (Move API), shared tokens in a header,
// the URL or an Authorization header (MVMNT, Movement, listeners), and HMAC signatures of the body
// (listeners). Secrets are compared in constant time; errors never contain secrets or bodies.
// Every Verifier is safe for concurrent use.
package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// ErrUnauthenticated is wrapped by every error of a request that fails a check.
var ErrUnauthenticated = errors.New("unauthenticated")

// The reasons a request fails; each also wraps ErrUnauthenticated.
var (
	// ErrMissingCredentials: no credential (header, token, signature) was sent.
	ErrMissingCredentials = fmt.Errorf("%w: missing credentials", ErrUnauthenticated)
	// ErrBadCredentials: a credential was sent but does not match.
	ErrBadCredentials = fmt.Errorf("%w: credentials do not match", ErrUnauthenticated)
	// ErrExpired: a Svix timestamp outside the tolerance (too old, or in the future).
	ErrExpired = fmt.Errorf("%w: timestamp outside the tolerance", ErrUnauthenticated)
	// ErrMalformedHeader: a credential header that cannot be parsed.
	ErrMalformedHeader = fmt.Errorf("%w: malformed credential header", ErrUnauthenticated)
	// ErrNotConfigured: no secret is configured, so nothing is accepted.
	ErrNotConfigured = fmt.Errorf("%w: no credentials configured", ErrUnauthenticated)
)

// Verifier checks one request: its headers, URL query and exact raw body. A nil error means
// authentic.
type Verifier interface {
	Verify(h http.Header, query url.Values, body []byte) error
}

// DefaultTolerance is the default accepted clock skew of a Svix timestamp, both ways.
const DefaultTolerance = 5 * time.Minute

type svix struct {
	hooks     []*standardwebhooks.Webhook
	tolerance time.Duration
	now       func() time.Time
}

// Svix returns a Verifier of Svix / Standard Webhooks signatures, using the Standard Webhooks
// library for the HMAC. secrets are "whsec_<base64>" (or bare base64) secrets, several while
// rotating: a request passes if any "v1," signature in its header matches any secret. It reads
// svix-id, svix-timestamp and svix-signature, or else the webhook-* headers. tolerance is the
// accepted clock skew both ways (DefaultTolerance when 0); now is the clock (time.Now when nil).
// It fails for no secrets (ErrNotConfigured) or a secret that is not base64.
func Svix(secrets []string, tolerance time.Duration, now func() time.Time) (Verifier, error) {
	if len(secrets) == 0 {
		return nil, ErrNotConfigured
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if now == nil {
		now = time.Now
	}
	v := &svix{tolerance: tolerance, now: now}
	for i, s := range secrets {
		wh, err := standardwebhooks.NewWebhook(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("secret %d is not a whsec_ base64 secret", i+1)
		}
		v.hooks = append(v.hooks, wh)
	}
	return v, nil
}

// SvixID returns the message id of a Svix / Standard Webhooks request (svix-id, else
// webhook-id), or "".
func SvixID(h http.Header) string {
	if id := h.Get("Svix-Id"); id != "" {
		return id
	}
	return h.Get("Webhook-Id")
}

func (v *svix) Verify(h http.Header, _ url.Values, body []byte) error {
	id, ts, sig := h.Get("Svix-Id"), h.Get("Svix-Timestamp"), h.Get("Svix-Signature")
	if id == "" && ts == "" && sig == "" {
		id, ts, sig = h.Get("Webhook-Id"), h.Get("Webhook-Timestamp"), h.Get("Webhook-Signature")
	}
	if id == "" || ts == "" || sig == "" {
		return ErrMissingCredentials
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrMalformedHeader
	}
	if d := v.now().Sub(time.Unix(sec, 0)); d > v.tolerance || d < -v.tolerance {
		return ErrExpired
	}
	// The library reads the webhook-* headers, set with Set so they are canonical.
	std := http.Header{}
	std.Set(standardwebhooks.HeaderWebhookID, id)
	std.Set(standardwebhooks.HeaderWebhookTimestamp, ts)
	std.Set(standardwebhooks.HeaderWebhookSignature, sig)
	for _, wh := range v.hooks {
		// The timestamp is checked above with the configured tolerance and clock; the library's
		// own check is fixed at 5 minutes of the wall clock.
		if wh.VerifyIgnoringTimestamp(body, std) == nil {
			return nil
		}
	}
	return ErrBadCredentials
}

// Sign returns the Svix signature header value ("v1,<base64>") of body sent as message id at
// timestamp, with secret ("whsec_…"). For tests and for signing sample webhooks by hand.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return "", errors.New("the secret is not a whsec_ base64 secret")
	}
	return wh.Sign(id, timestamp, body)
}

// tokens holds accepted shared tokens, compared in constant time.
type tokens [][]byte

func newTokens(list []string) tokens {
	var t tokens
	for _, s := range list {
		if s != "" {
			t = append(t, []byte(s))
		}
	}
	return t
}

// match reports whether got equals one of the tokens. Every token is compared, so the time taken
// does not tell which one matched.
func (t tokens) match(got string) bool {
	ok := 0
	for _, want := range t {
		ok |= subtle.ConstantTimeCompare([]byte(got), want)
	}
	return ok == 1
}

type apiKey struct {
	header string
	tokens tokens
}

// APIKey returns a Verifier requiring header (e.g. "X-Api-Key") to equal one of tokens (the
// current and the previous while rotating). With no tokens it accepts nothing (ErrNotConfigured).
func APIKey(header string, tokens []string) Verifier {
	return &apiKey{header: header, tokens: newTokens(tokens)}
}

func (v *apiKey) Verify(h http.Header, _ url.Values, _ []byte) error {
	if len(v.tokens) == 0 {
		return ErrNotConfigured
	}
	got := h.Get(v.header)
	if got == "" {
		return ErrMissingCredentials
	}
	if !v.tokens.match(got) {
		return ErrBadCredentials
	}
	return nil
}

type token struct{ tokens tokens }

// Token returns a Verifier for a shared secret that may come as the URL query parameter
// "token", as "Authorization: Bearer <secret>", or as the password of HTTP Basic auth (any user
// name): what an operator can put in a webhook URL it gives a provider (Movement). With no tokens
// it accepts nothing (ErrNotConfigured).
func Token(tokens []string) Verifier { return &token{tokens: newTokens(tokens)} }

func (v *token) Verify(h http.Header, q url.Values, _ []byte) error {
	if len(v.tokens) == 0 {
		return ErrNotConfigured
	}
	var got string
	switch {
	case q.Get("token") != "":
		got = q.Get("token")
	case h.Get("Authorization") != "":
		scheme, cred, _ := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
		cred = strings.TrimSpace(cred)
		switch {
		case strings.EqualFold(scheme, "Bearer"):
			got = cred
		case strings.EqualFold(scheme, "Basic"):
			raw, err := base64.StdEncoding.DecodeString(cred)
			if err != nil {
				return ErrMalformedHeader
			}
			_, got, _ = strings.Cut(string(raw), ":")
		default:
			return ErrMalformedHeader
		}
	}
	if got == "" {
		return ErrMissingCredentials
	}
	if !v.tokens.match(got) {
		return ErrBadCredentials
	}
	return nil
}

type bearer struct{ tokens tokens }

// Bearer returns a Verifier requiring "Authorization: Bearer <token>" with one of tokens. Tokens
// are opaque strings (never parsed as JWTs); the scheme is case-insensitive. With no tokens it
// accepts nothing (ErrNotConfigured).
func Bearer(tokens []string) Verifier { return &bearer{tokens: newTokens(tokens)} }

func (v *bearer) Verify(h http.Header, _ url.Values, _ []byte) error {
	if len(v.tokens) == 0 {
		return ErrNotConfigured
	}
	auth := strings.TrimSpace(h.Get("Authorization"))
	if auth == "" {
		return ErrMissingCredentials
	}
	scheme, cred, _ := strings.Cut(auth, " ")
	cred = strings.TrimSpace(cred)
	if !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return ErrMalformedHeader
	}
	if !v.tokens.match(cred) {
		return ErrBadCredentials
	}
	return nil
}

type hmacSig struct {
	header, prefix string
	decode         func(string) ([]byte, error)
	newHash        func() hash.Hash
	secrets        [][]byte
}

// HMAC returns a Verifier requiring header to carry an HMAC of the raw body with one of secrets:
// algorithm "sha256" or "sha512", after prefix (e.g. "sha256=", may be empty), encoded "hex" (any
// case) or "base64". It fails for another algorithm or encoding, or no secrets.
func HMAC(header, algorithm, prefix, encoding string, secrets []string) (Verifier, error) {
	v := &hmacSig{header: header, prefix: prefix}
	switch algorithm {
	case "sha256":
		v.newHash = sha256.New
	case "sha512":
		v.newHash = sha512.New
	default:
		return nil, fmt.Errorf("hmac algorithm %q: want sha256 or sha512", algorithm)
	}
	switch encoding {
	case "hex":
		v.decode = func(s string) ([]byte, error) { return hex.DecodeString(strings.ToLower(s)) }
	case "base64":
		v.decode = base64.StdEncoding.DecodeString
	default:
		return nil, fmt.Errorf("hmac encoding %q: want hex or base64", encoding)
	}
	if header == "" {
		return nil, errors.New("hmac header name is empty")
	}
	for _, s := range secrets {
		if s != "" {
			v.secrets = append(v.secrets, []byte(s))
		}
	}
	if len(v.secrets) == 0 {
		return nil, ErrNotConfigured
	}
	return v, nil
}

func (v *hmacSig) Verify(h http.Header, _ url.Values, body []byte) error {
	got := strings.TrimSpace(h.Get(v.header))
	if got == "" {
		return ErrMissingCredentials
	}
	digest, ok := strings.CutPrefix(got, v.prefix)
	if !ok {
		return ErrMalformedHeader
	}
	sig, err := v.decode(digest)
	if err != nil {
		return ErrMalformedHeader
	}
	match := false
	for _, s := range v.secrets {
		m := hmac.New(v.newHash, s)
		m.Write(body)
		match = hmac.Equal(sig, m.Sum(nil)) || match
	}
	if !match {
		return ErrBadCredentials
	}
	return nil
}

type all []Verifier

// All returns a Verifier that passes only when every one of vs passes; it returns the first
// failure.
func All(vs ...Verifier) Verifier { return all(vs) }

func (a all) Verify(h http.Header, q url.Values, body []byte) error {
	for _, v := range a {
		if err := v.Verify(h, q, body); err != nil {
			return err
		}
	}
	return nil
}
