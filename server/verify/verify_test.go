package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hookstream/hookstream/server/verify"
)

// The test vector of the Svix documentation (../shared/providers/FACTS.md).
const (
	vectorSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTS     = 1614265330
	vectorBody   = `{"test": 2432232314}`
	vectorSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	// otherSecret is a second secret, as during a rotation.
	otherSecret = "whsec_c2Vjb25kLXNlY3JldC1mb3Itcm90YXRpb24tdGVzdHM="
)

// vectorTime is the clock of the Svix tests: the moment the test vector was signed.
var vectorTime = time.Unix(vectorTS, 0)

// checkErr fails unless got matches want: nil for nil, else an error for which errors.Is holds
// for want and for ErrUnauthenticated.
func checkErr(t *testing.T, got, want error) {
	t.Helper()
	if want == nil {
		if got != nil {
			t.Errorf("got error %v, want nil", got)
		}
		return
	}
	if !errors.Is(got, want) {
		t.Errorf("got error %v, want %v", got, want)
	}
	if !errors.Is(got, verify.ErrUnauthenticated) {
		t.Errorf("got error %v, want it to wrap ErrUnauthenticated", got)
	}
}

// header builds an http.Header with Set, so keys are canonical as net/http makes them.
func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// svixHeader builds the Svix headers of family ("svix" or "webhook"); empty values are left out.
func svixHeader(family, id, ts, sig string) http.Header {
	h := http.Header{}
	for _, kv := range [][2]string{{"-id", id}, {"-timestamp", ts}, {"-signature", sig}} {
		if kv[1] != "" {
			h.Set(family+kv[0], kv[1])
		}
	}
	return h
}

func sign(t *testing.T, secret, id string, at time.Time, body string) string {
	t.Helper()
	sig, err := verify.Sign(secret, id, at, []byte(body))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return sig
}

func unix(at time.Time) string { return strconv.FormatInt(at.Unix(), 10) }

func TestSentinels(t *testing.T) {
	t.Parallel()
	sentinels := map[string]error{
		"missing_credentials": verify.ErrMissingCredentials,
		"bad_credentials":     verify.ErrBadCredentials,
		"expired":             verify.ErrExpired,
		"malformed_header":    verify.ErrMalformedHeader,
		"not_configured":      verify.ErrNotConfigured,
	}
	for name, err := range sentinels {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if !errors.Is(err, verify.ErrUnauthenticated) {
				t.Errorf("%v does not wrap ErrUnauthenticated", err)
			}
			for other, o := range sentinels {
				if other != name && errors.Is(err, o) {
					t.Errorf("%v also matches %v", err, o)
				}
			}
		})
	}
}

