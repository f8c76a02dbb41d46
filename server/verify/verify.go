// Package verify checks the authenticity of webhook requests on their exact raw body, before
// anything parses it: Svix / Standard Webhooks signatures (Move API), shared tokens in a header,
// the URL or an Authorization header (MVMNT, Movement, listeners), and HMAC signatures of the body
// (listeners).
//
// A check runs in two stages, so that a front door spends nothing on a request whose headers
// already fail: VerifyHeader checks everything the headers and the URL carry before the body is
// read (tokens in full; for signatures, that the headers are present and well formed and the
// timestamp inside the tolerance), and VerifyBody checks the signatures over the raw body. Verify
// runs both, for callers that hold the whole request.
//
// Secrets are compared in constant time, every configured secret is tried so that the time taken
// does not tell which one matched, and errors never contain secrets, credentials or bodies: they
// name at most the header that failed. Every error of a rejected request wraps
// ErrUnauthenticated and one of the more specific sentinels. Every Verifier is immutable once
// built and safe for concurrent use.
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

// ErrUnauthenticated is wrapped by every error of a request that fails a check, together with
// one of ErrMissingCredentials, ErrBadCredentials, ErrExpired, ErrMalformedHeader or
// ErrNotConfigured.
var ErrUnauthenticated = errors.New("unauthenticated")

var (
	// ErrMissingCredentials is returned when a request lacks a credential it needs: a header,
	// a token, a signature, or one of the three Svix headers.
	ErrMissingCredentials = fmt.Errorf("%w: missing credentials", ErrUnauthenticated)
	// ErrBadCredentials is returned when a credential is present and well formed but matches no
	// configured secret.
	ErrBadCredentials = fmt.Errorf("%w: credentials do not match", ErrUnauthenticated)
	// ErrExpired is returned when a Svix timestamp is outside the tolerance: too old, or in the
	// future.
	ErrExpired = fmt.Errorf("%w: timestamp outside the tolerance", ErrUnauthenticated)
	// ErrMalformedHeader is returned when a credential header is present but cannot be parsed
	// (a timestamp that is not a number, bad base64 or hex, an unknown Authorization scheme).
	ErrMalformedHeader = fmt.Errorf("%w: malformed credential header", ErrUnauthenticated)
	// ErrNotConfigured is returned when no secret is configured: such a verifier accepts
	// nothing. Svix and HMAC return it from the constructor too.
	ErrNotConfigured = fmt.Errorf("%w: no credentials configured", ErrUnauthenticated)
)

// Verifier checks one request in two stages: its headers and URL query first, before the body
// is read, then its exact raw body. A request is authentic only when VerifyHeader and then
// VerifyBody, with the same headers, both return nil; any other error wraps ErrUnauthenticated.
// h must have canonical keys, as net/http builds it (or as http.Header.Set makes them).
// Implementations must be safe for concurrent use.
type Verifier interface {
	// VerifyHeader checks what the request carries before its body. proven reports whether the
	// sender has already shown that it holds a secret (a token, a key): false when only the
	// body's signature can tell (Svix), so that the caller can keep such requests apart while
	// it reads their body. A request whose headers fail gets an error and proven false.
	VerifyHeader(h http.Header, query url.Values) (proven bool, err error)
	// VerifyBody checks the signatures over the raw body; verifiers of header credentials
	// return nil. It is called only after VerifyHeader returned nil for the same headers.
	VerifyBody(h http.Header, body []byte) error
}

// Verify checks a whole request with v: VerifyHeader, then VerifyBody. It is the path of callers
// that hold the whole request at once; a front door runs the two stages itself, reading the body
// in between.
func Verify(v Verifier, h http.Header, query url.Values, body []byte) error {
	if _, err := v.VerifyHeader(h, query); err != nil {
		return err
	}
	return v.VerifyBody(h, body)
}

// defaultTolerance is the accepted clock skew of a Svix timestamp, both ways, unless configured:
// the value of the Svix documentation and of the Standard Webhooks libraries.
const defaultTolerance = 5 * time.Minute

// The two families of Svix headers. White-labelled senders use the Standard Webhooks names.
var (
	svixHeaders    = [3]string{"svix-id", "svix-timestamp", "svix-signature"}
	webhookHeaders = [3]string{"webhook-id", "webhook-timestamp", "webhook-signature"}
)

