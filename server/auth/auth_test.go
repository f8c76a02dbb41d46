package auth_test

import (
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/internal/testca"
)

const (
	issuer   = "https://issuer.internal"
	audience = "hookstream"
)

func claims(sub string, exp time.Duration) jwt.Claims {
	now := time.Now()
	return jwt.Claims{Issuer: issuer, Audience: jwt.Audience{audience}, Subject: sub, IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(exp))}
}

func certificate(cn string, dns []string, uri string, email string) *x509.Certificate {
	c := &x509.Certificate{Subject: pkix.Name{CommonName: cn}, DNSNames: dns}
	if uri != "" {
		u, _ := url.Parse(uri)
		c.URIs = []*url.URL{u}
	}
	if email != "" {
		c.EmailAddresses = []string{email}
	}
	return c
}

// authenticator has principals of every kind of credential: tokens "reader-token" and
// "admin-token", certificates, and JWT subjects of key.
func authenticator(t testing.TB, key *testca.Issuer) (*auth.Authenticator, string) {
	t.Helper()
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	testca.WriteJWKS(t, jwks, key)
	v, err := auth.NewJWTVerifier(auth.JWTOptions{JWKSFile: jwks, Issuer: issuer, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.NewAuthenticator([]auth.PrincipalConfig{
		{Name: "reader", TokenDigests: [][sha256.Size]byte{sha256.Sum256([]byte("reader-token"))}, Permissions: []auth.Permission{auth.PermRead}},
		{Name: "admin", TokenDigests: [][sha256.Size]byte{sha256.Sum256([]byte("admin-token"))}, Permissions: []auth.Permission{auth.PermAdmin}},
		{Name: "cn", Certificates: []string{"CN=svc.internal"}},
		{Name: "dns", Certificates: []string{"DNS:dns.svc.internal"}},
		{Name: "uri", Certificates: []string{"URI:spiffe://cluster/ns/billing/sa/consumer"}},
		{Name: "email", Certificates: []string{"EMAIL:ops@example.com"}},
		{Name: "workload", JWTSubjects: []string{"system:serviceaccount:billing:consumer"}},
	}, v)
	if err != nil {
		t.Fatal(err)
	}
	return a, jwks
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	key, other := testca.NewIssuer(t, "k1"), testca.NewIssuer(t, "k2")
	a, _ := authenticator(t, key)
	const sub = "system:serviceaccount:billing:consumer"
	valid := key.Sign(claims(sub, time.Hour))
	parts := strings.Split(valid, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+issuer+`","aud":"`+audience+`","sub":"admin","exp":9999999999}`)) + "." + parts[2]
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: elliptic.MarshalCompressed(elliptic.P256(), key.Key.X, key.Key.Y)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	confused, _ := jwt.Signed(hs).Claims(claims(sub, time.Hour)).Serialize()
	noExpiry := claims(sub, time.Hour)
	noExpiry.Expiry = nil
	notYet := claims(sub, 2*time.Hour)
	notYet.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
	wrongIssuer := claims(sub, time.Hour)
	wrongIssuer.Issuer = "https://elsewhere"
	wrongAudience := claims(sub, time.Hour)
	wrongAudience.Audience = jwt.Audience{"other-service"}

	for _, tt := range []struct {
		name  string
		creds auth.Credentials
		want  string // principal; "" for ErrUnauthenticated
	}{
		{name: "token", creds: auth.Credentials{Authorization: "Bearer reader-token"}, want: "reader"},
		{name: "token_scheme_case", creds: auth.Credentials{Authorization: "bearer admin-token"}, want: "admin"},
		{name: "no_credentials", creds: auth.Credentials{}},
		{name: "unknown_token", creds: auth.Credentials{Authorization: "Bearer reader-token2"}},
		{name: "token_prefix", creds: auth.Credentials{Authorization: "Bearer reader-toke"}},
		{name: "empty_bearer", creds: auth.Credentials{Authorization: "Bearer "}},
		{name: "bare_scheme", creds: auth.Credentials{Authorization: "Bearer"}},
		{name: "basic_scheme", creds: auth.Credentials{Authorization: "Basic cmVhZGVyLXRva2Vu"}},
		{name: "token_without_scheme", creds: auth.Credentials{Authorization: "reader-token"}},
		{name: "token_with_trailing_space", creds: auth.Credentials{Authorization: "Bearer reader-token "}},
		{name: "certificate_cn", creds: auth.Credentials{Certificates: []*x509.Certificate{certificate("svc.internal", nil, "", "")}}, want: "cn"},
		{name: "certificate_dns", creds: auth.Credentials{Certificates: []*x509.Certificate{certificate("pod-1", []string{"x", "dns.svc.internal"}, "", "")}}, want: "dns"},
		{name: "certificate_uri", creds: auth.Credentials{Certificates: []*x509.Certificate{certificate("", nil, "spiffe://cluster/ns/billing/sa/consumer", "")}}, want: "uri"},
		{name: "certificate_email", creds: auth.Credentials{Certificates: []*x509.Certificate{certificate("", nil, "", "ops@example.com")}}, want: "email"},
		{name: "certificate_unknown", creds: auth.Credentials{Certificates: []*x509.Certificate{certificate("svc.internal.evil", []string{"svc.internal"}, "", "")}}},
		{name: "certificate_wins_over_token", creds: auth.Credentials{Authorization: "Bearer admin-token", Certificates: []*x509.Certificate{certificate("svc.internal", nil, "", "")}}, want: "cn"},
		{name: "jwt", creds: auth.Credentials{Authorization: "Bearer " + valid}, want: "workload"},
		{name: "jwt_expired", creds: auth.Credentials{Authorization: "Bearer " + key.Sign(claims(sub, -time.Hour))}},
		{name: "jwt_no_expiry", creds: auth.Credentials{Authorization: "Bearer " + key.Sign(noExpiry)}},
		{name: "jwt_not_yet_valid", creds: auth.Credentials{Authorization: "Bearer " + key.Sign(notYet)}},
		{name: "jwt_wrong_issuer", creds: auth.Credentials{Authorization: "Bearer " + key.Sign(wrongIssuer)}},
		{name: "jwt_wrong_audience", creds: auth.Credentials{Authorization: "Bearer " + key.Sign(wrongAudience)}},
		{name: "jwt_unknown_subject", creds: auth.Credentials{Authorization: "Bearer " + key.Sign(claims("someone-else", time.Hour))}},
		{name: "jwt_no_subject", creds: auth.Credentials{Authorization: "Bearer " + key.Sign(claims("", time.Hour))}},
		{name: "jwt_other_key", creds: auth.Credentials{Authorization: "Bearer " + other.Sign(claims(sub, time.Hour))}},
		{name: "jwt_alg_none", creds: auth.Credentials{Authorization: "Bearer " + none}},
		{name: "jwt_hmac_with_public_key", creds: auth.Credentials{Authorization: "Bearer " + confused}},
		{name: "jwt_tampered_payload", creds: auth.Credentials{Authorization: "Bearer " + tampered}},
		{name: "jwt_huge", creds: auth.Credentials{Authorization: "Bearer eyJ" + strings.Repeat("A", 20<<10) + ".e30.x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := a.Authenticate(tt.creds)
			if tt.want == "" {
				if !errors.Is(err, auth.ErrUnauthenticated) {
					t.Errorf("got principal %v, error %v; want ErrUnauthenticated", p, err)
				}
				return
			}
			if err != nil || p.Name != tt.want {
				t.Errorf("got principal %v, error %v; want %q", p, err, tt.want)
			}
		})
	}
}

// TestJWKSReload rotates the issuer's key: tokens of the new key are accepted once the file
// changed, without a restart, and a file that no longer loads keeps the keys in service.
func TestJWKSReload(t *testing.T) {
	t.Parallel()
	old, rotated := testca.NewIssuer(t, "old"), testca.NewIssuer(t, "new")
	a, jwks := authenticator(t, old)
	const sub = "system:serviceaccount:billing:consumer"
	byNew := auth.Credentials{Authorization: "Bearer " + rotated.Sign(claims(sub, time.Hour))}
	if _, err := a.Authenticate(byNew); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Fatalf("new key before rotation: got %v, want ErrUnauthenticated", err)
	}
	testca.WriteJWKS(t, jwks, old, rotated)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := a.Authenticate(byNew); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a token of the rotated key is still refused after the JWKS file changed")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.WriteFile(jwks, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the look-again interval
	if _, err := a.Authenticate(byNew); err != nil {
		t.Errorf("after the JWKS file broke: got %v, want the previous keys still in service", err)
	}
}