func TestSvix(t *testing.T) {
	t.Parallel()
	v, err := verify.Svix([]string{otherSecret, vectorSecret}, 0, func() time.Time { return vectorTime })
	if err != nil {
		t.Fatalf("Svix: %v", err)
	}
	ts := strconv.Itoa(vectorTS)
	at := func(d time.Duration) (time.Time, string) { return vectorTime.Add(d), unix(vectorTime.Add(d)) }
	old, oldTS := at(-300 * time.Second)
	tooOld, tooOldTS := at(-301 * time.Second)
	soon, soonTS := at(300 * time.Second)
	future, futureTS := at(301 * time.Second)
	wrongSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("not-the-secret"))
	tests := []struct {
		name string
		h    http.Header
		body string
		want error
	}{
		{"vector_svix_headers", svixHeader("svix", vectorID, ts, vectorSig), vectorBody, nil},
		{"vector_webhook_headers", svixHeader("webhook", vectorID, ts, vectorSig), vectorBody, nil},
		{"vector_uppercase_header_names", header("SVIX-ID", vectorID, "SVIX-TIMESTAMP", ts, "SVIX-SIGNATURE", vectorSig), vectorBody, nil},
		{"rotation_first_secret", svixHeader("svix", "msg_1", ts, sign(t, otherSecret, "msg_1", vectorTime, "{}")), "{}", nil},
		{"rotation_second_secret", svixHeader("svix", "msg_1", ts, sign(t, vectorSecret, "msg_1", vectorTime, "{}")), "{}", nil},
		{"rotation_wrong_entry_then_right", svixHeader("svix", vectorID, ts, "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= "+vectorSig), vectorBody, nil},
		{"rotation_right_entry_then_wrong", svixHeader("svix", vectorID, ts, vectorSig+" v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), vectorBody, nil},
		{"rotation_unreadable_entry_then_right", svixHeader("svix", vectorID, ts, "v1,!!! "+vectorSig), vectorBody, nil},
		{"other_versions_ignored", svixHeader("svix", vectorID, ts, "v1a,c2lnbmF0dXJl v2,eHl6 "+vectorSig), vectorBody, nil},
		{"only_v1a_entries", svixHeader("svix", vectorID, ts, "v1a,c2lnbmF0dXJl v1a,eHl6"), vectorBody, verify.ErrBadCredentials},
		{"right_signature_as_v1a", svixHeader("svix", vectorID, ts, strings.Replace(vectorSig, "v1,", "v1a,", 1)), vectorBody, verify.ErrBadCredentials},
		{"right_signature_without_version", svixHeader("svix", vectorID, ts, strings.TrimPrefix(vectorSig, "v1,")), vectorBody, verify.ErrBadCredentials},
		{"tolerance_edge_past", svixHeader("svix", "msg_2", oldTS, sign(t, vectorSecret, "msg_2", old, "{}")), "{}", nil},
		{"tolerance_edge_future", svixHeader("svix", "msg_2", soonTS, sign(t, vectorSecret, "msg_2", soon, "{}")), "{}", nil},
		{"expired_too_old", svixHeader("svix", "msg_3", tooOldTS, sign(t, vectorSecret, "msg_3", tooOld, "{}")), "{}", verify.ErrExpired},
		{"expired_in_the_future", svixHeader("svix", "msg_4", futureTS, sign(t, vectorSecret, "msg_4", future, "{}")), "{}", verify.ErrExpired},
		{"expired_webhook_headers", svixHeader("webhook", "msg_3", tooOldTS, sign(t, vectorSecret, "msg_3", tooOld, "{}")), "{}", verify.ErrExpired},
		{"expired_zero", svixHeader("svix", vectorID, "0", vectorSig), vectorBody, verify.ErrExpired},
		{"expired_negative", svixHeader("svix", vectorID, "-1614265330", vectorSig), vectorBody, verify.ErrExpired},
		{"expired_milliseconds", svixHeader("svix", vectorID, ts+"000", vectorSig), vectorBody, verify.ErrExpired},
		{"expired_max_int64", svixHeader("svix", vectorID, "9223372036854775807", vectorSig), vectorBody, verify.ErrExpired},
		{"expired_min_int64", svixHeader("svix", vectorID, "-9223372036854775808", vectorSig), vectorBody, verify.ErrExpired},
		{"other_body", svixHeader("svix", vectorID, ts, vectorSig), `{"test": 2432232315}`, verify.ErrBadCredentials},
		{"body_with_trailing_newline", svixHeader("svix", vectorID, ts, vectorSig), vectorBody + "\n", verify.ErrBadCredentials},
		{"other_id", svixHeader("svix", "msg_other", ts, vectorSig), vectorBody, verify.ErrBadCredentials},
		{"other_timestamp", svixHeader("svix", vectorID, strconv.Itoa(vectorTS+1), vectorSig), vectorBody, verify.ErrBadCredentials},
		{"wrong_secret", svixHeader("svix", "msg_5", ts, sign(t, wrongSecret, "msg_5", vectorTime, "{}")), "{}", verify.ErrBadCredentials},
		{"signature_not_base64", svixHeader("svix", vectorID, ts, "v1,!!!"), vectorBody, verify.ErrBadCredentials},
		{"signature_empty_entry", svixHeader("svix", vectorID, ts, "v1,"), vectorBody, verify.ErrBadCredentials},
		{"signature_without_comma", svixHeader("svix", vectorID, ts, "garbage"), vectorBody, verify.ErrBadCredentials},
		{"missing_id", svixHeader("svix", "", ts, vectorSig), vectorBody, verify.ErrMissingCredentials},
		{"missing_timestamp", svixHeader("svix", vectorID, "", vectorSig), vectorBody, verify.ErrMissingCredentials},
		{"missing_signature", svixHeader("svix", vectorID, ts, ""), vectorBody, verify.ErrMissingCredentials},
		{"missing_webhook_id", svixHeader("webhook", "", ts, vectorSig), vectorBody, verify.ErrMissingCredentials},
		{"missing_webhook_timestamp", svixHeader("webhook", vectorID, "", vectorSig), vectorBody, verify.ErrMissingCredentials},
		{"missing_webhook_signature", svixHeader("webhook", vectorID, ts, ""), vectorBody, verify.ErrMissingCredentials},
		{"missing_all_headers", http.Header{}, vectorBody, verify.ErrMissingCredentials},
		{"families_not_mixed", header("svix-id", vectorID, "webhook-timestamp", ts, "webhook-signature", vectorSig), vectorBody, verify.ErrMissingCredentials},
		{"svix_family_preferred", header("svix-id", vectorID, "svix-timestamp", ts, "svix-signature", vectorSig, "webhook-id", "x", "webhook-timestamp", "x", "webhook-signature", "x"), vectorBody, nil},
		{"no_fallback_when_svix_family_wrong", header("svix-id", "x", "svix-timestamp", ts, "svix-signature", vectorSig, "webhook-id", vectorID, "webhook-timestamp", ts, "webhook-signature", vectorSig), vectorBody, verify.ErrBadCredentials},
		{"timestamp_not_a_number", svixHeader("svix", vectorID, "yesterday", vectorSig), vectorBody, verify.ErrMalformedHeader},
		{"timestamp_rfc3339", svixHeader("svix", vectorID, vectorTime.UTC().Format(time.RFC3339), vectorSig), vectorBody, verify.ErrMalformedHeader},
		{"timestamp_fraction", svixHeader("svix", vectorID, ts+".5", vectorSig), vectorBody, verify.ErrMalformedHeader},
		{"timestamp_plus_sign", svixHeader("svix", vectorID, "+"+ts, vectorSig), vectorBody, verify.ErrMalformedHeader},
		{"timestamp_leading_zero", svixHeader("svix", vectorID, "0"+ts, vectorSig), vectorBody, verify.ErrMalformedHeader},
		{"timestamp_with_space", svixHeader("svix", vectorID, ts+" ", vectorSig), vectorBody, verify.ErrMalformedHeader},
		{"timestamp_overflow", svixHeader("svix", vectorID, "99999999999999999999", vectorSig), vectorBody, verify.ErrMalformedHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, verify.Verify(v, tt.h, nil, []byte(tt.body)), tt.want)
		})
	}
}

