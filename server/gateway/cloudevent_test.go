package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/testing/protocmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/gateway"
	"github.com/hookstream/hookstream/server/internal/cetest"
	"github.com/hookstream/hookstream/server/internal/testenv"
)

// apiEnv is the internal API's HTTP mapping (NewAPI, through httptest) in front of a real gRPC
// server of hookstream's services, whose idle streams send a heartbeat every 200 ms.
type apiEnv struct {
	base     string
	webhooks hookstreamv1.WebhookServiceClient
	events   hookstreamv1.EventServiceClient
}

func startAPI(t *testing.T) *apiEnv {
	t.Helper()
	env := testenv.ServicesHeartbeat(t, testenv.OpenLog(t), 200*time.Millisecond)
	api, err := gateway.NewAPI(context.Background(), gateway.APIOptions{
		Conn:               env.Conn,
		Authenticate:       func(h http.Handler) http.Handler { return h },
		Forward:            func(context.Context, *http.Request) metadata.MD { return nil },
		StreamWriteTimeout: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &apiEnv{base: srv.URL, webhooks: env.Webhooks, events: env.Events}
}

// get sends GET path with the Accept header accept (none when empty).
func (e *apiEnv) get(ctx context.Context, t *testing.T, path, accept string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestCloudEventsOverHTTP asks GetEvent and Tail over HTTP for an event of each provider as
// CloudEvents, by query parameter and by Accept header, and checks each against the spec's
// attributes and its envelope; without either, the answers are the envelope as before.
func TestCloudEventsOverHTTP(t *testing.T) {
	t.Parallel()
	e := startAPI(t)
	ctx := context.Background()
	sent := cetest.Send(t, e.webhooks, e.events, testenv.ListenerID)
	envelopes := map[string]*hookstreamv1.Event{}
	for _, s := range sent {
		got, err := e.events.GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: s.ID})
		if err != nil {
			t.Fatal(err)
		}
		envelopes[s.ID] = got.GetEvent()
	}
	asks := []struct {
		name, query, accept string
	}{
		{name: "query", query: "format=EVENT_FORMAT_CLOUDEVENT"},
		{name: "query_number", query: "format=2"},
		{name: "accept", accept: "application/cloudevents+json"},
		{name: "accept_among_others", accept: "application/json;q=0.5, application/cloudevents+json"},
	}
	for _, ask := range asks {
		t.Run(ask.name, func(t *testing.T) {
			t.Parallel()
			for _, s := range sent {
				t.Run("get_event_"+s.Name, func(t *testing.T) {
					resp := e.get(ctx, t, "/v1/events/"+s.ID+"?"+ask.query, ask.accept)
					body, _ := io.ReadAll(resp.Body)
					if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/cloudevents+json" {
						t.Fatalf("got %d %s %s, want 200 application/cloudevents+json", resp.StatusCode, ct, body)
					}
					cetest.CheckJSON(t, body, envelopes[s.ID], s)
				})
			}
			t.Run("tail", func(t *testing.T) { checkTail(t, e, "start.policy=POLICY_ALL&"+ask.query, ask.accept, sent, envelopes) })
		})
	}
	envelope := []struct {
		name, query, accept string
	}{
		{name: "by_default"},
		{name: "asked_by_query", query: "format=EVENT_FORMAT_ENVELOPE"},
		{name: "query_wins_over_accept", query: "format=EVENT_FORMAT_ENVELOPE", accept: "application/cloudevents+json"},
	}
	for _, c := range envelope {
		t.Run("envelope_"+c.name, func(t *testing.T) {
			t.Parallel()
			s := sent[0]
			resp := e.get(ctx, t, "/v1/events/"+s.ID+"?"+c.query, c.accept)
			body, _ := io.ReadAll(resp.Body)
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/json" {
				t.Fatalf("got %d %s %s, want 200 application/json", resp.StatusCode, ct, body)
			}
			got := &hookstreamv1.GetEventResponse{}
			if err := convert.UnmarshalOptions.Unmarshal(body, got); err != nil {
				t.Fatal(err)
			}
			want := &hookstreamv1.GetEventResponse{Event: envelopes[s.ID]}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("answer differs (-want +got):\n%s", diff)
			}
		})
	}
}

// checkTail tails with query and accept until it has read a CloudEvent of each event sent and a
// heartbeat (an empty line), and checks each line.
func checkTail(t *testing.T, e *apiEnv, query, accept string, sent []cetest.Sent, envelopes map[string]*hookstreamv1.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := e.get(ctx, t, "/v1/events:tail?"+query, accept)
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/x-ndjson" {
		t.Fatalf("got %d %s, want 200 application/x-ndjson", resp.StatusCode, ct)
	}
	lines := map[string][]byte{}
	heartbeats := 0
	sc := bufio.NewScanner(resp.Body)
	for heartbeats == 0 || len(lines) < len(sent) {
		if !sc.Scan() {
			t.Fatalf("tail ended after %d events, %d heartbeats: %v", len(lines), heartbeats, sc.Err())
		}
		line := sc.Bytes()
		if len(line) == 0 {
			heartbeats++
			continue
		}
		var ev struct{ ID string }
		if err := json.Unmarshal(line, &ev); err != nil || envelopes[ev.ID] == nil {
			t.Fatalf("line %s is not a CloudEvent of an event sent (%v)", line, err)
		}
		lines[ev.ID] = append([]byte(nil), line...)
	}
	for _, s := range sent {
		t.Run(s.Name, func(t *testing.T) { cetest.CheckJSON(t, lines[s.ID], envelopes[s.ID], s) })
	}
}
