package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	"github.com/hookstream/hookstream/gen/openapi"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/verify"
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
			resp, body := send(t, req)
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

// send sends req and reads the whole answer.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read the answer: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// contractDaemon is a daemon whose every webhook route has credentials, for
// TestOpenAPIMatchesServer.
type contractDaemon struct {
	public, api string
	secret      string // the Move API's Svix secret
}

const (
	contractMovementToken = "movement-token"
	contractMVMNTToken    = "mvmnt-token"
	contractListenerToken = "listener-token"
)

func startContractDaemon(t *testing.T) *contractDaemon {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("openapi-test-secret-24by"))
	cfg.Providers.MoveAPI.Secrets = []string{secret}
	cfg.Providers.Movement.Tokens = []string{contractMovementToken}
	cfg.Providers.MVMNT.Tokens = []string{contractMVMNTToken}
	cfg.Listeners = map[string]config.Listener{secureListener: {Tokens: []string{contractListenerToken}, DefaultType: "notification"}}
	s, _, _, _ := run(t, cfg)
	return &contractDaemon{public: "http://" + s.HTTPAddr().String(), api: "http://" + s.APIAddr().String(), secret: secret}
}

// signed returns Svix's headers for body as message id, with the svix- or the webhook- prefix.
func (d *contractDaemon) signed(t *testing.T, prefix, id string, body []byte) map[string]string {
	t.Helper()
	now := time.Now()
	sig, err := verify.Sign(d.secret, id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{prefix + "id": id, prefix + "timestamp": fmt.Sprint(now.Unix()), prefix + "signature": sig}
}

// contractCase is one request to the daemon, checked against the OpenAPI document.
type contractCase struct {
	name           string
	api            bool              // the internal API's door, else the public one
	method, route  string            // the document's path template
	params         map[string]string // its path parameters
	query          string
	header         map[string]string
	body           []byte
	wantStatus     int
	invalidRequest bool // the request is against the document on purpose: its answer is checked
}

func (d *contractDaemon) cases(t *testing.T) []contractCase {
	moveapi := testenv.Sample(t, "moveapi/job_state_started.json", &moveapiv1.Webhook{})
	ugc := testenv.Sample(t, "moveapi/ugc_job_state_failed.json", &moveapiv1.Webhook{})
	invalidMoveAPI := []byte(`{"event_name":"job.state.started","detail":{}}`)
	call := testenv.Sample(t, "movement/call_finished.json", &movementv1.Webhook{})
	text := testenv.Sample(t, "movement/text_message_received.json", &movementv1.Webhook{})
	email := testenv.Sample(t, "movement/email_sent.json", &movementv1.Webhook{})
	batch, err := os.ReadFile("../convert/testdata/mvmnt/batch_mixed.json")
	if err != nil {
		t.Fatal(err)
	}
	listener := []byte(`{"event_type":"incident.created","ticket":{"id":42,"assignee":null}}`)
	json := map[string]string{"Content-Type": "application/json"}
	with := func(h ...map[string]string) map[string]string {
		out := map[string]string{}
		for _, m := range append([]map[string]string{json}, h...) {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("movement:"+contractMovementToken))
	listenerRoute := "/webhooks/v1/listeners/{listener_id}/notify"
	return []contractCase{
		{name: "moveapi_svix", method: http.MethodPost, route: "/webhooks/moveapi", header: with(d.signed(t, "svix-", "msg_contract_1", moveapi)), body: moveapi, wantStatus: 200},
		{name: "moveapi_standard_webhooks", method: http.MethodPost, route: "/webhooks/moveapi", header: with(d.signed(t, "webhook-", "msg_contract_2", ugc)), body: ugc, wantStatus: 200},
		{name: "moveapi_bad_signature", method: http.MethodPost, route: "/webhooks/moveapi", header: with(d.signed(t, "svix-", "msg_contract_3", []byte("{}"))), body: moveapi, wantStatus: 401},
		{name: "moveapi_against_schema", method: http.MethodPost, route: "/webhooks/moveapi", header: with(d.signed(t, "svix-", "msg_contract_4", invalidMoveAPI)), body: invalidMoveAPI, wantStatus: 400, invalidRequest: true},
		{name: "moveapi_not_json", method: http.MethodPost, route: "/webhooks/moveapi", header: map[string]string{"Content-Type": "text/plain"}, body: moveapi, wantStatus: 415, invalidRequest: true},
		{name: "movement_token", method: http.MethodPost, route: "/webhooks/movement", query: "token=" + contractMovementToken, header: with(), body: call, wantStatus: 200},
		{name: "movement_bearer", method: http.MethodPost, route: "/webhooks/movement", header: with(map[string]string{"Authorization": "Bearer " + contractMovementToken}), body: text, wantStatus: 200},
		{name: "movement_basic", method: http.MethodPost, route: "/webhooks/movement", header: with(map[string]string{"Authorization": basic}), body: email, wantStatus: 200},
		{name: "mvmnt_batch", method: http.MethodPost, route: "/webhooks/mvmnt", header: with(map[string]string{"x-api-key": contractMVMNTToken}), body: batch, wantStatus: 200},
		{name: "mvmnt_no_key", method: http.MethodPost, route: "/webhooks/mvmnt", header: with(), body: batch, wantStatus: 401},
		{name: "listener", method: http.MethodPost, route: listenerRoute, params: map[string]string{"listener_id": secureListener}, header: with(map[string]string{"Authorization": "Bearer " + contractListenerToken}), body: listener, wantStatus: 200},
		{name: "listener_wrong_token", method: http.MethodPost, route: listenerRoute, params: map[string]string{"listener_id": secureListener}, header: with(map[string]string{"Authorization": "Bearer nope"}), body: listener, wantStatus: 401},
		{name: "listener_unknown", method: http.MethodPost, route: listenerRoute, params: map[string]string{"listener_id": "00000000-0000-4000-8000-000000000000"}, header: with(map[string]string{"Authorization": "Bearer " + contractListenerToken}), body: listener, wantStatus: 404},
		{name: "api_list_events", api: true, method: http.MethodGet, route: "/v1/events", query: "page_size=3", wantStatus: 200},
		{name: "api_get_unknown_event", api: true, method: http.MethodGet, route: "/v1/events/{id}", params: map[string]string{"id": "0190a2f0-0000-7000-8000-000000000001"}, wantStatus: 404},
		{name: "api_list_quarantine", api: true, method: http.MethodGet, route: "/v1/quarantine", wantStatus: 200},
		{name: "api_list_groups", api: true, method: http.MethodGet, route: "/v1/groups", wantStatus: 200},
		{name: "api_tail_invalid_filter", api: true, method: http.MethodGet, route: "/v1/events:tail", query: "filter.types=SHIP*MENT", wantStatus: 400},
		{name: "api_tail_malformed_parameter", api: true, method: http.MethodGet, route: "/v1/events:tail", query: "start.sequence=abc", wantStatus: 400, invalidRequest: true},
	}
}

// TestOpenAPIMatchesServer sends requests the document describes to a running daemon and
// checks each request and each answer (status, headers, body) against the committed document
// with kin-openapi's openapi3filter.
func TestOpenAPIMatchesServer(t *testing.T) {
	t.Parallel()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.JSON)
	if err != nil {
		t.Fatal(err)
	}
	d := startContractDaemon(t)
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020()}}
	// The webhooks first, so that the internal API has events and quarantine entries to answer.
	for _, c := range d.cases(t) {
		t.Run(c.name, func(t *testing.T) {
			item := doc.Paths.Value(c.route)
			route := &routers.Route{Spec: doc, Path: c.route, PathItem: item, Method: c.method, Operation: item.GetOperation(c.method)}
			req := d.request(t, c)
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: c.params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(context.Background(), in); (err != nil) != c.invalidRequest {
				t.Errorf("request against the document: got %v, want an error: %t", err, c.invalidRequest)
			}
			resp, body := send(t, d.request(t, c))
			if resp.StatusCode != c.wantStatus {
				t.Fatalf("got status %d (%s), want %d", resp.StatusCode, body, c.wantStatus)
			}
			out := (&openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}).SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("answer %d %s against the document: %v", resp.StatusCode, body, err)
			}
		})
	}
	t.Run("tail", func(t *testing.T) { d.checkTail(t, doc, "", `{"result":{"event":`) })
	t.Run("tail_cloudevents", func(t *testing.T) { d.checkTail(t, doc, "&format=EVENT_FORMAT_CLOUDEVENT", `{"specversion":"1.0"`) })
	t.Run("get_event_formats", func(t *testing.T) {
		id := d.firstEventID(t)
		for _, query := range []string{"", "format=EVENT_FORMAT_CLOUDEVENT"} {
			c := contractCase{api: true, method: http.MethodGet, route: "/v1/events/{id}", params: map[string]string{"id": id}, query: query}
			item := doc.Paths.Value(c.route)
			in := &openapi3filter.RequestValidationInput{Request: d.request(t, c), PathParams: c.params, Options: opts,
				Route: &routers.Route{Spec: doc, Path: c.route, PathItem: item, Method: c.method, Operation: item.Get}}
			resp, body := send(t, d.request(t, c))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s?%s: got status %d (%s), want 200", c.route, query, resp.StatusCode, body)
			}
			out := (&openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header, Options: opts}).SetBodyBytes(body)
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("GET %s?%s: answer %q %s against the document: %v", c.route, query, resp.Header.Get("Content-Type"), body, err)
			}
		}
	})
}

