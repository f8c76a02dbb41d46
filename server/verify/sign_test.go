package verify_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/hookstream/hookstream/server/verify"
)

// TestSignHMAC checks that SignHMAC's value passes the HMAC Verifier of the same settings for
// every algorithm and encoding, fails it for another body, and that SignHMAC refuses what HMAC
// refuses.
func TestSignHMAC(t *testing.T) {
	t.Parallel()
	body := []byte(`{"event_type":"incident.created"}`)
	tests := []struct {
		name                        string
		algorithm, prefix, encoding string
	}{
		{name: "github_style", algorithm: "sha256", prefix: "sha256=", encoding: "hex"},
		{name: "sha512_base64", algorithm: "sha512", encoding: "base64"},
		{name: "upper_case_names", algorithm: "SHA256", encoding: "HEX"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := verify.SignHMAC(tt.algorithm, tt.prefix, tt.encoding, "s2", body)
			if err != nil {
				t.Fatal(err)
			}
			v, err := verify.HMAC("X-Sig", tt.algorithm, tt.prefix, tt.encoding, []string{"s1", "s2"})
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{"X-Sig": {sig}}
			if err := verify.Verify(v, h, nil, body); err != nil {
				t.Errorf("got %v for %q, want none", err, sig)
			}
			if err := verify.Verify(v, h, nil, append(body, ' ')); !errors.Is(err, verify.ErrBadCredentials) {
				t.Errorf("another body: got %v, want %v", err, verify.ErrBadCredentials)
			}
		})
	}
	refused := []struct {
		name, algorithm, encoding, secret string
		want                              error
	}{
		{name: "md5", algorithm: "md5", encoding: "hex", secret: "s"},
		{name: "base32", algorithm: "sha256", encoding: "base32", secret: "s"},
		{name: "empty_secret", algorithm: "sha256", encoding: "hex", want: verify.ErrNotConfigured},
	}
	for _, tt := range refused {
		t.Run("refuses_"+tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := verify.SignHMAC(tt.algorithm, "", tt.encoding, tt.secret, body)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Errorf("got %v, want an error (%v)", err, tt.want)
			}
		})
	}
}
