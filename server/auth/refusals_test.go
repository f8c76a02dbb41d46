package auth_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/auth"
	"github.com/hookstream/hookstream/server/internal/grpctest"
	"github.com/hookstream/hookstream/server/internal/testca"
	"github.com/hookstream/hookstream/server/logs"
)

// lockedBuffer is a log's output, written by the servers' goroutines and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the records written.
func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// TestRefusedFloodLogsSometimes makes 1,000 refused internal calls in a row over each door
// (gRPC without credentials, gRPC with a principal lacking the permission, HTTP without
// credentials): each is refused, and the log gets one line per logs.Every of the flood at most,
// the later ones counting what was left out.
func TestRefusedFloodLogsSometimes(t *testing.T) {
	t.Parallel()
	const flood = 1000
	for _, tc := range []struct {
		name string
		call func(t *testing.T, grpcConn *grpc.ClientConn, httpURL string)
	}{
		{name: "grpc_unauthenticated", call: func(t *testing.T, conn *grpc.ClientConn, _ string) {
			_, err := hookstreamv1.NewEventServiceClient(conn).ListGroups(t.Context(), &hookstreamv1.ListGroupsRequest{})
			if status.Code(err) != codes.Unauthenticated {
				t.Fatalf("got %v, want UNAUTHENTICATED", err)
			}
		}},
		{name: "grpc_permission_denied", call: func(t *testing.T, conn *grpc.ClientConn, _ string) {
			_, err := hookstreamv1.NewEventServiceClient(conn).ListGroups(metadata.AppendToOutgoingContext(t.Context(), "authorization", "Bearer reader-token"), &hookstreamv1.ListGroupsRequest{})
			if status.Code(err) != codes.PermissionDenied {
				t.Fatalf("got %v, want PERMISSION_DENIED", err)
			}
		}},
		{name: "http_unauthenticated", call: func(t *testing.T, _ *grpc.ClientConn, url string) {
			resp, err := http.Get(url + "/v1/groups")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got status %d, want 401", resp.StatusCode)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, _ := authenticator(t, testca.NewIssuer(t, "k1"))
			var out lockedBuffer
			z := auth.NewAuthorizer(a, auth.AuthorizerOptions{Logger: slog.New(slog.NewJSONHandler(&out, nil))})
			conn := grpctest.ServeWith(t, []grpc.ServerOption{grpc.ChainUnaryInterceptor(z.Unary())}, func(s *grpc.Server) {
				hookstreamv1.RegisterEventServiceServer(s, hookstreamv1.UnimplementedEventServiceServer{})
			})
			hs := httptest.NewServer(z.HTTP(http.NotFoundHandler()))
			t.Cleanup(hs.Close)

			began := time.Now()
			for range flood {
				tc.call(t, conn, hs.URL)
			}
			// The bound follows from the time the flood took, so that a slow machine cannot fail it.
			most := 1 + int(time.Since(began)/logs.Every) + 1
			lines := out.lines(t)
			leftOut := 0
			for _, l := range lines {
				n, ok := l["left_out"].(float64)
				if !ok || !strings.Contains(l["msg"].(string), "refused") {
					t.Errorf("got line %v, want refusals with left_out", l)
				}
				leftOut += int(n)
			}
			if len(lines) < 1 || len(lines) > most {
				t.Errorf("got %d lines for %d refused calls, want 1 to %d", len(lines), flood, most)
			}
			if len(lines)+leftOut > flood {
				t.Errorf("got %d lines and %d left out, more than the %d calls", len(lines), leftOut, flood)
			}
		})
	}
}