func TestSvixTolerance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tolerance time.Duration
		skew      time.Duration // timestamp minus now
		want      error
	}{
		{"default_accepts_299s_old", 0, -299 * time.Second, nil},
		{"default_rejects_6m_old", 0, -6 * time.Minute, verify.ErrExpired},
		{"default_rejects_6m_ahead", 0, 6 * time.Minute, verify.ErrExpired},
		{"negative_means_default", -time.Hour, -6 * time.Minute, verify.ErrExpired},
		{"one_minute_accepts_59s_old", time.Minute, -59 * time.Second, nil},
		{"one_minute_rejects_61s_old", time.Minute, -61 * time.Second, verify.ErrExpired},
		{"one_minute_rejects_61s_ahead", time.Minute, 61 * time.Second, verify.ErrExpired},
		// The library's own check is fixed at 5 minutes: a longer tolerance must still hold.
		{"ten_minutes_accepts_9m_old", 10 * time.Minute, -9 * time.Minute, nil},
		{"ten_minutes_accepts_9m_ahead", 10 * time.Minute, 9 * time.Minute, nil},
		{"ten_minutes_rejects_11m_old", 10 * time.Minute, -11 * time.Minute, verify.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := verify.Svix([]string{vectorSecret}, tt.tolerance, func() time.Time { return vectorTime })
			if err != nil {
				t.Fatalf("Svix: %v", err)
			}
			at := vectorTime.Add(tt.skew)
			h := svixHeader("svix", "msg_t", unix(at), sign(t, vectorSecret, "msg_t", at, "{}"))
			checkErr(t, verify.Verify(v, h, nil, []byte("{}")), tt.want)
		})
	}
}

func TestSvixWallClock(t *testing.T) {
	t.Parallel()
	v, err := verify.Svix([]string{vectorSecret}, 0, nil)
	if err != nil {
		t.Fatalf("Svix: %v", err)
	}
	now := time.Now()
	if err := verify.Verify(v, svixHeader("svix", "msg_w", unix(now), sign(t, vectorSecret, "msg_w", now, "{}")), nil, []byte("{}")); err != nil {
		t.Errorf("signed now: got error %v, want nil", err)
	}
	// The test vector was signed in 2021.
	checkErr(t, verify.Verify(v, svixHeader("svix", vectorID, strconv.Itoa(vectorTS), vectorSig), nil, []byte(vectorBody)), verify.ErrExpired)
}

