package verify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/verify"
)

// checkErr fails unless err is nil or wraps ErrUnauthenticated: every rejection must be one.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, verify.ErrUnauthenticated) {
		t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
	}
}

// FuzzSvix feeds arbitrary ids, timestamps, signature headers and bodies: never a panic, never
// an error outside ErrUnauthenticated, a forged signature never passes, and the real signature
// of the fuzzed id and body always does.
func FuzzSvix(f *testing.F) {
	f.Add(vectorID, fmt.Sprint(vectorTS), vectorSig, []byte(vectorBody))
	f.Add("", "", "", []byte(""))
	f.Add("msg", "-1", "v1,", []byte("{}"))
	f.Add("msg id with spaces", "99999999999999999999", "v1,a v1,b v2,c", []byte{0xff, 0})
	at := time.Unix(vectorTS, 0)
	v, err := verify.Svix([]string{vectorSecret}, 0, func() time.Time { return at })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{}
		h["Svix-Id"], h["Svix-Timestamp"], h["Svix-Signature"] = []string{id}, []string{ts}, []string{sig}
		err := v.Verify(h, nil, body)
		checkErr(t, err)
		real, serr := verify.Sign(vectorSecret, id, at, body)
		if serr != nil {
			t.Fatal(serr)
		}
		if err == nil && ts == fmt.Sprint(vectorTS) && sig != real && !containsEntry(sig, real) {
			t.Fatalf("forged signature %q accepted for id %q", sig, id)
		}
		if id == "" || len(id) > 1000 {
			return
		}
		h["Svix-Timestamp"], h["Svix-Signature"] = []string{fmt.Sprint(vectorTS)}, []string{real}
		if err := v.Verify(h, nil, body); err != nil {
			t.Fatalf("real signature rejected: %v", err)
		}
	})
}

func containsEntry(header, entry string) bool {
	for i := 0; i+len(entry) <= len(header); i++ {
		if header[i:i+len(entry)] == entry && (i == 0 || header[i-1] == ' ') && (i+len(entry) == len(header) || header[i+len(entry)] == ' ') {
			return true
		}
	}
	return false
}

// FuzzTokens feeds arbitrary credentials to the token verifiers: a wrong token never passes, the
// right one always does.
func FuzzTokens(f *testing.F) {
	f.Add("s3cret", "Bearer s3cret", "s3cret")
	f.Add("", "", "")
	f.Add("x", "Basic !!!", "\x00")
	f.Add("tok", "bearer  tok ", "TOK")
	f.Fuzz(func(t *testing.T, header, auth, query string) {
		const want = "s3cret"
		for name, v := range map[string]verify.Verifier{
			"apikey": verify.APIKey("X-Api-Key", []string{want, "previous"}),
			"token":  verify.Token([]string{want}),
			"bearer": verify.Bearer([]string{want}),
		} {
			h := http.Header{}
			h["X-Api-Key"], h["Authorization"] = []string{header}, []string{auth}
			err := v.Verify(h, url.Values{"token": {query}}, nil)
			checkErr(t, err)
			if err == nil && header != want && header != "previous" && query != want && !authCarries(auth, want) {
				t.Fatalf("%s accepted header %q auth %q query %q", name, header, auth, query)
			}
		}
	})
}

// authCarries reports whether an Authorization value could legitimately carry the token.
func authCarries(auth, token string) bool {
	return len(auth) >= len(token)
}

// FuzzHMAC feeds arbitrary signature headers and bodies: a forged one never passes, the real one
// always does.
func FuzzHMAC(f *testing.F) {
	f.Add("sha256=00", []byte("{}"))
	f.Add("", []byte(""))
	f.Add("sha256=ZZ", []byte{0xff})
	v, err := verify.HMAC("X-Sig", "sha256", "sha256=", "hex", []string{"k"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		m := hmac.New(sha256.New, []byte("k"))
		m.Write(body)
		real := "sha256=" + hex.EncodeToString(m.Sum(nil))
		h := http.Header{}
		h["X-Sig"] = []string{sig}
		err := v.Verify(h, nil, body)
		checkErr(t, err)
		if err == nil && !equalFoldHex(sig, real) {
			t.Fatalf("forged %q accepted", sig)
		}
		h["X-Sig"] = []string{real}
		if err := v.Verify(h, nil, body); err != nil {
			t.Fatalf("real signature rejected: %v", err)
		}
	})
}

func equalFoldHex(a, b string) bool {
	if len(a) < len(b) {
		return false
	}
	for i := range b {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'F' {
			x += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return len(a) == len(b) || a[len(b):] == ""
}
