package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"
	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/daemon"
	"github.com/hookstream/hookstream/server/internal/testca"
	"github.com/hookstream/hookstream/server/internal/testenv"
	"github.com/hookstream/hookstream/server/verify"
)

// secureListener is the listener configured in the secured daemon.
const secureListener = "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

// secured is a daemon whose internal doors need credentials, over TLS with a client CA, as the
// README's production section configures it.
type secured struct {
	s       *daemon.Server
	ca      *testca.CA
	tokens  map[string]string // by principal
	moveapi string            // the Move API route's Svix secret
	public  string            // base URL of the public door (plain HTTP)
	api     string            // base URL of the internal HTTP door (TLS)
	eventID string            // an event stored before the test
}

// startSecured runs a daemon with these principals: consumer (consume, groups billing-*, MVMNT
// only), reader (read), admin (admin), producer (produce Move API, MVMNT, listener), mover
// (produce Movement), and the certificate principals reader-cert (CN=reader.internal, read) and
// consumer-cert (DNS:consumer.svc.internal, consume).
// set changes the configuration before the daemon starts.
func startSecured(t *testing.T, set ...func(*config.Config)) *secured {
	t.Helper()
	ca := testca.New(t)
	e := &secured{ca: ca, tokens: map[string]string{}, moveapi: "whsec_" + base64.StdEncoding.EncodeToString(randomBytes(t, 24))}
	cfg := config.Default()
	cfg.HTTP.Addr, cfg.GRPC.Addr, cfg.API.Addr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", t.TempDir()
	cert, key := ca.Server("hookstream")
	cfg.GRPC.TLS = config.TLS{CertFile: cert, KeyFile: key}
	cfg.API.TLS = config.TLS{CertFile: cert, KeyFile: key}
	cfg.Auth.ClientCAFile = ca.File
	cfg.Providers.MoveAPI.Secrets = []string{e.moveapi}
	cfg.Listeners = map[string]config.Listener{secureListener: {Tokens: []string{"listener-token"}, DefaultType: "notification"}}
	tokenPrincipal := func(name string, c config.Principal) config.Principal {
		e.tokens[name] = base64.RawURLEncoding.EncodeToString(randomBytes(t, 24))
		c.Tokens = []string{auth.TokenDigest(e.tokens[name])}
		return c
	}
	cfg.Auth.Principals = map[string]config.Principal{
		"consumer":      tokenPrincipal("consumer", config.Principal{Permissions: []string{"consume"}, Groups: []string{"billing-*"}, Providers: []string{"mvmnt"}}),
		"reader":        tokenPrincipal("reader", config.Principal{Permissions: []string{"read"}}),
		"admin":         tokenPrincipal("admin", config.Principal{Permissions: []string{"admin"}}),
		"producer":      tokenPrincipal("producer", config.Principal{Permissions: []string{"produce"}, Providers: []string{"moveapi", "mvmnt", "listener"}}),
		"mover":         tokenPrincipal("mover", config.Principal{Permissions: []string{"produce"}, Providers: []string{"movement"}}),
		"reader-cert":   {Certificates: []string{"CN=reader.internal"}, Permissions: []string{"read"}},
		"consumer-cert": {Certificates: []string{"DNS:consumer.svc.internal"}, Permissions: []string{"consume"}},
	}
	for _, f := range set {
		f(&cfg)
	}
	s, _, _, _ := run(t, cfg)
	e.s, e.public, e.api = s, "http://"+s.HTTPAddr().String(), "https://"+s.APIAddr().String()

	// One event, so that reads and tails have something to answer with at once.
	r, err := hookstreamv1.NewWebhookServiceClient(e.dial(t, nil)).ReceiveMvmntDelivery(e.as("producer"), mvmntDelivery(t))
	if err != nil {
		t.Fatalf("store the first event: %v", err)
	}
	e.eventID = r.GetReceipts()[0].GetEventId()
	return e
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// as returns a context whose calls carry the bearer token of principal ("" for none, "wrong" for
// a token no principal has).
func (e *secured) as(principal string) context.Context {
	ctx := context.Background()
	switch principal {
	case "":
		return ctx
	case "wrong":
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer not-a-token-of-anyone")
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.tokens[principal])
}

// dial connects to the internal gRPC door over TLS, with a client certificate when cert is set.
func (e *secured) dial(t *testing.T, cert *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	tc := &tls.Config{RootCAs: e.ca.Pool, ServerName: "localhost"}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	conn, err := grpc.NewClient(e.s.GRPCAddr().String(), grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// client is an HTTPS client of the internal HTTP door, with a client certificate when cert is
// set.
func (e *secured) client(cert *tls.Certificate) *http.Client {
	tc := &tls.Config{RootCAs: e.ca.Pool, ServerName: "localhost"}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
}

// get sends an HTTP request to the internal door as principal and returns the status, reading
// the first line only of a streamed answer.
func (e *secured) get(t *testing.T, c *http.Client, method, path, principal string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.api+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	switch principal {
	case "":
	case "wrong":
		req.Header.Set("Authorization", "Bearer not-a-token-of-anyone")
	default:
		req.Header.Set("Authorization", "Bearer "+e.tokens[principal])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	bufio.NewReader(resp.Body).ReadBytes('\n')
	return resp.StatusCode
}

func mvmntDelivery(t *testing.T) *hookstreamv1.ReceiveMvmntDeliveryRequest {
	d := &mvmntv1.Delivery{}
	raw := testenv.Sample(t, "mvmnt/shipment_delivered.json", d)
	return &hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: d, Raw: raw}
}

// call is one internal RPC, made with ctx on conn; it returns the call's error (a stream's
// first answer's).
type call func(ctx context.Context, conn *grpc.ClientConn) error

// firstOf opens a server stream and returns the error of its first message.
func firstOf[T any](s interface{ Recv() (T, error) }, err error) error {
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}

func subscribe(group string, providers ...hookstreamv1.Provider) call {
	return func(ctx context.Context, conn *grpc.ClientConn) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		sub, err := hookstreamv1.NewEventServiceClient(conn).Subscribe(ctx)
		if err != nil {
			return err
		}
		open := &hookstreamv1.SubscribeRequest_Open{Group: group, Filter: &hookstreamv1.EventFilter{Providers: providers}}
		// A stream the server already ended answers Send with io.EOF: its status comes with Recv.
		if err := sub.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: open}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		m, err := sub.Recv()
		if err == nil && m.GetSubscribed() == nil {
			return fmt.Errorf("first message %v, want subscribed", m)
		}
		return err
	}
}

func reflect(ctx context.Context, conn *grpc.ClientConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		return err
	}
	if err := s.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	_, err = s.Recv()
	return err
}