func TestSvixSecrets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secrets []string
		wantErr bool
		wantIs  error // checked with errors.Is when not nil
	}{
		{"nil", nil, true, verify.ErrNotConfigured},
		{"empty_list", []string{}, true, verify.ErrNotConfigured},
		{"empty_secret", []string{""}, true, nil},
		{"prefix_only", []string{"whsec_"}, true, nil},
		{"not_base64", []string{"whsec_!!!"}, true, nil},
		{"one_bad_among_good", []string{vectorSecret, "whsec_%%%"}, true, nil},
		{"with_prefix", []string{vectorSecret}, false, nil},
		{"bare_base64", []string{strings.TrimPrefix(vectorSecret, "whsec_")}, false, nil},
		{"surrounding_white_space", []string{" " + vectorSecret + "\n"}, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := verify.Svix(tt.secrets, 0, func() time.Time { return vectorTime })
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("got error %v, want error: %t", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("got error %v, want %v", err, tt.wantIs)
			}
			if err != nil {
				if v != nil {
					t.Errorf("got a Verifier with error %v, want nil", err)
				}
				return
			}
			checkErr(t, verify.Verify(v, svixHeader("svix", vectorID, strconv.Itoa(vectorTS), vectorSig), nil, []byte(vectorBody)), nil)
		})
	}
}

