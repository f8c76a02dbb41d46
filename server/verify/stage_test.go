package verify_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/verify"
)

// nonCanonical spells a signature entry's base64 with other padding bits: it decodes to the
// same bytes, but the library compares the text, so it can never match.
func nonCanonical(entry string) string {
	sig := strings.TrimPrefix(entry, "v1,")
	last := sig[len(sig)-2] // before the "=" of a 32-byte digest, with 2 padding bits
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	i := strings.IndexByte(alphabet, last)
	return "v1," + sig[:len(sig)-2] + string(alphabet[i^1]) + "="
}

// TestVerifyHeader checks the header stage alone, before any body exists: what it refuses at
// once (so a front door spends no place and no read on it), what it lets through to the body
// stage, and whether it has proven the sender, on hostile header sets of every scheme.
func TestVerifyHeader(t *testing.T) {
	t.Parallel()
	svix, err := verify.Svix([]string{vectorSecret}, 0, func() time.Time { return vectorTime })
	if err != nil {
		t.Fatalf("Svix: %v", err)
	}
	sig, err := verify.HMAC("X-Hub-Signature-256", "sha256", "sha256=", "hex", []string{"hmac-secret"})
	if err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	key := verify.APIKey("X-Api-Key", []string{"current-token"})
	token := verify.Token([]string{"s3cret"})
	bearer := verify.Bearer([]string{"mwt_abc"})
	both := verify.All(bearer, sig)
	ts := strconv.Itoa(vectorTS)
	goodHMAC := "sha256=" + strings.Repeat("ab", 32)
	tests := []struct {
		name       string
		v          verify.Verifier
		h          http.Header
		q          url.Values
		want       error
		wantProven bool
	}{
		{"svix_well_formed_proves_nothing", svix, svixHeader("svix", vectorID, ts, vectorSig), nil, nil, false},
		{"svix_wrong_signature_of_right_form_waits_for_body", svix, svixHeader("svix", vectorID, ts, sign(t, otherSecret, vectorID, vectorTime, "{}")), nil, nil, false},
		{"svix_webhook_family", svix, svixHeader("webhook", vectorID, ts, vectorSig), nil, nil, false},
		{"svix_good_entry_after_garbage", svix, svixHeader("svix", vectorID, ts, "v1,!!! v2,x "+vectorSig), nil, nil, false},
		{"svix_no_headers", svix, http.Header{}, nil, verify.ErrMissingCredentials, false},
		{"svix_nil_headers", svix, nil, nil, verify.ErrMissingCredentials, false},
		{"svix_missing_signature", svix, svixHeader("svix", vectorID, ts, ""), nil, verify.ErrMissingCredentials, false},
		{"svix_families_mixed", svix, header("svix-id", vectorID, "webhook-timestamp", ts, "webhook-signature", vectorSig), nil, verify.ErrMissingCredentials, false},
		{"svix_expired", svix, svixHeader("svix", vectorID, strconv.Itoa(vectorTS-301), vectorSig), nil, verify.ErrExpired, false},
		{"svix_future", svix, svixHeader("svix", vectorID, strconv.Itoa(vectorTS+301), vectorSig), nil, verify.ErrExpired, false},
		{"svix_timestamp_max_int64", svix, svixHeader("svix", vectorID, "9223372036854775807", vectorSig), nil, verify.ErrExpired, false},
		{"svix_timestamp_not_a_number", svix, svixHeader("svix", vectorID, "now", vectorSig), nil, verify.ErrMalformedHeader, false},
		{"svix_timestamp_leading_zero", svix, svixHeader("svix", vectorID, "0"+ts, vectorSig), nil, verify.ErrMalformedHeader, false},
		{"svix_no_v1_entry", svix, svixHeader("svix", vectorID, ts, "v1a,"+strings.TrimPrefix(vectorSig, "v1,")), nil, verify.ErrBadCredentials, false},
		{"svix_entry_not_base64", svix, svixHeader("svix", vectorID, ts, "v1,"+strings.Repeat("!", 44)), nil, verify.ErrBadCredentials, false},
		{"svix_entry_too_short", svix, svixHeader("svix", vectorID, ts, vectorSig[:len(vectorSig)-4]), nil, verify.ErrBadCredentials, false},
		{"svix_entry_unpadded", svix, svixHeader("svix", vectorID, ts, strings.TrimSuffix(vectorSig, "=")), nil, verify.ErrBadCredentials, false},
		{"svix_entry_non_canonical_base64", svix, svixHeader("svix", vectorID, ts, nonCanonical(vectorSig)), nil, verify.ErrBadCredentials, false},
		{"svix_entry_of_sha512_length", svix, svixHeader("svix", vectorID, ts, "v1,"+strings.Repeat("A", 86)+"=="), nil, verify.ErrBadCredentials, false},
		{"svix_huge_garbage", svix, svixHeader("svix", vectorID, ts, strings.Repeat("v1,x ", 10000)), nil, verify.ErrBadCredentials, false},
		{"api_key_right_proves", key, header("X-Api-Key", "current-token"), nil, nil, true},
		{"api_key_wrong", key, header("X-Api-Key", "guess"), nil, verify.ErrBadCredentials, false},
		{"api_key_absent", key, http.Header{}, nil, verify.ErrMissingCredentials, false},
		{"api_key_in_authorization", key, header("Authorization", "Bearer current-token"), nil, verify.ErrMissingCredentials, false},
		{"token_query_proves", token, http.Header{}, url.Values{"token": {"s3cret"}}, nil, true},
		{"token_bearer_proves", token, header("Authorization", "Bearer s3cret"), nil, nil, true},
		{"token_basic_proves", token, header("Authorization", basic("movement", "s3cret")), nil, nil, true},
		{"token_wrong_query", token, http.Header{}, url.Values{"token": {"guess"}}, verify.ErrBadCredentials, false},
		{"token_other_scheme", token, header("Authorization", "Digest s3cret"), nil, verify.ErrMalformedHeader, false},
		{"token_none", token, http.Header{}, nil, verify.ErrMissingCredentials, false},
		{"bearer_right_proves", bearer, header("Authorization", "Bearer mwt_abc"), nil, nil, true},
		{"bearer_wrong", bearer, header("Authorization", "Bearer mwt_abd"), nil, verify.ErrBadCredentials, false},
		{"bearer_basic_scheme", bearer, header("Authorization", basic("u", "mwt_abc")), nil, verify.ErrMalformedHeader, false},
		{"bearer_in_query", bearer, http.Header{}, url.Values{"token": {"mwt_abc"}}, verify.ErrMissingCredentials, false},
		{"hmac_right_form_proves_nothing", sig, header("X-Hub-Signature-256", goodHMAC), nil, nil, false},
		{"hmac_missing", sig, http.Header{}, nil, verify.ErrMissingCredentials, false},
		{"hmac_no_prefix", sig, header("X-Hub-Signature-256", strings.Repeat("ab", 32)), nil, verify.ErrMalformedHeader, false},
		{"hmac_short_digest", sig, header("X-Hub-Signature-256", "sha256=abab"), nil, verify.ErrMalformedHeader, false},
		{"hmac_not_hex", sig, header("X-Hub-Signature-256", "sha256="+strings.Repeat("zz", 32)), nil, verify.ErrMalformedHeader, false},
		{"all_bearer_proves_with_hmac_of_right_form", both, header("Authorization", "Bearer mwt_abc", "X-Hub-Signature-256", goodHMAC), nil, nil, true},
		{"all_wrong_bearer", both, header("Authorization", "Bearer nope", "X-Hub-Signature-256", goodHMAC), nil, verify.ErrBadCredentials, false},
		{"all_right_bearer_hmac_missing", both, header("Authorization", "Bearer mwt_abc"), nil, verify.ErrMissingCredentials, false},
		{"all_right_bearer_hmac_malformed", both, header("Authorization", "Bearer mwt_abc", "X-Hub-Signature-256", "sha256=zz"), nil, verify.ErrMalformedHeader, false},
		{"all_empty", verify.All(), header("Authorization", "Bearer mwt_abc"), nil, verify.ErrNotConfigured, false},
		{"not_configured", verify.Bearer(nil), header("Authorization", "Bearer "), nil, verify.ErrNotConfigured, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			proven, err := tt.v.VerifyHeader(tt.h, tt.q)
			checkErr(t, err, tt.want)
			if proven != tt.wantProven {
				t.Errorf("got proven %t, want %t", proven, tt.wantProven)
			}
		})
	}
}

