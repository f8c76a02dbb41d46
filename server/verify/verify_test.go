package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/verify"
)

// The test vector of the Svix documentation (FACTS.md).
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	otherSecret  = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM="
)

func headers(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func svixHeaders(prefix, id string, ts int64, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set(prefix+"-Id", id)
	}
	if ts != 0 {
		h.Set(prefix+"-Timestamp", fmt.Sprint(ts))
	}
	if sig != "" {
		h.Set(prefix+"-Signature", sig)
	}
	return h
}

func TestSvix(t *testing.T) {
	t.Parallel()
	at := time.Unix(vectorTS, 0)
	v, err := verify.Svix([]string{otherSecret, vectorSecret}, 0, func() time.Time { return at })
	if err != nil {
		t.Fatal(err)
	}
	sign := func(secret, id string, ts time.Time, body string) string {
		s, err := verify.Sign(secret, id, ts, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		h    http.Header
		body string
		want error
	}{
		{"vector_svix_headers", svixHeaders("Svix", vectorID, vectorTS, vectorSig), vectorBody, nil},
		{"vector_webhook_headers", svixHeaders("Webhook", vectorID, vectorTS, vectorSig), vectorBody, nil},
		{"rotation_other_secret", svixHeaders("Svix", "m1", vectorTS, sign(otherSecret, "m1", at, "{}")), "{}", nil},
		{"two_entries_second_valid", svixHeaders("Svix", vectorID, vectorTS, "v1,AAAA "+vectorSig), vectorBody, nil},
		{"unknown_version_ignored", svixHeaders("Svix", vectorID, vectorTS, "v1a,xyz "+vectorSig), vectorBody, nil},
		{"within_tolerance", svixHeaders("Svix", "m2", vectorTS-299, sign(vectorSecret, "m2", at.Add(-299*time.Second), "{}")), "{}", nil},
		{"too_old", svixHeaders("Svix", "m3", vectorTS-301, sign(vectorSecret, "m3", at.Add(-301*time.Second), "{}")), "{}", verify.ErrExpired},
		{"in_the_future", svixHeaders("Svix", "m4", vectorTS+301, sign(vectorSecret, "m4", at.Add(301*time.Second), "{}")), "{}", verify.ErrExpired},
		{"other_body", svixHeaders("Svix", vectorID, vectorTS, vectorSig), `{"test": 2432232315}`, verify.ErrBadCredentials},
		{"other_id", svixHeaders("Svix", "msg_other", vectorTS, vectorSig), vectorBody, verify.ErrBadCredentials},
		{"other_timestamp", svixHeaders("Svix", vectorID, vectorTS+1, vectorSig), vectorBody, verify.ErrBadCredentials},
		{"wrong_secret", svixHeaders("Svix", "m5", vectorTS, sign("whsec_"+base64.StdEncoding.EncodeToString([]byte("nope")), "m5", at, "{}")), "{}", verify.ErrBadCredentials},
		{"only_other_versions", svixHeaders("Svix", vectorID, vectorTS, strings.Replace(vectorSig, "v1,", "v2,", 1)), vectorBody, verify.ErrBadCredentials},
		{"signature_not_base64", svixHeaders("Svix", vectorID, vectorTS, "v1,!!!"), vectorBody, verify.ErrBadCredentials},
		{"missing_id", svixHeaders("Svix", "", vectorTS, vectorSig), vectorBody, verify.ErrMissingCredentials},
		{"missing_timestamp", svixHeaders("Svix", vectorID, 0, vectorSig), vectorBody, verify.ErrMissingCredentials},
		{"missing_signature", svixHeaders("Svix", vectorID, vectorTS, ""), vectorBody, verify.ErrMissingCredentials},
		{"no_headers", http.Header{}, vectorBody, verify.ErrMissingCredentials},
		{"timestamp_not_a_number", headers("Svix-Id", vectorID, "Svix-Timestamp", "yesterday", "Svix-Signature", vectorSig), vectorBody, verify.ErrMalformedHeader},
		{"mixed_header_families", headers("Svix-Id", vectorID, "Webhook-Timestamp", fmt.Sprint(vectorTS), "Webhook-Signature", vectorSig), vectorBody, verify.ErrMissingCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(tt.h, nil, []byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if tt.want != nil && !errors.Is(err, verify.ErrUnauthenticated) {
				t.Errorf("error %v does not wrap ErrUnauthenticated", err)
			}
		})
	}
	if _, err := verify.Svix(nil, 0, nil); !errors.Is(err, verify.ErrNotConfigured) {
		t.Errorf("no secrets: got %v, want ErrNotConfigured", err)
	}
	if _, err := verify.Svix([]string{"whsec_!!!"}, 0, nil); err == nil {
		t.Error("a secret that is not base64 was accepted")
	}
	if got := verify.SvixID(svixHeaders("Webhook", "w1", 1, "x")); got != "w1" {
		t.Errorf("SvixID = %q, want w1", got)
	}
}

func TestSignMatchesVector(t *testing.T) {
	t.Parallel()
	got, err := verify.Sign(vectorSecret, vectorID, time.Unix(vectorTS, 0), []byte(vectorBody))
	if err != nil || got != vectorSig {
		t.Errorf("Sign = %q, %v; want %q", got, err, vectorSig)
	}
}

func TestTokens(t *testing.T) {
	t.Parallel()
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	apiKey := verify.APIKey("X-Api-Key", []string{"current", "previous"})
	token := verify.Token([]string{"s3cret"})
	bearer := verify.Bearer([]string{"mwt_abc"})
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		q    url.Values
		want error
	}{
		{"apikey_current", apiKey, headers("X-Api-Key", "current"), nil, nil},
		{"apikey_previous", apiKey, headers("x-api-key", "previous"), nil, nil},
		{"apikey_wrong", apiKey, headers("X-Api-Key", "guess"), nil, verify.ErrBadCredentials},
		{"apikey_prefix_of_token", apiKey, headers("X-Api-Key", "curr"), nil, verify.ErrBadCredentials},
		{"apikey_with_whitespace", apiKey, headers("X-Api-Key", "current "), nil, verify.ErrBadCredentials},
		{"apikey_missing", apiKey, http.Header{}, nil, verify.ErrMissingCredentials},
		{"apikey_in_query_only", apiKey, http.Header{}, url.Values{"x-api-key": {"current"}}, verify.ErrMissingCredentials},
		{"apikey_not_configured", verify.APIKey("X-Api-Key", nil), headers("X-Api-Key", ""), nil, verify.ErrNotConfigured},
		{"token_query", token, http.Header{}, url.Values{"token": {"s3cret"}}, nil},
		{"token_bearer", token, headers("Authorization", "Bearer s3cret"), nil, nil},
		{"token_basic_any_user", token, headers("Authorization", basic("movement", "s3cret")), nil, nil},
		{"token_query_wrong", token, http.Header{}, url.Values{"token": {"nope"}}, verify.ErrBadCredentials},
		{"token_bearer_wrong", token, headers("Authorization", "Bearer nope"), nil, verify.ErrBadCredentials},
		{"token_basic_wrong", token, headers("Authorization", basic("u", "nope")), nil, verify.ErrBadCredentials},
		{"token_basic_not_base64", token, headers("Authorization", "Basic %%%"), nil, verify.ErrMalformedHeader},
		{"token_bearer_empty", token, headers("Authorization", "Bearer"), nil, verify.ErrMissingCredentials},
		{"token_other_scheme", token, headers("Authorization", "Digest x"), nil, verify.ErrMalformedHeader},
		{"token_missing", token, http.Header{}, nil, verify.ErrMissingCredentials},
		{"token_not_configured", verify.Token(nil), http.Header{}, url.Values{"token": {"x"}}, verify.ErrNotConfigured},
		{"bearer_ok", bearer, headers("Authorization", "Bearer mwt_abc"), nil, nil},
		{"bearer_lowercase_scheme", bearer, headers("Authorization", "bearer mwt_abc"), nil, nil},
		{"bearer_extra_spaces", bearer, headers("Authorization", "  Bearer   mwt_abc "), nil, nil},
		{"bearer_wrong", bearer, headers("Authorization", "Bearer mwt_abd"), nil, verify.ErrBadCredentials},
		{"bearer_basic_instead", bearer, headers("Authorization", basic("u", "mwt_abc")), nil, verify.ErrMalformedHeader},
		{"bearer_no_value", bearer, headers("Authorization", "Bearer "), nil, verify.ErrMalformedHeader},
		{"bearer_missing", bearer, http.Header{}, nil, verify.ErrMissingCredentials},
		{"bearer_token_in_query", bearer, http.Header{}, url.Values{"token": {"mwt_abc"}}, verify.ErrMissingCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.v.Verify(tt.h, tt.q, nil); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func mac(newHash func() hash.Hash, secret, body string) []byte {
	m := hmac.New(newHash, []byte(secret))
	m.Write([]byte(body))
	return m.Sum(nil)
}

func TestHMAC(t *testing.T) {
	t.Parallel()
	const body = `{"event_type":"incident.created"}`
	gh, err := verify.HMAC("X-Hub-Signature-256", "sha256", "sha256=", "hex", []string{"old", "new"})
	if err != nil {
		t.Fatal(err)
	}
	b64, err := verify.HMAC("X-Signature", "sha512", "", "base64", []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	good := hex.EncodeToString(mac(sha256.New, "new", body))
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		want error
	}{
		{"sha256_hex_prefix", gh, headers("X-Hub-Signature-256", "sha256="+good), nil},
		{"sha256_old_secret", gh, headers("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(sha256.New, "old", body))), nil},
		{"sha256_uppercase_hex", gh, headers("X-Hub-Signature-256", "sha256="+strings.ToUpper(good)), nil},
		{"sha256_missing_prefix", gh, headers("X-Hub-Signature-256", good), verify.ErrMalformedHeader},
		{"sha256_odd_hex", gh, headers("X-Hub-Signature-256", "sha256="+good[1:]), verify.ErrMalformedHeader},
		{"sha256_wrong_digest", gh, headers("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac(sha256.New, "new", body+" "))), verify.ErrBadCredentials},
		{"sha256_missing", gh, http.Header{}, verify.ErrMissingCredentials},
		{"sha512_base64", b64, headers("X-Signature", base64.StdEncoding.EncodeToString(mac(sha512.New, "k", body))), nil},
		{"sha512_base64_wrong_secret", b64, headers("X-Signature", base64.StdEncoding.EncodeToString(mac(sha512.New, "j", body))), verify.ErrBadCredentials},
		{"sha512_not_base64", b64, headers("X-Signature", "***"), verify.ErrMalformedHeader},
		{"all_bearer_and_hmac", verify.All(verify.Bearer([]string{"t"}), gh), headers("Authorization", "Bearer t", "X-Hub-Signature-256", "sha256="+good), nil},
		{"all_hmac_missing", verify.All(verify.Bearer([]string{"t"}), gh), headers("Authorization", "Bearer t"), verify.ErrMissingCredentials},
		{"all_bearer_wrong", verify.All(verify.Bearer([]string{"t"}), gh), headers("Authorization", "Bearer u", "X-Hub-Signature-256", "sha256="+good), verify.ErrBadCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.v.Verify(tt.h, nil, []byte(body)); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	for _, bad := range []struct{ alg, enc string }{{"md5", "hex"}, {"sha256", "base32"}} {
		if _, err := verify.HMAC("X", bad.alg, "", bad.enc, []string{"s"}); err == nil {
			t.Errorf("HMAC(%s, %s) accepted", bad.alg, bad.enc)
		}
	}
	if _, err := verify.HMAC("X", "sha256", "", "hex", nil); !errors.Is(err, verify.ErrNotConfigured) {
		t.Errorf("no secrets: got %v, want ErrNotConfigured", err)
	}
}

func ExampleSvix() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	body := []byte(`{"event_name":"job.state.completed"}`)
	now := time.Now()
	sig, _ := verify.Sign(secret, "msg_1", now, body)
	h := http.Header{}
	h.Set("svix-id", "msg_1")
	h.Set("svix-timestamp", fmt.Sprint(now.Unix()))
	h.Set("svix-signature", sig)
	v, _ := verify.Svix([]string{secret}, 0, nil)
	fmt.Println(v.Verify(h, nil, body))
	fmt.Println(errors.Is(v.Verify(h, nil, []byte(`{}`)), verify.ErrUnauthenticated))
	// Output:
	// <nil>
	// true
}