// rpcRule is one row of the rules table as a client sees it: the call, who may make it and
// one principal who may not, and its HTTP route on the internal door, if it has one.
type rpcRule struct {
	name    string
	call    call
	with    string     // a principal allowed; its call answers want
	without string     // an authenticated principal refused (PERMISSION_DENIED); "" when any principal may
	want    codes.Code // the answer to with
	open    bool       // no credentials needed at all
	method  string     // HTTP method, "" when the RPC has no HTTP route
	path    string
	status  int // HTTP answer to with
}

func (e *secured) rules(t *testing.T) []rpcRule {
	unknownEntry := "0190a2f0-0000-7000-8000-000000000001"
	mv := &moveapiv1.Webhook{}
	mvRaw := testenv.Sample(t, "moveapi/job_state_started.json", mv)
	mm := &movementv1.Webhook{}
	mmRaw := testenv.Sample(t, "movement/text_message_sent.json", mm)
	body, err := structpb.NewStruct(map[string]any{"event_type": "incident.created"})
	if err != nil {
		t.Fatal(err)
	}
	events := func(conn *grpc.ClientConn) hookstreamv1.EventServiceClient {
		return hookstreamv1.NewEventServiceClient(conn)
	}
	quarantine := func(conn *grpc.ClientConn) hookstreamv1.QuarantineServiceClient {
		return hookstreamv1.NewQuarantineServiceClient(conn)
	}
	webhooks := func(conn *grpc.ClientConn) hookstreamv1.WebhookServiceClient {
		return hookstreamv1.NewWebhookServiceClient(conn)
	}
	all := &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}
	return []rpcRule{
		{name: "health_check", open: true, with: "reader", want: codes.OK, call: func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			return err
		}},
		{name: "reflection", with: "reader", want: codes.OK, call: reflect},
		{name: "subscribe", with: "consumer", without: "reader", want: codes.OK, call: subscribe("billing-a", hookstreamv1.Provider_PROVIDER_MVMNT)},
		{name: "tail", with: "reader", without: "consumer", want: codes.OK, method: "GET", path: "/v1/events:tail?start.policy=POLICY_ALL", status: 200,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				ctx, cancel := context.WithCancel(ctx)
				defer cancel()
				return firstOf(events(conn).Tail(ctx, &hookstreamv1.TailRequest{Start: all}))
			}},
		{name: "get_event", with: "reader", without: "consumer", want: codes.OK, method: "GET", path: "/v1/events/" + e.eventID, status: 200,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).GetEvent(ctx, &hookstreamv1.GetEventRequest{Id: e.eventID})
				return err
			}},
		{name: "list_events", with: "reader", without: "admin", want: codes.OK, method: "GET", path: "/v1/events?page_size=1", status: 200,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).ListEvents(ctx, &hookstreamv1.ListEventsRequest{PageSize: 1})
				return err
			}},
		{name: "list_groups", with: "admin", without: "consumer", want: codes.OK, method: "GET", path: "/v1/groups", status: 200,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).ListGroups(ctx, &hookstreamv1.ListGroupsRequest{})
				return err
			}},
		{name: "delete_group", with: "admin", without: "reader", want: codes.NotFound, method: "DELETE", path: "/v1/groups/no-such-group", status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).DeleteGroup(ctx, &hookstreamv1.DeleteGroupRequest{Name: "no-such-group"})
				return err
			}},
		{name: "get_group", with: "admin", without: "consumer", want: codes.NotFound, method: "GET", path: "/v1/groups/no-such-group", status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).GetGroup(ctx, &hookstreamv1.GetGroupRequest{Name: "no-such-group"})
				return err
			}},
		{name: "reset_group", with: "admin", without: "consumer", want: codes.NotFound, method: "POST", path: "/v1/groups/no-such-group:reset?position.policy=POLICY_ALL", status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).ResetGroup(ctx, &hookstreamv1.ResetGroupRequest{Name: "no-such-group", Position: all})
				return err
			}},
		{name: "pause_group", with: "admin", without: "reader", want: codes.NotFound, method: "POST", path: "/v1/groups/no-such-group:pause", status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).PauseGroup(ctx, &hookstreamv1.PauseGroupRequest{Name: "no-such-group"})
				return err
			}},
		{name: "resume_group", with: "admin", without: "consumer", want: codes.NotFound, method: "POST", path: "/v1/groups/no-such-group:resume", status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := events(conn).ResumeGroup(ctx, &hookstreamv1.ResumeGroupRequest{Name: "no-such-group"})
				return err
			}},
		{name: "list_entries", with: "admin", without: "reader", want: codes.OK, method: "GET", path: "/v1/quarantine", status: 200,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := quarantine(conn).ListEntries(ctx, &hookstreamv1.ListEntriesRequest{})
				return err
			}},
		{name: "get_entry", with: "admin", without: "reader", want: codes.NotFound, method: "GET", path: "/v1/quarantine/" + unknownEntry, status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := quarantine(conn).GetEntry(ctx, &hookstreamv1.GetEntryRequest{Id: unknownEntry})
				return err
			}},
		{name: "redrive_entry", with: "admin", without: "consumer", want: codes.NotFound, method: "POST", path: "/v1/quarantine/" + unknownEntry + ":redrive", status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := quarantine(conn).RedriveEntry(ctx, &hookstreamv1.RedriveEntryRequest{Id: unknownEntry})
				return err
			}},
		{name: "delete_entry", with: "admin", without: "reader", want: codes.NotFound, method: "DELETE", path: "/v1/quarantine/" + unknownEntry, status: 404,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := quarantine(conn).DeleteEntry(ctx, &hookstreamv1.DeleteEntryRequest{Id: unknownEntry})
				return err
			}},
		// Purges only entries older than 1970-01-01T00:00:01Z: none, whatever other rows quarantined.
		{name: "purge_entries", with: "admin", without: "consumer", want: codes.OK, method: "POST", path: "/v1/quarantine:purge?quarantined_before=1970-01-01T00:00:01Z", status: 200,
			call: func(ctx context.Context, conn *grpc.ClientConn) error {
				_, err := quarantine(conn).PurgeEntries(ctx, &hookstreamv1.PurgeEntriesRequest{QuarantinedBefore: timestamppb.New(time.Unix(1, 0))})
				return err
			}},
		{name: "produce_moveapi", with: "producer", without: "mover", want: codes.OK, call: func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := webhooks(conn).ReceiveMoveApiWebhook(ctx, &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: mv, Raw: mvRaw, WebhookId: "msg_rules"})
			return err
		}},
		{name: "produce_movement", with: "mover", without: "producer", want: codes.OK, call: func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := webhooks(conn).ReceiveMovementWebhook(ctx, &hookstreamv1.ReceiveMovementWebhookRequest{Webhook: mm, Raw: mmRaw})
			return err
		}},
		{name: "produce_mvmnt", with: "producer", without: "consumer", want: codes.OK, call: func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := webhooks(conn).ReceiveMvmntDelivery(ctx, mvmntDelivery(t))
			return err
		}},
		{name: "produce_listener", with: "producer", without: "mover", want: codes.OK, call: func(ctx context.Context, conn *grpc.ClientConn) error {
			_, err := webhooks(conn).NotifyListener(ctx, &hookstreamv1.NotifyListenerRequest{ListenerId: secureListener, Body: body, DedupId: "rules"})
			return err
		}},
	}
}