type svix struct {
	hooks     []*standardwebhooks.Webhook
	tolerance time.Duration
	now       func() time.Time
}

// Svix returns a Verifier of Svix / Standard Webhooks signatures (Move API), built on the
// Standard Webhooks library.
//
// secrets are "whsec_<base64>" secrets (bare base64 is accepted too, surrounding white space is
// ignored); give several while rotating. tolerance is the accepted clock skew of the timestamp,
// both ways (5 minutes when 0 or negative); now is the clock (time.Now when nil) and must be safe
// for concurrent use.
//
// A request carries svix-id, svix-timestamp and svix-signature, or else (when none of those is
// present) webhook-id, webhook-timestamp and webhook-signature; the two families are never mixed.
// The signed content is id + "." + timestamp + "." + body, with HMAC-SHA256 keyed with the decoded
// secret, and the signature header holds space-separated "v1,<base64>" entries. The request
// passes if any v1 entry matches any secret; entries of other versions ("v1a,...") are ignored.
//
// Its header stage proves nothing (proven is false): it returns ErrMissingCredentials when a
// header is missing, ErrMalformedHeader when the timestamp is not a canonical decimal Unix time,
// ErrExpired when it is outside the tolerance, and ErrBadCredentials when no entry is a v1
// signature of the right form (none could match); the body stage returns ErrBadCredentials when
// no v1 entry matches. A v1 entry that is not valid base64 is an entry that does not match
// (ErrBadCredentials, not ErrMalformedHeader), so that one unreadable entry never hides a good
// one next to it.
//
// Svix fails with an error wrapping ErrNotConfigured when secrets is empty, and with another
// error when a secret is empty or not base64.
func Svix(secrets []string, tolerance time.Duration, now func() time.Time) (Verifier, error) {
	if len(secrets) == 0 {
		return nil, fmt.Errorf("svix: %w", ErrNotConfigured)
	}
	if tolerance <= 0 {
		tolerance = defaultTolerance
	}
	if now == nil {
		now = time.Now
	}
	v := &svix{tolerance: tolerance, now: now}
	for i, s := range secrets {
		wh, err := newWebhook(s)
		if err != nil {
			return nil, fmt.Errorf("svix secret %d: %w", i+1, err)
		}
		v.hooks = append(v.hooks, wh)
	}
	return v, nil
}

// newWebhook builds the library's verifier of one secret. The library accepts an empty key, with
// which anyone could sign, so an empty secret is refused here.
func newWebhook(secret string) (*standardwebhooks.Webhook, error) {
	secret = strings.TrimSpace(secret)
	if strings.TrimPrefix(secret, "whsec_") == "" {
		return nil, errors.New("empty secret")
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		// The library's error quotes nothing of the secret, but the house rule is to keep
		// secrets and their parse errors apart entirely.
		return nil, errors.New("secret is not whsec_ followed by standard base64")
	}
	return wh, nil
}

// SvixID returns the message id of a Svix / Standard Webhooks request: svix-id, else
// webhook-id, else "". A resend keeps the same id, so it is the dedup key of the Move API.
func SvixID(h http.Header) string {
	if id := h.Get(svixHeaders[0]); id != "" {
		return id
	}
	return h.Get(webhookHeaders[0])
}

// headers returns the id, timestamp and signature of a request, from the svix-* family or else
// (when none of those is present) the webhook-* family, and the family's names.
func (v *svix) headers(h http.Header) (names, vals [3]string, err error) {
	names = svixHeaders
	if h.Get(names[0]) == "" && h.Get(names[1]) == "" && h.Get(names[2]) == "" {
		names = webhookHeaders
	}
	for i, name := range names {
		if vals[i] = h.Get(name); vals[i] == "" {
			return names, vals, fmt.Errorf("%s: %w", name, ErrMissingCredentials)
		}
	}
	return names, vals, nil
}

