package daemon_test

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
)

// limitsListener is the insecure webhook listener of every daemon serve starts.
const limitsListener = "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a"

// serve runs a daemon on loopback ports, with an insecure webhook listener limitsListener and
// the default configuration changed by set, until the test ends.
func serve(t *testing.T, set func(*config.Config)) *daemon.Server {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cfg.Listeners = map[string]config.Listener{limitsListener: {Insecure: true, DefaultType: "notification"}}
	set(&cfg)
	s, _, _, _ := run(t, cfg)
	return s
}

// notify stores one listener notification through the public door.
func notify(t *testing.T, s *daemon.Server) {
	t.Helper()
	resp, err := http.Post("http://"+s.HTTPAddr().String()+"/webhooks/v1/listeners/"+limitsListener+"/notify", "application/json", strings.NewReader(`{"event_type":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: status %d, want 200", resp.StatusCode)
	}
}

// internalClient is an EventService client of s's gRPC listener.
func internalClient(t *testing.T, s *daemon.Server) hookstreamv1.EventServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return hookstreamv1.NewEventServiceClient(conn)
}

// as is ctx with the bearer token of principal name (its token is name + "-token").
func as(ctx context.Context, name string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+name+"-token")
}

// principals configures each of names with the token as uses and permissions perms.
func principals(perms []string, names ...string) map[string]config.Principal {
	out := map[string]config.Principal{}
	for _, n := range names {
		out[n] = config.Principal{Tokens: []string{auth.TokenDigest(n + "-token")}, Permissions: perms}
	}
	return out
}

// openTail opens a Tail of every event as principal who and waits for its first event: the
// stream holds a slot then. It returns the code of the refusal, or OK and the stream's cancel.
func openTail(t *testing.T, client hookstreamv1.EventServiceClient, who string) (codes.Code, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(as(context.Background(), who), 20*time.Second)
	t.Cleanup(cancel)
	tail, err := client.Tail(ctx, &hookstreamv1.TailRequest{Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}})
	if err != nil {
		cancel()
		return status.Code(err), nil
	}
	if _, err := tail.Recv(); err != nil {
		cancel()
		return status.Code(err), nil
	}
	return codes.OK, cancel
}

// openSubscription opens an ephemeral Subscribe as principal who and waits for its answer.
func openSubscription(t *testing.T, client hookstreamv1.EventServiceClient, who string) (codes.Code, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(as(context.Background(), who), 20*time.Second)
	t.Cleanup(cancel)
	sub, err := client.Subscribe(ctx)
	if err == nil {
		err = sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{}}})
	}
	if err == nil {
		_, err = sub.Recv()
	}
	if err != nil {
		cancel()
		return status.Code(err), nil
	}
	return codes.OK, cancel
}

// TestStreamLimits holds streams open up to the limits, per principal (2) and in all (3), over
// gRPC and over the HTTP mapping: the stream over a limit is refused with RESOURCE_EXHAUSTED
// (429 over HTTP), other principals are not held to one principal's limit, and closing a stream
// frees its slot.
func TestStreamLimits(t *testing.T) {
	t.Parallel()
	s := serve(t, func(c *config.Config) {
		c.Limits.MaxStreamsPerPrincipal, c.Limits.MaxStreams = 2, 3
		c.Auth.Principals = principals([]string{"read", "consume"}, "alice", "bob")
	})
	notify(t, s)
	client := internalClient(t, s)
	httpTail := func(who string) int {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.APIAddr().String()+"/v1/events:tail?start.policy=POLICY_ALL", nil)
		req.Header.Set("Authorization", "Bearer "+who+"-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	code, aliceTail := openTail(t, client, "alice")
	if code != codes.OK {
		t.Fatalf("alice's first tail: %v", code)
	}
	if code, _ := openSubscription(t, client, "alice"); code != codes.OK {
		t.Fatalf("alice's subscription: %v", code)
	}
	for _, tt := range []struct {
		name string
		open func() codes.Code
		want codes.Code
	}{
		{"principal_limit_tail", func() codes.Code { c, _ := openTail(t, client, "alice"); return c }, codes.ResourceExhausted},
		{"principal_limit_subscribe", func() codes.Code { c, _ := openSubscription(t, client, "alice"); return c }, codes.ResourceExhausted},
		{"other_principal_below_total", func() codes.Code { c, _ := openSubscription(t, client, "bob"); return c }, codes.OK},
		{"total_limit_tail", func() codes.Code { c, _ := openTail(t, client, "bob"); return c }, codes.ResourceExhausted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.open(); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if got := httpTail("alice"); got != http.StatusTooManyRequests {
		t.Errorf("alice's tail over HTTP over the limit: status %d, want 429", got)
	}

	aliceTail()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := openTail(t, client, "bob")
		if code == codes.OK {
			break
		}
		if code != codes.ResourceExhausted || time.Now().After(deadline) {
			t.Fatalf("bob's tail after alice closed hers: %v, want OK within 10 s", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openGroup opens a Subscribe of group as principal who, from every event, and waits for its
// answer; the stream is closed when t ends (or by cancel).
func openGroup(t *testing.T, client hookstreamv1.EventServiceClient, who, group string) (hookstreamv1.EventService_SubscribeClient, context.CancelFunc, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(as(context.Background(), who), 20*time.Second)
	t.Cleanup(cancel)
	sub, err := client.Subscribe(ctx)
	if err == nil {
		err = sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: &hookstreamv1.SubscribeRequest_Open{
			Group: group, Start: &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL},
		}}})
	}
	if err == nil {
		_, err = sub.Recv()
	}
	if err != nil {
		cancel()
		return nil, nil, err
	}
	return sub, cancel, nil
}

// apiRequest makes an HTTP request of the internal API as principal who and returns the status
// and body.
func apiRequest(t *testing.T, s *daemon.Server, method, path, who string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+s.APIAddr().String()+path, nil)
	req.Header.Set("Authorization", "Bearer "+who+"-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

// TestGroupLimit is the reproduction of the lock-out by groups, with the default limits: of
// 1,001 new groups the 256 first are created and the others refused with RESOURCE_EXHAUSTED,
// while tails and ephemeral subscriptions still work; an admin lists the groups and deletes
// one (over HTTP), and then a new group subscribes and receives the stored event.
func TestGroupLimit(t *testing.T) {
	t.Parallel()
	s := serve(t, func(c *config.Config) {
		c.Auth.Principals = principals([]string{"read", "consume"}, "app")
		maps.Copy(c.Auth.Principals, principals([]string{"admin"}, "admin"))
	})
	notify(t, s)
	client := internalClient(t, s)
	maxGroups := config.Default().Limits.MaxGroups

	created := 0
	for i := range 1001 {
		_, cancel, err := openGroup(t, client, "app", fmt.Sprintf("g%04d", i))
		switch {
		case err == nil:
			created++
			cancel()
		case status.Code(err) != codes.ResourceExhausted || i < maxGroups:
			t.Fatalf("group %d: %v, want OK for the first %d and ResourceExhausted after", i, err, maxGroups)
		}
	}
	if created != maxGroups {
		t.Fatalf("created %d groups, want %d", created, maxGroups)
	}
	if code, cancel := openTail(t, client, "app"); code != codes.OK {
		t.Errorf("tail with the groups at their limit: %v, want OK", code)
	} else {
		cancel()
	}
	if code, cancel := openSubscription(t, client, "app"); code != codes.OK {
		t.Errorf("ephemeral subscription with the groups at their limit: %v, want OK", code)
	} else {
		cancel()
	}

	var listed []string
	req := &hookstreamv1.ListGroupsRequest{PageSize: 100}
	for range 10 {
		resp, err := client.ListGroups(as(context.Background(), "admin"), req)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range resp.GetGroups() {
			listed = append(listed, g.GetName())
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if len(listed) != maxGroups || listed[0] != "g0000" || listed[maxGroups-1] != fmt.Sprintf("g%04d", maxGroups-1) {
		t.Errorf("listed %d groups from %v, want g0000 to g%04d", len(listed), listed[:min(3, len(listed))], maxGroups-1)
	}
	for _, tt := range []struct {
		name, method, path, who string
		want                    int
	}{
		{"list_needs_admin", http.MethodGet, "/v1/groups", "app", http.StatusForbidden},
		{"delete_needs_admin", http.MethodDelete, "/v1/groups/g0000", "app", http.StatusForbidden},
		{"list", http.MethodGet, "/v1/groups?page_size=1", "admin", http.StatusOK},
		{"delete", http.MethodDelete, "/v1/groups/g0000", "admin", http.StatusOK},
		{"delete_again", http.MethodDelete, "/v1/groups/g0000", "admin", http.StatusNotFound},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got, body := apiRequest(t, s, tt.method, tt.path, tt.who); got != tt.want {
				t.Errorf("%s %s as %s: status %d %s, want %d", tt.method, tt.path, tt.who, got, body, tt.want)
			}
		})
	}

	sub, _, err := openGroup(t, client, "app", "fresh")
	if err != nil {
		t.Fatalf("new group after a deletion: %v", err)
	}
	for {
		m, err := sub.Recv()
		if err != nil {
			t.Fatalf("new group: %v", err)
		}
		if len(m.GetEvents().GetEvents()) > 0 {
			break
		}
	}
	if _, _, err := openGroup(t, client, "app", "one-more"); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a group beyond the limit again: %v, want ResourceExhausted", err)
	}
}

// TestStreamLimitWithoutPrincipals runs an internal API without principals: every caller counts
// as the one anonymous principal, held to the limit of one principal.
func TestStreamLimitWithoutPrincipals(t *testing.T) {
	t.Parallel()
	s := serve(t, func(c *config.Config) { c.Limits.MaxStreamsPerPrincipal, c.Limits.MaxStreams = 1, 10 })
	notify(t, s)
	client := internalClient(t, s)
	if code, _ := openTail(t, client, "nobody"); code != codes.OK {
		t.Fatalf("first tail: %v, want OK", code)
	}
	if code, _ := openSubscription(t, client, "someone-else"); code != codes.ResourceExhausted {
		t.Errorf("a second caller's stream: %v, want ResourceExhausted", code)
	}
}