// TestInternalAPIAuth is the rules table as clients see it: every internal RPC, over gRPC and
// (where it has a route) over the HTTP mapping, with no credentials, a token nobody has, a
// principal without the permission, and one with it — on TLS listeners with a client CA.
func TestInternalAPIAuth(t *testing.T) {
	t.Parallel()
	e := startSecured(t)
	conn, httpc := e.dial(t, nil), e.client(nil)
	for _, r := range e.rules(t) {
		t.Run(r.name, func(t *testing.T) {
			cases := []struct {
				as     string
				want   codes.Code
				status int
			}{
				{as: "", want: codes.Unauthenticated, status: http.StatusUnauthorized},
				{as: "wrong", want: codes.Unauthenticated, status: http.StatusUnauthorized},
				{as: r.without, want: codes.PermissionDenied, status: http.StatusForbidden},
				{as: r.with, want: r.want, status: r.status},
			}
			for i, c := range cases {
				if i == 2 && r.without == "" {
					continue // any principal may
				}
				if r.open {
					c.want, c.status = r.want, r.status
				}
				name := c.as
				if name == "" {
					name = "none"
				}
				t.Run(name, func(t *testing.T) {
					if err := r.call(e.as(c.as), conn); status.Code(err) != c.want {
						t.Errorf("grpc as %q: got %v, want %v", c.as, err, c.want)
					}
					if r.method == "" {
						return
					}
					if got := e.get(t, httpc, r.method, r.path, c.as); got != c.status {
						t.Errorf("%s %s as %q: got status %d, want %d", r.method, r.path, c.as, got, c.status)
					}
				})
			}
		})
	}
	// The OpenAPI document is open (gateway.APIOptions.OpenAPI): it holds no data and no secret.
	t.Run("openapi_document_open", func(t *testing.T) {
		for _, as := range []string{"", "wrong", "reader"} {
			if got := e.get(t, httpc, http.MethodGet, "/openapi.json", as); got != http.StatusOK {
				t.Errorf("GET /openapi.json as %q: got status %d, want 200", as, got)
			}
		}
	})
}

