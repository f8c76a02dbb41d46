package daemon_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/internal/cetest"
)

// TestCloudEventsOnTheAPIListener asks the daemon's internal HTTP listener for an event of each
// provider as a CloudEvent: the gateway the daemon builds answers the JSON event format.
func TestCloudEventsOnTheAPIListener(t *testing.T) {
	t.Parallel()
	s := serve(t, func(*config.Config) {})
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	events := hookstreamv1.NewEventServiceClient(conn)
	for _, sent := range cetest.Send(t, hookstreamv1.NewWebhookServiceClient(conn), events, limitsListener) {
		t.Run(sent.Name, func(t *testing.T) {
			want, err := events.GetEvent(context.Background(), &hookstreamv1.GetEventRequest{Id: sent.ID})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+s.APIAddr().String()+"/v1/events/"+sent.ID, nil)
			req.Header.Set("Accept", "application/cloudevents+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "application/cloudevents+json" {
				t.Fatalf("got %d %s %s, want 200 application/cloudevents+json", resp.StatusCode, ct, body)
			}
			cetest.CheckJSON(t, body, want.GetEvent(), sent)
		})
	}
}
