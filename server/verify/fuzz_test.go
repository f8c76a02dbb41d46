package verify_test

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/hookstream/hookstream/server/verify"
)

// checkRejection fails unless err is nil or wraps ErrUnauthenticated and one of the specific
// sentinels: every rejection must be one a caller can classify.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if !errors.Is(err, verify.ErrUnauthenticated) {
		t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
	}
	for _, s := range []error{verify.ErrMissingCredentials, verify.ErrBadCredentials, verify.ErrExpired, verify.ErrMalformedHeader, verify.ErrNotConfigured} {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error %v wraps none of the specific sentinels", err)
}

// FuzzSvix feeds arbitrary ids, timestamps, signature headers and bodies, in both header
// families. It checks that Verify never panics and only fails with the package's sentinels; that
// it accepts only a canonical timestamp within the tolerance and a header with a v1 entry that is
// the real signature of one of the secrets (the library also reads "v1,<sig>,<anything>" as
// "<sig>"); and that the real signature of the fuzzed id and body always passes, alone or after
// the fuzzed entries.
func FuzzSvix(f *testing.F) {
	ts := strconv.Itoa(vectorTS)
	f.Add(vectorID, ts, vectorSig, []byte(vectorBody))
	f.Add(vectorID, ts, "v1,AAAA "+vectorSig, []byte(vectorBody))
	f.Add(vectorID, ts, "v1a,"+strings.TrimPrefix(vectorSig, "v1,"), []byte(vectorBody))
	f.Add(vectorID, "+"+ts, vectorSig, []byte(vectorBody))
	f.Add("", "", "", []byte(""))
	f.Add("msg", "-1", "v1,", []byte("{}"))
	f.Add("msg id with spaces", "99999999999999999999", "v1,a v1,b v2,c", []byte{0xff, 0})
	f.Add("a.b", strconv.Itoa(vectorTS-300), "v1,!!!", []byte("\n"))

	secrets := []string{vectorSecret, otherSecret}
	v, err := verify.Svix(secrets, 0, func() time.Time { return vectorTime })
	if err != nil {
		f.Fatalf("Svix: %v", err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		for _, family := range []string{"Svix", "Webhook"} {
			h := http.Header{family + "-Id": {id}, family + "-Timestamp": {ts}, family + "-Signature": {sig}}
			err := verify.Verify(v, h, nil, body)
			checkRejection(t, err)
			if err != nil {
				continue
			}
			sec, perr := strconv.ParseInt(ts, 10, 64)
			if perr != nil || strconv.FormatInt(sec, 10) != ts {
				t.Fatalf("%s headers: timestamp %q accepted", family, ts)
			}
			if sec < vectorTS-300 || sec > vectorTS+300 {
				t.Fatalf("%s headers: timestamp %d outside the tolerance accepted", family, sec)
			}
			var real []string
			for _, s := range secrets {
				r, err := verify.Sign(s, id, time.Unix(sec, 0), body)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				real = append(real, r)
			}
			if !hasEntry(sig, real) {
				t.Fatalf("%s headers: forged signature %q accepted for id %q", family, sig, id)
			}
		}

		if id == "" {
			return
		}
		real, err := verify.Sign(vectorSecret, id, vectorTime, body)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		for _, family := range []string{"Svix", "Webhook"} {
			for _, s := range []string{real, sig + " " + real} {
				h := http.Header{family + "-Id": {id}, family + "-Timestamp": {strconv.Itoa(vectorTS)}, family + "-Signature": {s}}
				if err := verify.Verify(v, h, nil, body); err != nil {
					t.Fatalf("%s headers: real signature rejected in %q: %v", family, s, err)
				}
			}
		}
	})
}

// hasEntry reports whether one of the space-separated entries of header is one of signatures, or
// one of them followed by a comma.
func hasEntry(header string, signatures []string) bool {
	for _, e := range strings.Split(header, " ") {
		for _, s := range signatures {
			if e == s || strings.HasPrefix(e, s+",") {
				return true
			}
		}
	}
	return false
}

