package cli

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hookstream/hookstream/server/samples"
)

// FuzzAnswerLine feeds answerLine any answer a door (or something posing as one) can give: it
// never panics, says one line, and calls nothing stored that was not answered 2xx.
func FuzzAnswerLine(f *testing.F) {
	f.Add(200, `{"receipts":[{"eventId":"01a2","sequence":"3","outcome":"OUTCOME_STORED"},{"outcome":"OUTCOME_QUARANTINED","quarantineEntryId":"q","violations":[{"field":"events[1]","rule":"malformed"}]}]}`)
	f.Add(200, `{"receipt":{"duplicate":true,"outcome":"OUTCOME_DUPLICATE","sequence":"9"}}`)
	f.Add(400, `{"code":3,"message":"payload violates the schema","details":[{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{"field":"webhook.detail","description":"required: value is required"}]}]}`)
	f.Add(401, `{"error":{"code":"UNAUTHORIZED","message":"missing or invalid credentials"}}`)
	f.Add(503, "")
	f.Add(400, `{"code":3,"message":"two\nlines\r\u001b[31m"}`)
	f.Add(200, "\x00not json\n")
	f.Fuzz(func(t *testing.T, code int, body string) {
		if code < 100 || code > 999 {
			return
		}
		for _, p := range samples.Providers() {
			resp := &http.Response{StatusCode: code, Header: http.Header{"Retry-After": {"5"}}}
			line, ok := answerLine(p, resp, []byte(body))
			if ok && code/100 != 2 {
				t.Errorf("%s: status %d answered ok: %q", p, code, line)
			}
			if strings.Contains(line, "\n") {
				t.Errorf("%s: got %q, want one line", p, line)
			}
		}
	})
}
