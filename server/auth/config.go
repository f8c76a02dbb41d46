package auth

import (
	"crypto/sha256"
	"fmt"
	"os"
	"sort"
	"strings"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
)

// PrincipalsFrom returns the principals of a configuration: digests as configured, and the
// digests of the tokens read from token files and from the environment (getenv), which are
// dropped as soon as they are digested. Errors wrap ErrConfig and name the principal and key,
// never a token.
func PrincipalsFrom(a config.Auth, getenv func(string) string) ([]PrincipalConfig, error) {
	names := make([]string, 0, len(a.Principals))
	for name := range a.Principals {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]PrincipalConfig, 0, len(names))
	for _, name := range names {
		c := a.Principals[name]
		p := PrincipalConfig{Name: name, Certificates: c.Certificates, JWTSubjects: c.JWTSubjects, Groups: c.Groups}
		for _, d := range c.Tokens {
			digest, err := ParseTokenDigest(d)
			if err != nil {
				return nil, fmt.Errorf("auth.principals.%s.tokens: %w", name, err)
			}
			p.TokenDigests = append(p.TokenDigests, digest)
		}
		for _, f := range c.TokenFiles {
			b, err := os.ReadFile(f)
			tok := strings.TrimSpace(string(b))
			if err != nil || tok == "" {
				return nil, fmt.Errorf("%w: auth.principals.%s.token_files: %s holds no token", ErrConfig, name, f)
			}
			p.TokenDigests = append(p.TokenDigests, sha256.Sum256([]byte(tok)))
		}
		for _, v := range c.TokenEnv {
			tok := strings.TrimSpace(getenv(v))
			if tok == "" {
				return nil, fmt.Errorf("%w: auth.principals.%s.token_env: %s is empty", ErrConfig, name, v)
			}
			p.TokenDigests = append(p.TokenDigests, sha256.Sum256([]byte(tok)))
		}
		for _, perm := range c.Permissions {
			p.Permissions = append(p.Permissions, Permission(perm))
		}
		for _, pr := range c.Providers {
			v, ok := hookstreamv1.Provider_value["PROVIDER_"+strings.ToUpper(pr)]
			if !ok || v == 0 {
				return nil, fmt.Errorf("%w: auth.principals.%s.providers: unknown provider %q (want moveapi, movement, mvmnt or listener)", ErrConfig, name, pr)
			}
			p.Providers = append(p.Providers, hookstreamv1.Provider(v))
		}
		out = append(out, p)
	}
	return out, nil
}

// FromConfig returns the authenticator of a configuration's principals (see PrincipalsFrom),
// accepting JWTs when auth.jwt.jwks_file is set. Errors wrap ErrConfig.
func FromConfig(a config.Auth, getenv func(string) string) (*Authenticator, error) {
	principals, err := PrincipalsFrom(a, getenv)
	if err != nil {
		return nil, err
	}
	var jwt *JWTVerifier
	if a.JWT != (config.JWT{}) {
		if jwt, err = NewJWTVerifier(JWTOptions{JWKSFile: a.JWT.JWKSFile, Issuer: a.JWT.Issuer, Audience: a.JWT.Audience}); err != nil {
			return nil, fmt.Errorf("auth.jwt: %w", err)
		}
	}
	return NewAuthenticator(principals, jwt)
}
