package main_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// TestDeliveryAttemptsAfterKill: events a consumer group was delivered some times and never
// acked are redelivered after a kill -9 and a restart, and their delivery_attempt carries on
// from the deliveries before the crash instead of starting again at 1.
func TestDeliveryAttemptsAfterKill(t *testing.T) {
	t.Parallel()
	bin := build(t)
	for _, times := range []uint32{1, 3} {
		t.Run(fmt.Sprintf("delivered_%d_times", times), func(t *testing.T) {
			t.Parallel()
			grpcAddr := freePort(t)
			args := []string{"--http-addr", "127.0.0.1:0", "--grpc-addr", grpcAddr, "--api-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}
			cmd := startProcess(t, bin, args...)
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			conn := dialPlain(t, grpcAddr)
			const n = 5
			for i := range n {
				w := &moveapiv1.Webhook{EventName: "job.state.started", Timestamp: timestamppb.Now(), Detail: &moveapiv1.Detail{JobId: fmt.Sprint(i)}}
				if _, err := hookstreamv1.NewWebhookServiceClient(conn).ReceiveMoveApiWebhook(context.Background(), &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: w, WebhookId: fmt.Sprintf("msg_attempt_%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			open := &hookstreamv1.SubscribeRequest_Open{Group: "attempts", Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}, AckDeadline: durationpb.New(time.Second), MaxDeliveries: 100}
			before := deliveries(t, conn, open, n, times, false)
			// nats-server writes a consumer's state within 100 ms of a change: kill after that.
			time.Sleep(200 * time.Millisecond)
			cmd.Process.Kill()
			cmd.Wait()
			cmd = startProcess(t, bin, args...)
			after := deliveries(t, dialPlain(t, grpcAddr), open, n, 1, true)
			for id, b := range before {
				if after[id] != b+1 {
					t.Errorf("event %s: delivered %d times before the kill, then as attempt %d, want %d", id, b, after[id], b+1)
				}
			}
		})
	}
}

func dialPlain(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// deliveries subscribes until each of n events was delivered at least times times (never
// acking), and returns each event's delivery_attempt: the first one seen when first is set, else
// the last.
func deliveries(t *testing.T, conn *grpc.ClientConn, open *hookstreamv1.SubscribeRequest_Open, n int, times uint32, first bool) map[string]uint32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: open}}); err != nil {
		t.Fatal(err)
	}
	firsts, lasts := map[string]uint32{}, map[string]uint32{}
	for {
		m, err := sub.Recv()
		if err != nil {
			t.Fatalf("subscribe: %v after %v", err, lasts)
		}
		for _, ev := range m.GetEvents().GetEvents() {
			id := ev.GetEvent().GetId()
			if _, ok := firsts[id]; !ok {
				firsts[id] = ev.GetDeliveryAttempt()
			}
			lasts[id] = ev.GetDeliveryAttempt()
		}
		done := len(lasts) == n
		for _, a := range lasts {
			done = done && a >= times
		}
		if !done {
			continue
		}
		if first {
			return firsts
		}
		return lasts
	}
}