// TestInternalAPIClientCertificates authenticates by client certificate, over gRPC and HTTP:
// the principal is the certificate's common name or a subject alternative name, a certificate of
// the CA that is no principal's is refused like a wrong token, and a certificate of another CA
// does not get through the handshake.
func TestInternalAPIClientCertificates(t *testing.T) {
	t.Parallel()
	e := startSecured(t)
	reader := e.ca.Client("reader.internal")
	consumer := e.ca.Client("some-pod-name", "consumer.svc.internal")
	stranger := e.ca.Client("stranger.internal")
	foreign := testca.New(t).Client("reader.internal")
	list := func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := hookstreamv1.NewEventServiceClient(conn).ListEvents(ctx, &hookstreamv1.ListEventsRequest{PageSize: 1})
		return err
	}
	entries := func(ctx context.Context, conn *grpc.ClientConn) error {
		_, err := hookstreamv1.NewQuarantineServiceClient(conn).ListEntries(ctx, &hookstreamv1.ListEntriesRequest{})
		return err
	}
	for _, tt := range []struct {
		name   string
		cert   *tls.Certificate
		call   call
		path   string
		want   codes.Code
		status int
	}{
		{name: "common_name_reads", cert: &reader, call: list, path: "/v1/events?page_size=1", want: codes.OK, status: 200},
		{name: "common_name_without_admin", cert: &reader, call: entries, path: "/v1/quarantine", want: codes.PermissionDenied, status: 403},
		{name: "dns_san_consumes", cert: &consumer, call: subscribe("any-group", hookstreamv1.Provider_PROVIDER_MVMNT), want: codes.OK},
		{name: "dns_san_without_read", cert: &consumer, call: list, path: "/v1/events?page_size=1", want: codes.PermissionDenied, status: 403},
		{name: "no_principal_for_certificate", cert: &stranger, call: list, path: "/v1/events?page_size=1", want: codes.Unauthenticated, status: 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := status.Code(tt.call(context.Background(), e.dial(t, tt.cert))); got != tt.want {
				t.Errorf("grpc: got %v, want %v", got, tt.want)
			}
			if tt.path == "" {
				return
			}
			if got := e.get(t, e.client(tt.cert), "GET", tt.path, ""); got != tt.status {
				t.Errorf("GET %s: got status %d, want %d", tt.path, got, tt.status)
			}
		})
	}
	t.Run("other_ca", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if got := status.Code(list(ctx, e.dial(t, &foreign))); got != codes.Unavailable {
			t.Errorf("grpc with another CA's certificate: got %v, want Unavailable (handshake refused)", got)
		}
		if resp, err := e.client(&foreign).Get(e.api + "/v1/events"); err == nil {
			resp.Body.Close()
			t.Errorf("HTTP with another CA's certificate: got status %d, want the handshake refused", resp.StatusCode)
		}
	})
	t.Run("plaintext", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := grpc.NewClient(e.s.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if got := status.Code(list(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+e.tokens["reader"]), conn)); got != codes.Unavailable {
			t.Errorf("plaintext gRPC to the TLS door: got %v, want Unavailable", got)
		}
	})
}

