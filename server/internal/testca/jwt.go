package testca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Issuer is a JWT issuer's signing key (ECDSA P-256, ES256), whose public half tests publish
// in a JWKS file.
type Issuer struct {
	t testing.TB
	// Key is the private key.
	Key *ecdsa.PrivateKey
	// KeyID is the "kid" of the key, in the JWKS and in the tokens' headers.
	KeyID string
}

// NewIssuer makes an issuer key with key id kid.
func NewIssuer(t testing.TB, kid string) *Issuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Issuer{t: t, Key: k, KeyID: kid}
}

// WriteJWKS writes the public keys of issuers as a JWKS file at path, through a rename so that
// a reader never sees half a file.
func WriteJWKS(t testing.TB, path string, issuers ...*Issuer) {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range issuers {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.Key.PublicKey, KeyID: k.KeyID, Algorithm: string(jose.ES256), Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// Sign returns a compact JWT of claims signed by the issuer.
func (k *Issuer) Sign(claims any) string {
	k.t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.Key, KeyID: k.KeyID}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		k.t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		k.t.Fatal(err)
	}
	return tok
}