func TestSign(t *testing.T) {
	t.Parallel()
	v, err := verify.Svix([]string{vectorSecret}, 0, func() time.Time { return vectorTime })
	if err != nil {
		t.Fatalf("Svix: %v", err)
	}
	tests := []struct {
		name   string
		secret string
		id     string
		at     time.Time
		body   string
	}{
		{"vector", vectorSecret, vectorID, vectorTime, vectorBody},
		{"bare_secret", strings.TrimPrefix(vectorSecret, "whsec_"), vectorID, vectorTime, vectorBody},
		{"sub_second_timestamp", vectorSecret, "msg_ns", vectorTime.Add(999 * time.Millisecond), `{"a":1}`},
		{"empty_body", vectorSecret, "msg_empty", vectorTime, ""},
		{"binary_body", vectorSecret, "msg_bin", vectorTime, "\x00\xff\n"},
		{"id_with_dots", vectorSecret, "a.b.c", vectorTime, "{}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sig, err := verify.Sign(tt.secret, tt.id, tt.at, []byte(tt.body))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			for _, family := range []string{"svix", "webhook"} {
				h := svixHeader(family, tt.id, unix(tt.at), sig)
				if err := verify.Verify(v, h, nil, []byte(tt.body)); err != nil {
					t.Errorf("%s headers: got error %v, want nil", family, err)
				}
			}
		})
	}

	t.Run("test_vector", func(t *testing.T) {
		t.Parallel()
		got, err := verify.Sign(vectorSecret, vectorID, vectorTime, []byte(vectorBody))
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if diff := cmp.Diff(vectorSig, got); diff != "" {
			t.Errorf("Sign mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("bad_secret", func(t *testing.T) {
		t.Parallel()
		for _, secret := range []string{"", "whsec_", "whsec_!!!"} {
			if got, err := verify.Sign(secret, vectorID, vectorTime, nil); err == nil {
				t.Errorf("Sign(%q): got %q, want an error", secret, got)
			}
		}
	})
}

func TestSvixID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.Header
		want string
	}{
		{"svix", header("svix-id", "msg_1"), "msg_1"},
		{"webhook", header("webhook-id", "msg_2"), "msg_2"},
		{"svix_preferred", header("webhook-id", "msg_2", "svix-id", "msg_1"), "msg_1"},
		{"none", http.Header{}, ""},
		{"nil_header", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, verify.SvixID(tt.h)); diff != "" {
				t.Errorf("SvixID mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	v := verify.APIKey("X-Api-Key", []string{"current-token", "previous-token"})
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		q    url.Values
		want error
	}{
		{"current_token", v, header("X-Api-Key", "current-token"), nil, nil},
		{"previous_token", v, header("X-Api-Key", "previous-token"), nil, nil},
		{"header_name_lowercase", v, header("x-api-key", "current-token"), nil, nil},
		{"header_name_uppercase", v, header("X-API-KEY", "current-token"), nil, nil},
		{"configured_name_lowercase", verify.APIKey("x-api-key", []string{"current-token"}), header("X-Api-Key", "current-token"), nil, nil},
		{"wrong_token", v, header("X-Api-Key", "guess"), nil, verify.ErrBadCredentials},
		{"prefix_of_token", v, header("X-Api-Key", "current"), nil, verify.ErrBadCredentials},
		{"token_with_suffix", v, header("X-Api-Key", "current-token2"), nil, verify.ErrBadCredentials},
		{"token_other_case", v, header("X-Api-Key", "CURRENT-TOKEN"), nil, verify.ErrBadCredentials},
		{"token_trailing_space", v, header("X-Api-Key", "current-token "), nil, verify.ErrBadCredentials},
		{"token_leading_space", v, header("X-Api-Key", " current-token"), nil, verify.ErrBadCredentials},
		{"both_tokens_joined", v, header("X-Api-Key", "current-token,previous-token"), nil, verify.ErrBadCredentials},
		{"missing_header", v, http.Header{}, nil, verify.ErrMissingCredentials},
		{"empty_header", v, http.Header{"X-Api-Key": {""}}, nil, verify.ErrMissingCredentials},
		{"other_header", v, header("Authorization", "Bearer current-token"), nil, verify.ErrMissingCredentials},
		{"token_in_query", v, http.Header{}, url.Values{"x-api-key": {"current-token"}}, verify.ErrMissingCredentials},
		{"no_tokens_configured", verify.APIKey("X-Api-Key", nil), header("X-Api-Key", "current-token"), nil, verify.ErrNotConfigured},
		{"only_empty_token_configured", verify.APIKey("X-Api-Key", []string{""}), http.Header{"X-Api-Key": {""}}, nil, verify.ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, verify.Verify(tt.v, tt.h, tt.q, nil), tt.want)
		})
	}
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func TestToken(t *testing.T) {
	t.Parallel()
	v := verify.Token([]string{"s3cret", "old:s3cret"})
	auth := func(value string) http.Header { return header("Authorization", value) }
	query := func(token string) url.Values { return url.Values{"token": {token}} }
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		q    url.Values
		want error
	}{
		{"query", v, http.Header{}, query("s3cret"), nil},
		{"query_previous_token", v, http.Header{}, query("old:s3cret"), nil},
		{"bearer", v, auth("Bearer s3cret"), nil, nil},
		{"bearer_lowercase_scheme", v, auth("bearer s3cret"), nil, nil},
		{"basic", v, auth(basic("movement", "s3cret")), nil, nil},
		{"basic_other_user", v, auth(basic("anyone", "s3cret")), nil, nil},
		{"basic_empty_user", v, auth(basic("", "s3cret")), nil, nil},
		{"basic_password_with_colon", v, auth(basic("u", "old:s3cret")), nil, nil},
		{"basic_uppercase_scheme", v, auth(strings.Replace(basic("u", "s3cret"), "Basic", "BASIC", 1)), nil, nil},
		{"query_right_authorization_wrong", v, auth("Bearer nope"), query("s3cret"), nil},
		{"query_wrong_authorization_right", v, auth("Bearer s3cret"), query("nope"), nil},
		{"query_wrong", v, http.Header{}, query("nope"), verify.ErrBadCredentials},
		{"query_prefix_of_token", v, http.Header{}, query("s3cre"), verify.ErrBadCredentials},
		{"bearer_wrong", v, auth("Bearer nope"), nil, verify.ErrBadCredentials},
		{"basic_wrong", v, auth(basic("movement", "nope")), nil, verify.ErrBadCredentials},
		{"basic_secret_as_user", v, auth(basic("s3cret", "")), nil, verify.ErrBadCredentials},
		{"query_wrong_authorization_malformed", v, auth("Basic %%%"), query("nope"), verify.ErrBadCredentials},
		{"missing", v, http.Header{}, nil, verify.ErrMissingCredentials},
		{"empty_query_token", v, http.Header{}, query(""), verify.ErrMissingCredentials},
		{"token_in_other_parameter", v, http.Header{}, url.Values{"secret": {"s3cret"}}, verify.ErrMissingCredentials},
		{"token_in_other_header", v, header("X-Token", "s3cret"), nil, verify.ErrMissingCredentials},
		{"bearer_without_value", v, auth("Bearer"), nil, verify.ErrMalformedHeader},
		{"bearer_only_spaces", v, auth("Bearer    "), nil, verify.ErrMalformedHeader},
		{"basic_not_base64", v, auth("Basic %%%"), nil, verify.ErrMalformedHeader},
		{"basic_without_colon", v, auth("Basic " + base64.StdEncoding.EncodeToString([]byte("s3cret"))), nil, verify.ErrMalformedHeader},
		{"other_scheme", v, auth("Digest s3cret"), nil, verify.ErrMalformedHeader},
		{"secret_without_scheme", v, auth("s3cret"), nil, verify.ErrMalformedHeader},
		{"no_tokens_configured", verify.Token(nil), http.Header{}, query("s3cret"), verify.ErrNotConfigured},
		{"only_empty_token_configured", verify.Token([]string{""}), http.Header{}, query(""), verify.ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, verify.Verify(tt.v, tt.h, tt.q, nil), tt.want)
		})
	}
}