// TestSubscribeHeldToGroupsAndProviders checks a consumer's groups and providers when its
// stream opens.
func TestSubscribeHeldToGroupsAndProviders(t *testing.T) {
	t.Parallel()
	e := startSecured(t)
	conn := e.dial(t, nil)
	for _, tt := range []struct {
		name      string
		group     string
		providers []hookstreamv1.Provider
		want      codes.Code
	}{
		{name: "its_group_and_provider", group: "billing-eu", providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MVMNT}, want: codes.OK},
		{name: "ephemeral", providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MVMNT}, want: codes.OK},
		{name: "other_group", group: "shipping", providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MVMNT}, want: codes.PermissionDenied},
		{name: "other_provider", group: "billing-eu", providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MOVEAPI}, want: codes.PermissionDenied},
		{name: "one_provider_too_many", group: "billing-eu", providers: []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MVMNT, hookstreamv1.Provider_PROVIDER_MOVEMENT}, want: codes.PermissionDenied},
		{name: "every_provider", group: "billing-eu", want: codes.PermissionDenied},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := status.Code(subscribe(tt.group, tt.providers...)(e.as("consumer"), conn)); got != tt.want {
				t.Errorf("subscribe: got %v, want %v", got, tt.want)
			}
		})
	}
}