// VerifyHeader checks the three headers, the timestamp and that one v1 entry could match: a
// Svix request proves nothing before its body is read.
func (v *svix) VerifyHeader(h http.Header, _ url.Values) (bool, error) {
	names, vals, err := v.headers(h)
	if err != nil {
		return false, err
	}
	ts := vals[1]
	// The library signs the timestamp as it reformats it, not as sent; refusing any other
	// spelling ("+1", "01") keeps the signed content the exact header value, as the spec says.
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || strconv.FormatInt(sec, 10) != ts {
		return false, fmt.Errorf("%s: %w", names[1], ErrMalformedHeader)
	}
	// The library's own check is fixed at 5 minutes of the wall clock, so the configured
	// tolerance and clock are applied here and the library is asked to skip its check.
	// time.Time.Sub saturates, so extreme timestamps cannot wrap into the window.
	if d := v.now().Sub(time.Unix(sec, 0)); d > v.tolerance || d < -v.tolerance {
		return false, fmt.Errorf("%s: %w", names[1], ErrExpired)
	}
	if !anySignature(vals[2]) {
		return false, fmt.Errorf("%s: %w", names[2], ErrBadCredentials)
	}
	return false, nil
}

// anySignature reports whether a signature header holds an entry the library could match: it
// splits the header as the library does and compares the second part of "v1,..." entries, byte
// for byte, with the standard base64 of an HMAC-SHA256, so only such an entry can match.
func anySignature(header string) bool {
	for _, entry := range strings.Split(header, " ") {
		parts := strings.Split(entry, ",")
		if len(parts) < 2 || parts[0] != "v1" || len(parts[1]) != base64.StdEncoding.EncodedLen(sha256.Size) {
			continue
		}
		if raw, err := base64.StdEncoding.DecodeString(parts[1]); err == nil && base64.StdEncoding.EncodeToString(raw) == parts[1] {
			return true
		}
	}
	return false
}

func (v *svix) VerifyBody(h http.Header, body []byte) error {
	names, vals, err := v.headers(h)
	if err != nil {
		return err
	}
	// The library reads only the webhook-* headers; Set canonicalises the keys it looks up.
	std := make(http.Header, 3)
	std.Set(standardwebhooks.HeaderWebhookID, vals[0])
	std.Set(standardwebhooks.HeaderWebhookTimestamp, vals[1])
	std.Set(standardwebhooks.HeaderWebhookSignature, vals[2])
	// Every secret is tried, so the time taken does not tell which one matched.
	var errs []error
	for _, wh := range v.hooks {
		errs = append(errs, wh.VerifyIgnoringTimestamp(body, std))
	}
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", names[2], libraryError(errs[len(errs)-1]))
}

// libraryError maps an error of the Standard Webhooks library to this package's sentinels. The
// headers and timestamp are checked before the library runs, so in practice only
// ErrNoMatchingSignature arrives; anything unknown is a failure all the same.
func libraryError(err error) error {
	switch {
	case errors.Is(err, standardwebhooks.ErrRequiredHeaders):
		return ErrMissingCredentials
	case errors.Is(err, standardwebhooks.ErrInvalidHeaders):
		return ErrMalformedHeader
	case errors.Is(err, standardwebhooks.ErrMessageTooOld), errors.Is(err, standardwebhooks.ErrMessageTooNew):
		return ErrExpired
	default:
		return ErrBadCredentials
	}
}

// Sign returns the Svix signature header value ("v1,<base64>") of body sent as message id at
// timestamp (whole seconds; the svix-timestamp header to send is timestamp.Unix()), with secret
// ("whsec_<base64>" or bare base64). It is for tests and for signing sample webhooks by hand. It
// fails when the secret is empty or not base64; the error does not contain the secret.
func Sign(secret, id string, timestamp time.Time, body []byte) (string, error) {
	wh, err := newWebhook(secret)
	if err != nil {
		return "", fmt.Errorf("svix sign: %w", err)
	}
	return wh.Sign(id, timestamp, body)
}

// tokens holds the SHA-256 digests of the accepted shared tokens. Comparing digests rather than
// the tokens themselves keeps the comparison constant-time in the token's length too
// (subtle.ConstantTimeCompare returns early on a length mismatch).
type tokens [][sha256.Size]byte

// newTokens keeps the non-empty tokens: an empty configured token must never let a request
// without credentials through.
func newTokens(list []string) tokens {
	var t tokens
	for _, s := range list {
		if s != "" {
			t = append(t, sha256.Sum256([]byte(s)))
		}
	}
	return t
}