// firstEventID returns the id of the first stored event, read through ListEvents.
func (d *contractDaemon) firstEventID(t *testing.T) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, d.api+"/v1/events?page_size=1", nil)
	if err != nil {
		t.Fatal(err)
	}
	_, body := send(t, req)
	var page struct {
		Events []struct {
			ID string `json:"id"`
		} `json:"events"`
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Events) == 0 {
		t.Fatalf("list events: %s %v", body, err)
	}
	return page.Events[0].ID
}

// request builds c's request.
func (d *contractDaemon) request(t *testing.T, c contractCase) *http.Request {
	t.Helper()
	base, path := d.public, c.route
	if c.api {
		base = d.api
	}
	for k, v := range c.params {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	u := base + path
	if c.query != "" {
		u += "?" + c.query
	}
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	return req
}

// checkTail reads the first line of GET /v1/events:tail (with the query parameters query adds)
// and checks it, and the answer's media type, against the document's description of the
// stream; the line must start with wantPrefix.
func (d *contractDaemon) checkTail(t *testing.T, doc *openapi3.T, query, wantPrefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.api+"/v1/events:tail?start.policy=POLICY_ALL"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ok := doc.Paths.Value("/v1/events:tail").Get.Responses.Status(resp.StatusCode)
	if ok == nil {
		t.Fatalf("status %d is not in the document", resp.StatusCode)
	}
	mt := ok.Value.Content.Get(resp.Header.Get("Content-Type"))
	if mt == nil {
		t.Fatalf("Content-Type %q is not in the document", resp.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(line, &v); err != nil {
		t.Fatalf("a line of the stream is not JSON: %v: %s", err, line)
	}
	if err := mt.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		t.Errorf("a line of the stream against the document: %v", err)
	}
	if !bytes.HasPrefix(line, []byte(wantPrefix)) {
		t.Errorf("got line %s, want %s...", line, wantPrefix)
	}
}