// FuzzAPIKey feeds an arbitrary configured token and an arbitrary header value: the value passes
// exactly when it equals a configured token, and the configured token always passes.
func FuzzAPIKey(f *testing.F) {
	f.Add("current-token", "current-token")
	f.Add("current-token", "previous-token")
	f.Add("current-token", "current")
	f.Add("current-token", "current-token ")
	f.Add("", "")
	f.Add("", "previous-token")
	f.Add("\x00", "\x00\x00")
	f.Fuzz(func(t *testing.T, token, got string) {
		v := verify.APIKey("X-Api-Key", []string{token, "previous-token"})
		err := verify.Verify(v, http.Header{"X-Api-Key": {got}}, nil, nil)
		checkRejection(t, err)
		if want := got != "" && (got == token || got == "previous-token"); (err == nil) != want {
			t.Fatalf("token %q, header %q: got error %v, want accepted: %t", token, got, err, want)
		}

		only := verify.APIKey("x-api-key", []string{token})
		err = verify.Verify(only, http.Header{"X-Api-Key": {token}}, nil, nil)
		if token == "" {
			if !errors.Is(err, verify.ErrNotConfigured) {
				t.Fatalf("no token: got error %v, want ErrNotConfigured", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("configured token %q rejected: %v", token, err)
		}
	})
}

// FuzzToken feeds an arbitrary secret, query token and Authorization value. It checks that a
// request passes only when it carried the secret (as the query token, inside the Authorization
// value, or inside the base64 credentials of it), and that the secret always passes as the
// query token (whatever the Authorization header), as Basic auth, and as Bearer when it has no
// surrounding white space.
func FuzzToken(f *testing.F) {
	f.Add("s3cret", "s3cret", "")
	f.Add("s3cret", "", "Bearer s3cret")
	f.Add("s3cret", "", "bearer   s3cret  ")
	f.Add("s3cret", "", basic("movement", "s3cret"))
	f.Add("s3cret", "nope", "Basic %%%")
	f.Add("s3cret", "", "Bearer")
	f.Add("a:b", "", basic("", "a:b"))
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, secret, query, auth string) {
		v := verify.Token([]string{secret})
		err := verify.Verify(v, http.Header{"Authorization": {auth}}, url.Values{"token": {query}}, nil)
		checkRejection(t, err)
		if secret == "" {
			if !errors.Is(err, verify.ErrNotConfigured) {
				t.Fatalf("no secret: got error %v, want ErrNotConfigured", err)
			}
			return
		}
		if err == nil && query != secret && !strings.Contains(auth, secret) && !inBase64Credentials(auth, secret) {
			t.Fatalf("secret %q: query %q, authorization %q accepted", secret, query, auth)
		}

		pass := []struct {
			name string
			h    http.Header
			q    url.Values
		}{
			{"query", nil, url.Values{"token": {secret}}},
			{"query_beside_authorization", http.Header{"Authorization": {auth}}, url.Values{"token": {secret}}},
			{"basic", http.Header{"Authorization": {basic("user", secret)}}, nil},
		}
		if secret == strings.TrimSpace(secret) {
			pass = append(pass, struct {
				name string
				h    http.Header
				q    url.Values
			}{"bearer", http.Header{"Authorization": {"Bearer " + secret}}, nil})
		}
		for _, p := range pass {
			if err := verify.Verify(v, p.h, p.q, nil); err != nil {
				t.Fatalf("%s: secret %q rejected: %v", p.name, secret, err)
			}
		}
		if err := verify.Verify(v, nil, url.Values{"token": {secret + "x"}}, nil); !errors.Is(err, verify.ErrBadCredentials) {
			t.Fatalf("query token with a suffix: got error %v, want ErrBadCredentials", err)
		}
	})
}

// inBase64Credentials reports whether secret is in the standard base64 decoding of a suffix of
// auth (trimmed on the right) that starts after white space: where Basic credentials can be.
func inBase64Credentials(auth, secret string) bool {
	auth = strings.TrimRightFunc(auth, unicode.IsSpace)
	for i, r := range auth {
		if !unicode.IsSpace(r) {
			continue
		}
		dec, err := base64.StdEncoding.DecodeString(strings.TrimLeftFunc(auth[i:], unicode.IsSpace))
		if err == nil && strings.Contains(string(dec), secret) {
			return true
		}
	}
	return false
}