// match reports whether got equals one of the tokens, byte for byte. Every token is compared, so
// the time taken does not tell which one matched.
func (t tokens) match(got string) bool {
	g := sha256.Sum256([]byte(got))
	ok := 0
	for i := range t {
		ok |= subtle.ConstantTimeCompare(g[:], t[i][:])
	}
	return ok == 1
}

type apiKey struct {
	header string
	name   string // the header in error messages
	tokens tokens
}

// APIKey returns a Verifier requiring header (e.g. "X-Api-Key"; any case) to equal one of
// tokens byte for byte (the current and the previous token while rotating), compared in constant
// time. The value is not trimmed: net/http already strips the white space around header values.
//
// Its header stage does the whole check and proves the sender: it returns ErrMissingCredentials
// for an absent or empty header and ErrBadCredentials for any other value; the body stage
// accepts every body. With no non-empty tokens the Verifier accepts nothing: every request gets
// ErrNotConfigured.
func APIKey(header string, tokens []string) Verifier {
	return &apiKey{header: header, name: strings.ToLower(header), tokens: newTokens(tokens)}
}

func (v *apiKey) VerifyHeader(h http.Header, _ url.Values) (bool, error) {
	if len(v.tokens) == 0 {
		return false, fmt.Errorf("%s: %w", v.name, ErrNotConfigured)
	}
	got := h.Get(v.header)
	if got == "" {
		return false, fmt.Errorf("%s: %w", v.name, ErrMissingCredentials)
	}
	if !v.tokens.match(got) {
		return false, fmt.Errorf("%s: %w", v.name, ErrBadCredentials)
	}
	return true, nil
}

func (*apiKey) VerifyBody(http.Header, []byte) error { return nil }

// parseAuthorization splits an Authorization value into its scheme and credentials, trimming the
// white space around both (RFC 7235 allows several spaces between them).
func parseAuthorization(auth string) (scheme, credentials string) {
	scheme, credentials, _ = strings.Cut(strings.TrimSpace(auth), " ")
	return scheme, strings.TrimSpace(credentials)
}

type token struct{ tokens tokens }

// Token returns a Verifier for a shared secret (Movement, which documents no authentication):
// what an operator can put in the webhook URL it gives the provider. The secret may come as the
// URL query parameter "token", as "Authorization: Bearer <secret>", or as the password of HTTP
// Basic auth (the user name is ignored); the request passes if any of them equals one of tokens,
// compared in constant time. Auth schemes are case-insensitive.
//
// Its header stage does the whole check and proves the sender (the body stage accepts every
// body): it returns ErrMissingCredentials when no credential is sent, ErrMalformedHeader when the
// only one is an Authorization header that cannot be read (another scheme, "Bearer" without a
// value, Basic that is not base64 or has no colon), and ErrBadCredentials otherwise. With no
// non-empty tokens the Verifier accepts nothing: every request gets ErrNotConfigured.
func Token(tokens []string) Verifier { return &token{tokens: newTokens(tokens)} }

func (v *token) VerifyHeader(h http.Header, q url.Values) (bool, error) {
	if err := v.check(h, q); err != nil {
		return false, err
	}
	return true, nil
}

func (*token) VerifyBody(http.Header, []byte) error { return nil }

func (v *token) check(h http.Header, q url.Values) error {
	if len(v.tokens) == 0 {
		return fmt.Errorf("token: %w", ErrNotConfigured)
	}
	sent := false
	if got := q.Get("token"); got != "" {
		if v.tokens.match(got) {
			return nil
		}
		sent = true
	}
	if auth := h.Get("Authorization"); auth != "" {
		got, ok := tokenFromAuthorization(auth)
		if !ok {
			if sent {
				return fmt.Errorf("token: %w", ErrBadCredentials)
			}
			return fmt.Errorf("authorization: %w", ErrMalformedHeader)
		}
		if v.tokens.match(got) {
			return nil
		}
		sent = true
	}
	if !sent {
		return fmt.Errorf("token: %w", ErrMissingCredentials)
	}
	return fmt.Errorf("token: %w", ErrBadCredentials)
}

