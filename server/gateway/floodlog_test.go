package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/logs"
)

// TestRejectedFloodLogsSometimes sends 1,000 forged webhooks in a row on each kind of 401 (bad
// header credentials, bad body signature): each is answered 401, and the log gets one line per
// logs.Every of the flood at most, the later ones counting what was left out.
func TestRejectedFloodLogsSometimes(t *testing.T) {
	t.Parallel()
	const flood = 1000
	for _, tc := range []struct {
		name     string
		provider string
		forged   func(*http.Request)
	}{
		{name: "wrong_api_key", provider: "mvmnt", forged: func(r *http.Request) { r.Header.Set("X-Api-Key", "forged") }},
		{name: "wrong_signature", provider: "moveapi", forged: func(r *http.Request) { r.Header.Set("Svix-Signature", "v1,Zm9yZ2Vk") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var records logRecords
			fd := startDoor(t, time.Now, func(o *gateway.Options) { o.Logger = records.logger() }, nil)
			began := time.Now()
			for i := range flood {
				r := signed(t, fd.url, tc.provider, []byte(`{"events":[]}`))
				tc.forged(r)
				resp, _ := do(t, r)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("request %d: got status %d, want 401", i, resp.StatusCode)
				}
			}
			// The bound follows from the time the flood took, so that a slow machine cannot fail it.
			most := 1 + int(time.Since(began)/logs.Every) + 1
			lines := records.with(t, "left_out")
			var leftOut float64
			for _, l := range lines {
				if l["msg"] != "webhook rejected: not authentic" {
					t.Errorf("got line %v, want only rejections", l)
				}
				leftOut += l["left_out"].(float64)
			}
			if len(lines) < 1 || len(lines) > most {
				t.Errorf("got %d lines for %d rejected requests, want 1 to %d", len(lines), flood, most)
			}
			if total := len(lines) + int(leftOut); total > flood {
				t.Errorf("got %d lines and %v left out, more than the %d requests", len(lines), leftOut, flood)
			}
			if got := fd.h.Unauthorized(); got != flood {
				t.Errorf("got %d counted 401s, want %d", got, flood)
			}
		})
	}
}
