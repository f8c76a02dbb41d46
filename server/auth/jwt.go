package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtAlgorithms are the signature algorithms a JWT may use: asymmetric only, so that no key of
// the JWKS can be used as an HMAC secret (the "alg confusion" attack), and never "none".
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// jwtLeeway is the clock skew allowed on exp, nbf and iat.
const jwtLeeway = 30 * time.Second

// maxJWTBytes bounds a JWT before it is parsed.
const maxJWTBytes = 16 << 10

// JWTOptions configures the verification of JWT bearer tokens (see NewJWTVerifier).
type JWTOptions struct {
	// JWKSFile is a JSON Web Key Set file holding the issuer's public keys. It is read again when
	// it changes (key rotation); a file that no longer loads keeps the previous keys.
	JWKSFile string
	// Issuer is the "iss" every token must carry. Required.
	Issuer string
	// Audience must be one of a token's "aud" values. Required.
	Audience string
}

// JWTVerifier verifies JWT bearer tokens: the signature against a JWKS file (asymmetric
// algorithms only), the issuer, the audience, and the validity times (exp is required). The
// token's subject ("sub") names its principal (PrincipalConfig.JWTSubjects). It is safe for
// concurrent use.
type JWTVerifier struct {
	o JWTOptions

	mu      sync.Mutex
	keys    *jose.JSONWebKeySet
	stamp   string
	checked time.Time
}

// NewJWTVerifier loads o.JWKSFile. Errors wrap ErrConfig.
func NewJWTVerifier(o JWTOptions) (*JWTVerifier, error) {
	switch {
	case o.JWKSFile == "":
		return nil, fmt.Errorf("%w: jwt: a JWKS file is required", ErrConfig)
	case o.Issuer == "":
		return nil, fmt.Errorf("%w: jwt: an issuer is required", ErrConfig)
	case o.Audience == "":
		return nil, fmt.Errorf("%w: jwt: an audience is required", ErrConfig)
	}
	v := &JWTVerifier{o: o}
	if err := v.load(); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *JWTVerifier) load() error {
	fi, err := os.Stat(v.o.JWKSFile)
	if err != nil {
		return fmt.Errorf("%w: jwt: %w", ErrConfig, err)
	}
	b, err := os.ReadFile(v.o.JWKSFile)
	if err != nil {
		return fmt.Errorf("%w: jwt: %w", ErrConfig, err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return fmt.Errorf("%w: jwt: %s is not a JSON Web Key Set: %w", ErrConfig, v.o.JWKSFile, err)
	}
	if len(set.Keys) == 0 {
		return fmt.Errorf("%w: jwt: %s holds no key", ErrConfig, v.o.JWKSFile)
	}
	for i, k := range set.Keys {
		// A symmetric ("oct") key would make every holder of it an issuer.
		pub := k.Public() // only ever verify with the public half
		if _, symmetric := k.Key.([]byte); symmetric || !pub.Valid() {
			return fmt.Errorf("%w: jwt: key %d of %s is not an asymmetric key", ErrConfig, i, v.o.JWKSFile)
		}
		set.Keys[i] = pub
	}
	v.keys, v.stamp = &set, fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano())
	return nil
}

// current returns the key set, read again first when the file changed (at most once a second).
func (v *JWTVerifier) current() *jose.JSONWebKeySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	if time.Since(v.checked) >= time.Second {
		v.checked = time.Now()
		if fi, err := os.Stat(v.o.JWKSFile); err == nil && fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano()) != v.stamp {
			v.load() // on failure the previous keys stay
		}
	}
	return v.keys
}

// looksLikeJWT reports whether a bearer token is a compact JWS (three base64url parts), as
// opposed to an opaque token.
func looksLikeJWT(tok string) bool {
	return strings.Count(tok, ".") == 2 && strings.HasPrefix(tok, "eyJ")
}

// errJWT is wrapped by every JWT refusal (inside ErrUnauthenticated).
var errJWT = errors.New("jwt")

// subject verifies a JWT and returns its subject. Errors wrap ErrUnauthenticated and say which
// check failed, never the token.
func (v *JWTVerifier) subject(tok string, now time.Time) (string, error) {
	if len(tok) > maxJWTBytes {
		return "", fmt.Errorf("%w: %w: the token is longer than %d bytes", ErrUnauthenticated, errJWT, maxJWTBytes)
	}
	t, err := jwt.ParseSigned(tok, jwtAlgorithms)
	if err != nil {
		return "", fmt.Errorf("%w: %w: %w", ErrUnauthenticated, errJWT, err)
	}
	var c jwt.Claims
	if err := t.Claims(v.current(), &c); err != nil {
		return "", fmt.Errorf("%w: %w: signature: %w", ErrUnauthenticated, errJWT, err)
	}
	if c.Expiry == nil {
		return "", fmt.Errorf("%w: %w: the token has no expiry", ErrUnauthenticated, errJWT)
	}
	want := jwt.Expected{Issuer: v.o.Issuer, AnyAudience: jwt.Audience{v.o.Audience}, Time: now}
	if err := c.ValidateWithLeeway(want, jwtLeeway); err != nil {
		return "", fmt.Errorf("%w: %w: %w", ErrUnauthenticated, errJWT, err)
	}
	if c.Subject == "" {
		return "", fmt.Errorf("%w: %w: the token has no subject", ErrUnauthenticated, errJWT)
	}
	return c.Subject, nil
}