func TestBearer(t *testing.T) {
	t.Parallel()
	v := verify.Bearer([]string{"mwt_abc", "mwt_old"})
	auth := func(value string) http.Header { return header("Authorization", value) }
	// A JWT-shaped token is only ever compared as a string: a JWT with any claims that is not
	// one of the configured tokens is refused.
	const jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJtd3RfYWJjIn0."
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		q    url.Values
		want error
	}{
		{"ok", v, auth("Bearer mwt_abc"), nil, nil},
		{"previous_token", v, auth("Bearer mwt_old"), nil, nil},
		{"lowercase_scheme", v, auth("bearer mwt_abc"), nil, nil},
		{"uppercase_scheme", v, auth("BEARER mwt_abc"), nil, nil},
		{"extra_spaces", v, auth("  Bearer    mwt_abc  "), nil, nil},
		{"jwt_shaped_token_configured", verify.Bearer([]string{jwt}), auth("Bearer " + jwt), nil, nil},
		{"wrong", v, auth("Bearer mwt_abd"), nil, verify.ErrBadCredentials},
		{"prefix_of_token", v, auth("Bearer mwt_ab"), nil, verify.ErrBadCredentials},
		{"token_other_case", v, auth("Bearer MWT_ABC"), nil, verify.ErrBadCredentials},
		{"token_with_inner_space", v, auth("Bearer mwt_abc mwt_abc"), nil, verify.ErrBadCredentials},
		{"jwt_not_parsed", v, auth("Bearer " + jwt), nil, verify.ErrBadCredentials},
		{"missing", v, http.Header{}, nil, verify.ErrMissingCredentials},
		{"empty_header", v, http.Header{"Authorization": {""}}, nil, verify.ErrMissingCredentials},
		{"blank_header", v, http.Header{"Authorization": {"   "}}, nil, verify.ErrMissingCredentials},
		{"token_in_query", v, http.Header{}, url.Values{"token": {"mwt_abc"}}, verify.ErrMissingCredentials},
		{"basic_instead", v, auth(basic("u", "mwt_abc")), nil, verify.ErrMalformedHeader},
		{"without_value", v, auth("Bearer"), nil, verify.ErrMalformedHeader},
		{"without_scheme", v, auth("mwt_abc"), nil, verify.ErrMalformedHeader},
		{"scheme_glued_to_token", v, auth("Bearermwt_abc"), nil, verify.ErrMalformedHeader},
		{"no_tokens_configured", verify.Bearer(nil), auth("Bearer mwt_abc"), nil, verify.ErrNotConfigured},
		{"only_empty_token_configured", verify.Bearer([]string{""}), auth("Bearer "), nil, verify.ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, verify.Verify(tt.v, tt.h, tt.q, nil), tt.want)
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
		t.Fatalf("HMAC: %v", err)
	}
	b64, err := verify.HMAC("X-Signature", "sha512", "", "base64", []string{"k"})
	if err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	good := hex.EncodeToString(mac(sha256.New, "new", body))
	good512 := base64.StdEncoding.EncodeToString(mac(sha512.New, "k", body))
	ghHeader := func(v string) http.Header { return header("X-Hub-Signature-256", v) }
	b64Header := func(v string) http.Header { return header("X-Signature", v) }
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		body string
		want error
	}{
		{"sha256_hex_prefix", gh, ghHeader("sha256=" + good), body, nil},
		{"sha256_rotation_old_secret", gh, ghHeader("sha256=" + hex.EncodeToString(mac(sha256.New, "old", body))), body, nil},
		{"sha256_uppercase_hex", gh, ghHeader("sha256=" + strings.ToUpper(good)), body, nil},
		{"sha256_header_name_lowercase", gh, header("x-hub-signature-256", "sha256="+good), body, nil},
		{"sha256_missing_header", gh, http.Header{}, body, verify.ErrMissingCredentials},
		{"sha256_empty_header", gh, http.Header{"X-Hub-Signature-256": {""}}, body, verify.ErrMissingCredentials},
		{"sha256_missing_prefix", gh, ghHeader(good), body, verify.ErrMalformedHeader},
		{"sha256_other_prefix", gh, ghHeader("sha1=" + good), body, verify.ErrMalformedHeader},
		{"sha256_uppercase_prefix", gh, ghHeader("SHA256=" + good), body, verify.ErrMalformedHeader},
		{"sha256_odd_length_hex", gh, ghHeader("sha256=" + good[1:]), body, verify.ErrMalformedHeader},
		{"sha256_truncated_hex", gh, ghHeader("sha256=" + good[2:]), body, verify.ErrMalformedHeader},
		{"sha256_not_hex", gh, ghHeader("sha256=" + strings.Repeat("zz", 32)), body, verify.ErrMalformedHeader},
		{"sha256_base64_instead_of_hex", gh, ghHeader("sha256=" + base64.StdEncoding.EncodeToString(mac(sha256.New, "new", body))), body, verify.ErrMalformedHeader},
		{"sha256_wrong_digest", gh, ghHeader("sha256=" + hex.EncodeToString(mac(sha256.New, "new", body+" "))), body, verify.ErrBadCredentials},
		{"sha256_wrong_secret", gh, ghHeader("sha256=" + hex.EncodeToString(mac(sha256.New, "other", body))), body, verify.ErrBadCredentials},
		{"sha256_other_body", gh, ghHeader("sha256=" + good), body + "\n", verify.ErrBadCredentials},
		{"sha512_base64_no_prefix", b64, b64Header(good512), body, nil},
		{"sha512_base64_wrong_secret", b64, b64Header(base64.StdEncoding.EncodeToString(mac(sha512.New, "j", body))), body, verify.ErrBadCredentials},
		{"sha512_base64_other_body", b64, b64Header(good512), "{}", verify.ErrBadCredentials},
		{"sha512_not_base64", b64, b64Header("***"), body, verify.ErrMalformedHeader},
		{"sha512_base64_unpadded", b64, b64Header(strings.TrimRight(good512, "=")), body, verify.ErrMalformedHeader},
		{"sha512_given_sha256", b64, b64Header(base64.StdEncoding.EncodeToString(mac(sha256.New, "k", body))), body, verify.ErrMalformedHeader},
		{"sha512_missing_header", b64, http.Header{}, body, verify.ErrMissingCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, verify.Verify(tt.v, tt.h, nil, []byte(tt.body)), tt.want)
		})
	}
}

func TestHMACConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                        string
		header, alg, prefix, encode string
		secrets                     []string
		wantErr                     bool
		wantIs                      error // checked with errors.Is when not nil
	}{
		{"sha256_hex", "X-Sig", "sha256", "sha256=", "hex", []string{"s"}, false, nil},
		{"sha512_base64", "X-Sig", "sha512", "", "base64", []string{"s"}, false, nil},
		{"names_any_case", "X-Sig", "SHA256", "", "HEX", []string{"s"}, false, nil},
		{"unknown_algorithm", "X-Sig", "md5", "", "hex", []string{"s"}, true, nil},
		{"sha1_refused", "X-Sig", "sha1", "", "hex", []string{"s"}, true, nil},
		{"empty_algorithm", "X-Sig", "", "", "hex", []string{"s"}, true, nil},
		{"unknown_encoding", "X-Sig", "sha256", "", "base32", []string{"s"}, true, nil},
		{"empty_encoding", "X-Sig", "sha256", "", "", []string{"s"}, true, nil},
		{"empty_header", "", "sha256", "", "hex", []string{"s"}, true, nil},
		{"no_secrets", "X-Sig", "sha256", "", "hex", nil, true, verify.ErrNotConfigured},
		{"only_empty_secret", "X-Sig", "sha256", "", "hex", []string{""}, true, verify.ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := verify.HMAC(tt.header, tt.alg, tt.prefix, tt.encode, tt.secrets)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("got error %v, want error: %t", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("got error %v, want %v", err, tt.wantIs)
			}
			if err != nil && v != nil {
				t.Errorf("got a Verifier with error %v, want nil", err)
			}
		})
	}
}