// FuzzBearer feeds an arbitrary token and Authorization value: a request passes only when the
// value starts with the Bearer scheme and contains the token, and "Bearer <token>" always passes
// (for a token without surrounding white space), whatever the case of the scheme.
func FuzzBearer(f *testing.F) {
	f.Add("mwt_abc", "Bearer mwt_abc")
	f.Add("mwt_abc", "bearer mwt_abc")
	f.Add("mwt_abc", "  BEARER   mwt_abc ")
	f.Add("mwt_abc", "Bearer mwt_ab")
	f.Add("mwt_abc", basic("u", "mwt_abc"))
	f.Add("mwt_abc", "Bearer")
	f.Add("a b", "Bearer a b")
	f.Add("", "Bearer ")
	f.Fuzz(func(t *testing.T, token, auth string) {
		v := verify.Bearer([]string{token})
		err := verify.Verify(v, http.Header{"Authorization": {auth}}, nil, nil)
		checkRejection(t, err)
		if token == "" {
			if !errors.Is(err, verify.ErrNotConfigured) {
				t.Fatalf("no token: got error %v, want ErrNotConfigured", err)
			}
			return
		}
		if err == nil && (!strings.Contains(auth, token) || !strings.HasPrefix(strings.ToLower(strings.TrimSpace(auth)), "bearer")) {
			t.Fatalf("token %q: authorization %q accepted", token, auth)
		}
		if token != strings.TrimSpace(token) {
			return
		}
		for _, a := range []string{"Bearer " + token, "bearer  " + token + " ", "BEARER " + token} {
			if err := verify.Verify(v, http.Header{"Authorization": {a}}, nil, nil); err != nil {
				t.Fatalf("token %q: authorization %q rejected: %v", token, a, err)
			}
		}
		if err := verify.Verify(v, http.Header{"Authorization": {basic("u", token)}}, nil, nil); err == nil {
			t.Fatalf("token %q: Basic credentials accepted", token)
		}
	})
}

// FuzzHMAC feeds arbitrary signature headers and bodies to a GitHub-style verifier (sha256, hex,
// "sha256=", two secrets) and a sha512 base64 one. A signature passes only when it decodes to the
// real HMAC of the body, and the real one always passes.
func FuzzHMAC(f *testing.F) {
	f.Add("sha256=00", []byte("{}"))
	f.Add("", []byte(""))
	f.Add("sha256=ZZ", []byte{0xff})
	f.Add("sha256="+hex.EncodeToString(mac(sha256.New, "new", "{}")), []byte("{}"))
	f.Add(base64.StdEncoding.EncodeToString(mac(sha512.New, "k", "{}")), []byte("{}"))
	f.Add("sha256="+strings.Repeat("0", 63), []byte(`{"event_type":"x"}`))

	gh, err := verify.HMAC("X-Hub-Signature-256", "sha256", "sha256=", "hex", []string{"old", "new"})
	if err != nil {
		f.Fatalf("HMAC: %v", err)
	}
	b64, err := verify.HMAC("X-Signature", "sha512", "", "base64", []string{"k"})
	if err != nil {
		f.Fatalf("HMAC: %v", err)
	}
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		realOld := "sha256=" + hex.EncodeToString(mac(sha256.New, "old", string(body)))
		realNew := "sha256=" + hex.EncodeToString(mac(sha256.New, "new", string(body)))
		real512 := base64.StdEncoding.EncodeToString(mac(sha512.New, "k", string(body)))

		err := verify.Verify(gh, http.Header{"X-Hub-Signature-256": {sig}}, nil, body)
		checkRejection(t, err)
		if got := strings.TrimSpace(sig); err == nil && !strings.EqualFold(got, realOld) && !strings.EqualFold(got, realNew) {
			t.Fatalf("sha256: forged %q accepted", sig)
		}
		err = verify.Verify(b64, http.Header{"X-Signature": {sig}}, nil, body)
		checkRejection(t, err)
		// Go's base64 decoder skips line breaks.
		if got := strings.NewReplacer("\r", "", "\n", "").Replace(strings.TrimSpace(sig)); err == nil && got != real512 {
			t.Fatalf("sha512: forged %q accepted", sig)
		}

		for _, p := range []struct {
			v      verify.Verifier
			header string
			sig    string
		}{
			{gh, "X-Hub-Signature-256", realNew},
			{gh, "X-Hub-Signature-256", realOld},
			{gh, "X-Hub-Signature-256", "sha256=" + strings.ToUpper(strings.TrimPrefix(realNew, "sha256="))},
			{b64, "X-Signature", real512},
		} {
			if err := verify.Verify(p.v, http.Header{p.header: {p.sig}}, nil, body); err != nil {
				t.Fatalf("%s: real signature %q rejected: %v", p.header, p.sig, err)
			}
		}
	})
}
