// Package consume_test shows a Go consumer of hookstream: it subscribes to EventService.Subscribe
// as a consumer group, prints each event's typed payload and acks it on the same stream. The
// example starts its own hookstream on loopback (the embedded event log in a temporary
// directory) and sends it an MVMNT webhook; against `hookstream serve --dev`, dial
// 127.0.0.1:9090 instead.
package consume_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
)

// delivery is an MVMNT webhook of two events, as MVMNT sends it.
const delivery = `{"sentAt":"2025-01-15T14:30:00Z","events":[
 {"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000","friendlyId":"SHP-12345"},"diff":null},
 {"event":"CUSTOMER_DELETED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"2b7e1516-28ae-42a6-abf7-158809cf4f3c"},"diff":null}]}`

// The example's own MVMNT x-api-key.
const token = "example-mvmnt-token"

// Example subscribes twice as group "example-go", one event each time: the second subscription
// starts after the event the first one acked.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, stop := serve(ctx)
	defer stop()
	send(ctx, "http://"+s.HTTPAddr().String()+"/webhooks/mvmnt")

	conn, err := grpc.NewClient(s.GRPCAddr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), // loopback only
		// hookstream cuts clients that ping more often than every 20 s.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second}))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := hookstreamv1.NewEventServiceClient(conn)
	for range 2 {
		if err := consume(ctx, client, "example-go", 1); err != nil {
			log.Fatal(err)
		}
	}
	// Output:
	// mvmnt SHIPMENT_DELIVERED shipment_delivered.id=660e8400-e29b-41d4-a716-446655440000 friendly_id=SHP-12345
	// mvmnt CUSTOMER_DELETED deleted.id=2b7e1516-28ae-42a6-abf7-158809cf4f3c
}

// consume prints and acks count events of group, then ends the stream.
func consume(ctx context.Context, client hookstreamv1.EventServiceClient, group string, count int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Subscribe(ctx)
	if err != nil {
		return err
	}
	open := &hookstreamv1.SubscribeRequest_Open{
		Group: group,
		// A new group starts with every retained event.
		Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL},
		// Hold no more than will be printed: an event sent and never acked uses up a delivery.
		MaxInFlight: uint32(count),
	}
	if err := stream.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: open}}); err != nil {
		return err
	}
	for printed := 0; printed < count; {
		resp, err := stream.Recv()
		if err != nil {
			return err
		}
		if resp.GetDraining() != nil {
			return errors.New("the server is shutting down: subscribe again")
		}
		for _, re := range resp.GetEvents().GetEvents() { // none in subscribed and heartbeat
			if printed == count {
				break // not acked: redelivered to the group
			}
			fmt.Println(describe(re.GetEvent()))
			printed++
			settle := &hookstreamv1.SubscribeRequest_Settle{AckIds: []string{re.GetAckId()}}
			if err := stream.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: settle}}); err != nil {
				return err
			}
		}
	}
	// Half-close and read on until the server ends the stream: it has then applied every ack.
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// describe is a line of e's typed payload.
func describe(e *hookstreamv1.Event) string {
	switch p := e.GetPayload().(type) {
	case *hookstreamv1.Event_Mvmnt:
		typ := strings.TrimPrefix(p.Mvmnt.GetEventType().String(), "EVENT_TYPE_")
		switch d := p.Mvmnt.GetData().(type) {
		case *mvmntv1.Event_ShipmentDelivered:
			return fmt.Sprintf("mvmnt %s shipment_delivered.id=%s friendly_id=%s", typ, d.ShipmentDelivered.GetId(), d.ShipmentDelivered.GetFriendlyId())
		case *mvmntv1.Event_Deleted:
			return fmt.Sprintf("mvmnt %s deleted.id=%s", typ, d.Deleted.GetId())
		default:
			return fmt.Sprintf("mvmnt %s", typ)
		}
	case *hookstreamv1.Event_Moveapi:
		return "moveapi " + p.Moveapi.GetEventName() + " job_id=" + p.Moveapi.GetDetail().GetJobId()
	case *hookstreamv1.Event_Movement:
		return "movement " + p.Movement.GetTopic() + " " + p.Movement.GetEvent()
	case *hookstreamv1.Event_Listener:
		return "listener " + p.Listener.GetListenerId() + " " + p.Listener.GetEventType()
	default:
		return "untyped " + e.GetType()
	}
}

// serve starts hookstream on loopback ports, its event log in a temporary directory, accepting
// MVMNT webhooks with token, and waits until it is ready. stop shuts it down and removes the
// directory.
func serve(ctx context.Context) (s *daemon.Server, stop func()) {
	dir, err := os.MkdirTemp("", "hookstream-example")
	if err != nil {
		log.Fatal(err)
	}
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", dir
	cfg.Providers.MVMNT.Tokens = []string{token}
	s, err = daemon.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			log.Print(err)
		}
	}()
	for {
		resp, err := http.Get("http://" + s.HTTPAddr().String() + "/readyz")
		if err == nil && resp.Body.Close() == nil && resp.StatusCode == http.StatusOK {
			break
		}
		if ctx.Err() != nil {
			log.Fatal("hookstream not ready: ", ctx.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return s, func() {
		cancel()
		<-done
		os.RemoveAll(dir)
	}
}

// send posts the delivery to url with the example's MVMNT token.
func send(ctx context.Context, url string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(delivery))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("x-api-key", token)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Fatal("webhook answered ", resp.Status)
	}
}