func TestAll(t *testing.T) {
	t.Parallel()
	const body = `{"event_type":"incident.created"}`
	sig, err := verify.HMAC("X-Hub-Signature-256", "sha256", "sha256=", "hex", []string{"hmac-secret"})
	if err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	v := verify.All(verify.Bearer([]string{"mwt_abc"}), sig)
	good := "sha256=" + hex.EncodeToString(mac(sha256.New, "hmac-secret", body))
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		want error
	}{
		{"both_pass", v, header("Authorization", "Bearer mwt_abc", "X-Hub-Signature-256", good), nil},
		{"single_verifier", verify.All(sig), header("X-Hub-Signature-256", good), nil},
		{"bearer_wrong", v, header("Authorization", "Bearer nope", "X-Hub-Signature-256", good), verify.ErrBadCredentials},
		{"bearer_missing", v, header("X-Hub-Signature-256", good), verify.ErrMissingCredentials},
		{"hmac_missing", v, header("Authorization", "Bearer mwt_abc"), verify.ErrMissingCredentials},
		{"hmac_wrong", v, header("Authorization", "Bearer mwt_abc", "X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64)), verify.ErrBadCredentials},
		{"nothing_sent", v, http.Header{}, verify.ErrMissingCredentials},
		{"no_verifiers", verify.All(), header("Authorization", "Bearer mwt_abc"), verify.ErrNotConfigured},
		{"nil_verifier", verify.All(verify.Bearer([]string{"mwt_abc"}), nil), header("Authorization", "Bearer mwt_abc"), verify.ErrNotConfigured},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkErr(t, verify.Verify(tt.v, tt.h, nil, []byte(body)), tt.want)
		})
	}
}

// TestErrorsKeepSecrets checks that no error text carries a configured secret, a credential that
// was sent, or the body: error texts end up in logs.
func TestErrorsKeepSecrets(t *testing.T) {
	t.Parallel()
	const (
		secret = "c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw"
		sent   = "sent-credential-that-must-not-leak"
		body   = `{"body":"that-must-not-leak"}`
	)
	svix, err := verify.Svix([]string{"whsec_" + secret + "=="}, 0, func() time.Time { return vectorTime })
	if err != nil {
		t.Fatalf("Svix: %v", err)
	}
	sig, err := verify.HMAC("X-Sig", "sha256", "", "hex", []string{secret})
	if err != nil {
		t.Fatalf("HMAC: %v", err)
	}
	tests := []struct {
		name string
		v    verify.Verifier
		h    http.Header
		q    url.Values
	}{
		{"svix", svix, svixHeader("svix", sent, strconv.Itoa(vectorTS), "v1,"+sent), nil},
		{"svix_malformed", svix, svixHeader("svix", sent, sent, sent), nil},
		{"api_key", verify.APIKey("X-Api-Key", []string{secret}), header("X-Api-Key", sent), nil},
		{"token_query", verify.Token([]string{secret}), http.Header{}, url.Values{"token": {sent}}},
		{"token_basic", verify.Token([]string{secret}), header("Authorization", basic("u", sent)), nil},
		{"bearer", verify.Bearer([]string{secret}), header("Authorization", "Bearer "+sent), nil},
		{"hmac", sig, header("X-Sig", sent), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := verify.Verify(tt.v, tt.h, tt.q, []byte(body))
			if err == nil {
				t.Fatal("got nil error, want a failure")
			}
			for _, s := range []string{secret, sent, "that-must-not-leak"} {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error text %q contains %q", err, s)
				}
			}
		})
	}
	for _, bad := range []string{"whsec_" + sent + "!", sent + "%"} {
		if _, err := verify.Svix([]string{bad}, 0, nil); err == nil || strings.Contains(err.Error(), sent) {
			t.Errorf("Svix with a bad secret: got error %v, want one without the secret", err)
		}
		if _, err := verify.Sign(bad, "id", vectorTime, nil); err == nil || strings.Contains(err.Error(), sent) {
			t.Errorf("Sign with a bad secret: got error %v, want one without the secret", err)
		}
	}
}