// tokenFromAuthorization returns the secret of a Bearer or Basic Authorization value (the
// password, for Basic), and false if the value is neither or cannot be decoded.
func tokenFromAuthorization(auth string) (string, bool) {
	scheme, cred := parseAuthorization(auth)
	if cred == "" {
		return "", false
	}
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return cred, true
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return "", false
		}
		// RFC 7617: user-id ":" password, and the user id cannot contain a colon.
		_, password, ok := strings.Cut(string(raw), ":")
		return password, ok
	default:
		return "", false
	}
}

type bearer struct{ tokens tokens }

// Bearer returns a Verifier requiring "Authorization: Bearer <token>" with one of tokens,
// compared in constant time (listeners). Tokens are opaque strings and are never parsed as JWTs;
// the scheme is case-insensitive (RFC 7235) and the white space around the token is ignored.
//
// Its header stage does the whole check and proves the sender (the body stage accepts every
// body): it returns ErrMissingCredentials without an Authorization header, ErrMalformedHeader for
// another scheme or a Bearer without a token, and ErrBadCredentials for a wrong token. With no
// non-empty tokens the Verifier accepts nothing: every request gets ErrNotConfigured.
func Bearer(tokens []string) Verifier { return &bearer{tokens: newTokens(tokens)} }

func (v *bearer) VerifyHeader(h http.Header, _ url.Values) (bool, error) {
	if len(v.tokens) == 0 {
		return false, fmt.Errorf("bearer: %w", ErrNotConfigured)
	}
	auth := h.Get("Authorization")
	if strings.TrimSpace(auth) == "" {
		return false, fmt.Errorf("authorization: %w", ErrMissingCredentials)
	}
	scheme, cred := parseAuthorization(auth)
	if !strings.EqualFold(scheme, "Bearer") || cred == "" {
		return false, fmt.Errorf("authorization: %w", ErrMalformedHeader)
	}
	if !v.tokens.match(cred) {
		return false, fmt.Errorf("authorization: %w", ErrBadCredentials)
	}
	return true, nil
}

func (*bearer) VerifyBody(http.Header, []byte) error { return nil }

type hmacSig struct {
	header, prefix string
	name           string // the header in error messages
	decode         func(string) ([]byte, error)
	newHash        func() hash.Hash
	size           int // of a digest, in bytes
	secrets        [][]byte
}

// HMAC returns a Verifier requiring header to carry an HMAC of the raw body keyed with one of
// secrets (listeners; GitHub's "X-Hub-Signature-256: sha256=<hex>" is header
// "X-Hub-Signature-256", algorithm "sha256", prefix "sha256=", encoding "hex").
//
// algorithm is "sha256" or "sha512"; prefix (may be empty) must start the header value and is
// stripped, case-sensitively; encoding is "hex" (either case) or "base64" (standard, padded).
// Every secret is tried and the digests are compared with hmac.Equal.
//
// Its header stage proves nothing (proven is false): it returns ErrMissingCredentials without the
// header and ErrMalformedHeader when the prefix is missing or the digest cannot be decoded or has
// the wrong length; the body stage returns those too, and ErrBadCredentials when the digest
// matches no secret. HMAC fails for an empty header name, another algorithm or encoding, and
// (with an error wrapping ErrNotConfigured) when there is no non-empty secret.
func HMAC(header, algorithm, prefix, encoding string, secrets []string) (Verifier, error) {
	if header == "" {
		return nil, errors.New("hmac: empty header name")
	}
	v := &hmacSig{header: header, name: strings.ToLower(header), prefix: prefix}
	var err error
	if v.newHash, err = hmacHash(algorithm); err != nil {
		return nil, err
	}
	v.size = v.newHash().Size()
	if v.decode, _, err = hmacEncoding(encoding); err != nil {
		return nil, err
	}
	for _, s := range secrets {
		if s != "" {
			v.secrets = append(v.secrets, []byte(s))
		}
	}
	if len(v.secrets) == 0 {
		return nil, fmt.Errorf("hmac: %w", ErrNotConfigured)
	}
	return v, nil
}

// hmacHash is the hash of an HMAC algorithm name: "sha256" or "sha512", in either case.
func hmacHash(algorithm string) (func() hash.Hash, error) {
	switch strings.ToLower(algorithm) {
	case "sha256":
		return sha256.New, nil
	case "sha512":
		return sha512.New, nil
	default:
		return nil, fmt.Errorf("hmac: algorithm %q, want sha256 or sha512", algorithm)
	}
}