// storedEvents lists every stored event, as reader.
func (e *secured) storedEvents(t *testing.T, conn *grpc.ClientConn) []*hookstreamv1.Event {
	t.Helper()
	var out []*hookstreamv1.Event
	token := ""
	for {
		resp, err := hookstreamv1.NewEventServiceClient(conn).ListEvents(e.as("reader"), &hookstreamv1.ListEventsRequest{PageSize: 100, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetEvents()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out
		}
	}
}

// sendMoveAPI posts a signed Move API delivery to the public door and returns its receipt.
func (e *secured) sendMoveAPI(t *testing.T, id string, body []byte) (int, *hookstreamv1.Receipt) {
	t.Helper()
	now := time.Now()
	sig, err := verify.Sign(e.moveapi, id, now, body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", e.public+"/webhooks/moveapi", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("svix-id", id)
	req.Header.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("svix-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	var r struct {
		Receipt json.RawMessage `json:"receipt"`
	}
	receipt := &hookstreamv1.Receipt{}
	if json.Unmarshal(out, &r) == nil && r.Receipt != nil {
		if err := convert.Unmarshal(r.Receipt, receipt); err != nil {
			t.Fatalf("receipt %s: %v", out, err)
		}
	}
	return resp.StatusCode, receipt
}

// TestProducerCannotForgeDeliveries is reproduction 3 of the access issue: a gRPC producer
// stores a Move API event under the svix-id of a genuine delivery, which is then sent signed to
// the public door: the genuine delivery is stored (not answered "duplicate"), the producer's
// event records the producer as its source, and a principal without the provider stores nothing.
func TestProducerCannotForgeDeliveries(t *testing.T) {
	t.Parallel()
	e := startSecured(t)
	conn := e.dial(t, nil)
	webhooks := hookstreamv1.NewWebhookServiceClient(conn)
	mv := &moveapiv1.Webhook{}
	raw := testenv.Sample(t, "moveapi/ugc_job_state_completed.json", mv)
	const svixID = "msg_2yZ8kq3genuine"
	before := len(e.storedEvents(t, conn))

	forged, err := webhooks.ReceiveMoveApiWebhook(e.as("producer"), &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: mv, Raw: raw, WebhookId: svixID})
	if err != nil || forged.GetReceipt().GetOutcome() != hookstreamv1.Receipt_OUTCOME_STORED {
		t.Fatalf("producer's event: %v %v, want stored", forged, err)
	}
	if _, err := webhooks.ReceiveMoveApiWebhook(e.as("mover"), &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: mv, Raw: raw, WebhookId: svixID + "x"}); status.Code(err) != codes.PermissionDenied {
		t.Errorf("a producer of Movement only sending Move API: got %v, want PermissionDenied", err)
	}
	code, genuine := e.sendMoveAPI(t, svixID, raw)
	if code != http.StatusOK || genuine.GetOutcome() != hookstreamv1.Receipt_OUTCOME_STORED {
		t.Fatalf("genuine delivery after the producer's: status %d, receipt %v, want 200 stored", code, genuine)
	}
	if code, again := e.sendMoveAPI(t, svixID, raw); code != http.StatusOK || !again.GetDuplicate() || again.GetSequence() != genuine.GetSequence() {
		t.Errorf("genuine delivery again: status %d, receipt %v, want a duplicate of sequence %d", code, again, genuine.GetSequence())
	}
	if again, err := webhooks.ReceiveMoveApiWebhook(e.as("producer"), &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: mv, Raw: raw, WebhookId: svixID}); err != nil || !again.GetReceipt().GetDuplicate() || again.GetReceipt().GetSequence() != forged.GetReceipt().GetSequence() {
		t.Errorf("producer's event again: %v %v, want a duplicate of its own sequence %d", again, err, forged.GetReceipt().GetSequence())
	}

	got := map[string][2]string{} // id → source, dedup key
	for _, ev := range e.storedEvents(t, conn)[before:] {
		got[ev.GetId()] = [2]string{ev.GetSource(), ev.GetDedupKey()}
	}
	want := map[string][2]string{
		forged.GetReceipt().GetEventId(): {"grpc:producer", "grpc:producer/" + svixID},
		genuine.GetEventId():             {"/webhooks/moveapi", svixID},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored events (source, dedup key) differ (-want +got):\n%s", diff)
	}
}

