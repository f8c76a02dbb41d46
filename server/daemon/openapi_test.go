package daemon_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/hookstream/hookstream/gen/openapi"
)

// TestOpenAPIDocument reads GET /openapi.json on both doors: the internal API serves the
// committed document, the public door has no such route.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	s, _, _, _ := start(t)
	api, public := "http://"+s.APIAddr().String(), "http://"+s.HTTPAddr().String()
	tests := []struct {
		name, method, url string
		wantStatus        int
		wantBody          []byte
		wantType          string
	}{
		{name: "api_get", method: http.MethodGet, url: api + "/openapi.json", wantStatus: http.StatusOK, wantBody: openapi.JSON, wantType: "application/json"},
		{name: "api_head", method: http.MethodHead, url: api + "/openapi.json", wantStatus: http.StatusOK, wantBody: []byte{}, wantType: "application/json"},
		{name: "api_post", method: http.MethodPost, url: api + "/openapi.json", wantStatus: http.StatusNotFound},
		{name: "public_get", method: http.MethodGet, url: public + "/openapi.json", wantStatus: http.StatusNotFound},
		{name: "public_under_webhooks", method: http.MethodGet, url: public + "/webhooks/openapi.json", wantStatus: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s: got status %d, want %d", tt.method, tt.url, resp.StatusCode, tt.wantStatus)
			}
			if tt.wantBody != nil && !bytes.Equal(body, tt.wantBody) {
				t.Errorf("%s %s: got %d bytes, want the %d of gen/openapi", tt.method, tt.url, len(body), len(tt.wantBody))
			}
			if got := resp.Header.Get("Content-Type"); tt.wantType != "" && got != tt.wantType {
				t.Errorf("%s %s: got Content-Type %q, want %q", tt.method, tt.url, got, tt.wantType)
			}
		})
	}
}