func TestNewAuthenticatorErrors(t *testing.T) {
	t.Parallel()
	tok := func(s string) [][sha256.Size]byte { return [][sha256.Size]byte{sha256.Sum256([]byte(s))} }
	for _, tt := range []struct {
		name       string
		principals []auth.PrincipalConfig
	}{
		{name: "no_name", principals: []auth.PrincipalConfig{{TokenDigests: tok("a")}}},
		{name: "same_name_twice", principals: []auth.PrincipalConfig{{Name: "a", TokenDigests: tok("a")}, {Name: "a", TokenDigests: tok("b")}}},
		{name: "no_credentials", principals: []auth.PrincipalConfig{{Name: "a", Permissions: []auth.Permission{auth.PermRead}}}},
		{name: "unknown_permission", principals: []auth.PrincipalConfig{{Name: "a", TokenDigests: tok("a"), Permissions: []auth.Permission{"write"}}}},
		{name: "bad_group_pattern", principals: []auth.PrincipalConfig{{Name: "a", TokenDigests: tok("a"), Groups: []string{"billing-["}}}},
		{name: "shared_token", principals: []auth.PrincipalConfig{{Name: "a", TokenDigests: tok("t")}, {Name: "b", TokenDigests: tok("t")}}},
		{name: "shared_certificate", principals: []auth.PrincipalConfig{{Name: "a", Certificates: []string{"CN=x"}}, {Name: "b", Certificates: []string{"CN=x"}}}},
		{name: "bad_certificate_identity", principals: []auth.PrincipalConfig{{Name: "a", Certificates: []string{"x.internal"}}}},
		{name: "empty_certificate_identity", principals: []auth.PrincipalConfig{{Name: "a", Certificates: []string{"CN="}}}},
		{name: "jwt_subjects_without_jwks", principals: []auth.PrincipalConfig{{Name: "a", JWTSubjects: []string{"s"}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := auth.NewAuthenticator(tt.principals, nil); !errors.Is(err, auth.ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}

func TestNewJWTVerifierErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	good := filepath.Join(dir, "good.json")
	testca.WriteJWKS(t, good, testca.NewIssuer(t, "k"))
	for _, tt := range []struct {
		name string
		o    auth.JWTOptions
	}{
		{name: "no_file", o: auth.JWTOptions{Issuer: issuer, Audience: audience}},
		{name: "no_issuer", o: auth.JWTOptions{JWKSFile: good, Audience: audience}},
		{name: "no_audience", o: auth.JWTOptions{JWKSFile: good, Issuer: issuer}},
		{name: "missing_file", o: auth.JWTOptions{JWKSFile: good + ".missing", Issuer: issuer, Audience: audience}},
		{name: "not_json", o: auth.JWTOptions{JWKSFile: file("bad.json", "{"), Issuer: issuer, Audience: audience}},
		{name: "no_keys", o: auth.JWTOptions{JWKSFile: file("empty.json", `{"keys":[]}`), Issuer: issuer, Audience: audience}},
		{name: "symmetric_key", o: auth.JWTOptions{JWKSFile: file("oct.json", `{"keys":[{"kty":"oct","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA","kid":"h"}]}`), Issuer: issuer, Audience: audience}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := auth.NewJWTVerifier(tt.o); !errors.Is(err, auth.ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}

// FuzzAuthenticate: no Authorization value authenticates but a configured token's or a valid
// JWT's, and none makes Authenticate panic.
func FuzzAuthenticate(f *testing.F) {
	key := testca.NewIssuer(f, "k1")
	a, _ := authenticator(f, key)
	valid := key.Sign(claims("system:serviceaccount:billing:consumer", time.Hour))
	for _, s := range []string{"", "Bearer", "Bearer ", "Bearer reader-token", "bearer admin-token", "Basic YTpi", "Bearer " + valid, "Bearer eyJ.e30.", "Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer a.b.c", "Bearer  reader-token"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, authorization string) {
		p, err := a.Authenticate(auth.Credentials{Authorization: authorization})
		if err != nil {
			if !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
			}
			return
		}
		scheme, tok, _ := strings.Cut(authorization, " ")
		if !strings.EqualFold(scheme, "Bearer") || (tok != "reader-token" && tok != "admin-token" && tok != valid) {
			t.Fatalf("%q authenticated as %q", authorization, p.Name)
		}
	})
}