// TestOpenReflection: grpc.open_reflection serves reflection without credentials, and nothing
// else.
func TestOpenReflection(t *testing.T) {
	t.Parallel()
	e := startSecured(t, func(c *config.Config) { c.GRPC.OpenReflection = true })
	conn := e.dial(t, nil)
	if err := reflect(context.Background(), conn); err != nil {
		t.Errorf("reflection without credentials: got %v, want OK", err)
	}
	_, err := hookstreamv1.NewEventServiceClient(conn).ListEvents(context.Background(), &hookstreamv1.ListEventsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("ListEvents without credentials: got %v, want Unauthenticated", err)
	}
}

// TestInternalAPIJWT authenticates by a JWT of the configured issuer, over gRPC and HTTP: the
// token's subject is the principal, held to its permissions; an expired token is refused.
func TestInternalAPIJWT(t *testing.T) {
	t.Parallel()
	issuer := testca.NewIssuer(t, "k1")
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	testca.WriteJWKS(t, jwks, issuer)
	e := startSecured(t, func(c *config.Config) {
		c.Auth.JWT = config.JWT{JWKSFile: jwks, Issuer: "https://issuer.internal", Audience: "hookstream"}
		c.Auth.Principals["workload"] = config.Principal{JWTSubjects: []string{"system:serviceaccount:billing:reader"}, Permissions: []string{"read"}}
	})
	token := func(exp time.Duration) string {
		now := time.Now()
		return issuer.Sign(jwt.Claims{Issuer: "https://issuer.internal", Audience: jwt.Audience{"hookstream"}, Subject: "system:serviceaccount:billing:reader", Expiry: jwt.NewNumericDate(now.Add(exp))})
	}
	e.tokens["jwt"], e.tokens["expired-jwt"] = token(time.Hour), token(-time.Hour)
	conn, httpc := e.dial(t, nil), e.client(nil)
	list := func(ctx context.Context) error {
		_, err := hookstreamv1.NewEventServiceClient(conn).ListEvents(ctx, &hookstreamv1.ListEventsRequest{PageSize: 1})
		return err
	}
	entries := func(ctx context.Context) error {
		_, err := hookstreamv1.NewQuarantineServiceClient(conn).ListEntries(ctx, &hookstreamv1.ListEntriesRequest{})
		return err
	}
	for _, tt := range []struct {
		name   string
		as     string
		call   func(context.Context) error
		path   string
		want   codes.Code
		status int
	}{
		{name: "reads", as: "jwt", call: list, path: "/v1/events?page_size=1", want: codes.OK, status: 200},
		{name: "without_admin", as: "jwt", call: entries, path: "/v1/quarantine", want: codes.PermissionDenied, status: 403},
		{name: "expired", as: "expired-jwt", call: list, path: "/v1/events?page_size=1", want: codes.Unauthenticated, status: 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := status.Code(tt.call(e.as(tt.as))); got != tt.want {
				t.Errorf("grpc: got %v, want %v", got, tt.want)
			}
			if got := e.get(t, httpc, "GET", tt.path, tt.as); got != tt.status {
				t.Errorf("GET %s: got %d, want %d", tt.path, got, tt.status)
			}
		})
	}
}