// hmacEncoding is how a digest is decoded from, and encoded into, a header: "hex" (decoded in
// either case, encoded in lower case) or "base64" (standard, padded).
func hmacEncoding(encoding string) (decode func(string) ([]byte, error), encode func([]byte) string, err error) {
	switch strings.ToLower(encoding) {
	case "hex":
		return hex.DecodeString, hex.EncodeToString, nil
	case "base64":
		return base64.StdEncoding.DecodeString, base64.StdEncoding.EncodeToString, nil
	default:
		return nil, nil, fmt.Errorf("hmac: encoding %q, want hex or base64", encoding)
	}
}

// SignHMAC returns the header value that the Verifier of HMAC(header, algorithm, prefix,
// encoding, secrets) accepts for body when secrets holds secret: prefix followed by the encoded
// HMAC of body keyed with secret. It fails for an algorithm or encoding HMAC refuses, and (with
// an error wrapping ErrNotConfigured) for an empty secret.
func SignHMAC(algorithm, prefix, encoding, secret string, body []byte) (string, error) {
	newHash, err := hmacHash(algorithm)
	if err != nil {
		return "", err
	}
	_, encode, err := hmacEncoding(encoding)
	if err != nil {
		return "", err
	}
	if secret == "" {
		return "", fmt.Errorf("hmac: %w", ErrNotConfigured)
	}
	m := hmac.New(newHash, []byte(secret))
	m.Write(body)
	return prefix + encode(m.Sum(nil)), nil
}

// signature returns the digest the header carries.
func (v *hmacSig) signature(h http.Header) ([]byte, error) {
	got := strings.TrimSpace(h.Get(v.header))
	if got == "" {
		return nil, fmt.Errorf("%s: %w", v.name, ErrMissingCredentials)
	}
	digest, ok := strings.CutPrefix(got, v.prefix)
	if !ok {
		return nil, fmt.Errorf("%s: %w", v.name, ErrMalformedHeader)
	}
	sig, err := v.decode(digest)
	if err != nil || len(sig) != v.size {
		return nil, fmt.Errorf("%s: %w", v.name, ErrMalformedHeader)
	}
	return sig, nil
}

// VerifyHeader checks that the header carries a digest of the right form: an HMAC proves
// nothing before the body is read.
func (v *hmacSig) VerifyHeader(h http.Header, _ url.Values) (bool, error) {
	_, err := v.signature(h)
	return false, err
}

func (v *hmacSig) VerifyBody(h http.Header, body []byte) error {
	sig, err := v.signature(h)
	if err != nil {
		return err
	}
	// Every secret is tried, so the time taken does not tell which one matched.
	match := 0
	for _, s := range v.secrets {
		m := hmac.New(v.newHash, s)
		m.Write(body)
		if hmac.Equal(sig, m.Sum(nil)) {
			match = 1
		}
	}
	if match == 0 {
		return fmt.Errorf("%s: %w", v.name, ErrBadCredentials)
	}
	return nil
}

type all []Verifier

// All returns a Verifier that passes only when every one of vs passes, checked in order, each
// stage of every one before the next stage; it returns the first failure (a listener with a
// Bearer token and an HMAC signature). Its header stage has proven the sender when any of vs's
// has. With no verifiers, or a nil one, it accepts nothing: ErrNotConfigured.
func All(vs ...Verifier) Verifier { return all(append([]Verifier(nil), vs...)) }

func (a all) VerifyHeader(h http.Header, q url.Values) (bool, error) {
	if len(a) == 0 {
		return false, fmt.Errorf("all: %w", ErrNotConfigured)
	}
	proven := false
	for _, v := range a {
		if v == nil {
			return false, fmt.Errorf("all: %w", ErrNotConfigured)
		}
		p, err := v.VerifyHeader(h, q)
		if err != nil {
			return false, err
		}
		proven = proven || p
	}
	return proven, nil
}

func (a all) VerifyBody(h http.Header, body []byte) error {
	if len(a) == 0 {
		return fmt.Errorf("all: %w", ErrNotConfigured)
	}
	for _, v := range a {
		if v == nil {
			return fmt.Errorf("all: %w", ErrNotConfigured)
		}
		if err := v.VerifyBody(h, body); err != nil {
			return err
		}
	}
	return nil
}