// TestVerifyBody checks the body stage after a header stage that let the request through: only
// the signatures over the exact body decide, and header credentials ignore the body.
func TestVerifyBody(t *testing.T) {
	t.Parallel()
	svix, err := verify.Svix([]string{vectorSecret}, 0, func() time.Time { return vectorTime })
	if err != nil {
		t.Fatalf("Svix: %v", err)
	}
	sig, err := verify.HMAC("X-Sig", "sha256", "", "hex", []string{"hmac-secret"})
	if err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	ts := strconv.Itoa(vectorTS)
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		body string
		want error
	}{
		{"svix_signed_body", svix, svixHeader("svix", vectorID, ts, vectorSig), vectorBody, nil},
		{"svix_other_body", svix, svixHeader("svix", vectorID, ts, vectorSig), vectorBody + " ", verify.ErrBadCredentials},
		{"svix_empty_body", svix, svixHeader("svix", vectorID, ts, vectorSig), "", verify.ErrBadCredentials},
		{"svix_wrong_secret", svix, svixHeader("svix", vectorID, ts, sign(t, otherSecret, vectorID, vectorTime, vectorBody)), vectorBody, verify.ErrBadCredentials},
		{"svix_headers_gone", svix, http.Header{}, vectorBody, verify.ErrMissingCredentials},
		{"hmac_signed_body", sig, header("X-Sig", hex.EncodeToString(mac(sha256.New, "hmac-secret", "{}"))), "{}", nil},
		{"hmac_other_body", sig, header("X-Sig", hex.EncodeToString(mac(sha256.New, "hmac-secret", "{}"))), "{ }", verify.ErrBadCredentials},
		{"api_key_ignores_body", verify.APIKey("X-Api-Key", []string{"k"}), header("X-Api-Key", "k"), "\x00not json", nil},
		{"token_ignores_body", verify.Token([]string{"k"}), header("Authorization", "Bearer k"), "", nil},
		{"bearer_ignores_body", verify.Bearer([]string{"k"}), header("Authorization", "Bearer k"), "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := tt.v.VerifyHeader(tt.h, nil); err != nil && tt.want == nil {
				t.Fatalf("header stage: got error %v, want nil", err)
			}
			checkErr(t, tt.v.VerifyBody(tt.h, []byte(tt.body)), tt.want)
		})
	}
}
