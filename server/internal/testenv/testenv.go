// Package testenv builds, for the tests of hookstream's packages, the real parts they run
// against: an embedded event log with the default configuration, and the gRPC services over it
// on loopback. It also reads back what the log stores, so that tests assert what is stored, not
// only what was answered.
package testenv

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/internal/grpctest"
	"github.com/hookstream/hookstream/server/quarantine"
	"github.com/hookstream/hookstream/server/stream"
)

// ListenerID is the listener every Services has, with default type "notification".
const ListenerID = "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a"

// LogOptions returns the event log options of the default configuration, storing in a
// temporary directory of t, changed by each of set.
func LogOptions(t testing.TB, set ...func(*eventlog.Options)) eventlog.Options {
	t.Helper()
	o := eventlog.OptionsFrom(config.Default())
	o.DataDir = t.TempDir()
	for _, f := range set {
		f(&o)
	}
	return o
}

// OpenLog opens an event log with LogOptions, closed when t ends.
func OpenLog(t testing.TB, set ...func(*eventlog.Options)) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(context.Background(), LogOptions(t, set...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Env is the gRPC services over one event log, with clients connected over loopback.
type Env struct {
	Log        *eventlog.Log
	Ingest     *ingest.Service
	Stream     *stream.Service
	Webhooks   hookstreamv1.WebhookServiceClient
	Events     hookstreamv1.EventServiceClient
	Quarantine hookstreamv1.QuarantineServiceClient
	Conn       *grpc.ClientConn
}

// Services runs WebhookService, EventService and QuarantineService, as configured by default,
// over l on a loopback gRPC server stopped when t ends (streams drain first).
func Services(t testing.TB, l *eventlog.Log) *Env {
	t.Helper()
	return ServicesWith(t, l, nil)
}

// ServicesWith is Services with the core's options changed by set (if not nil).
func ServicesWith(t testing.TB, l *eventlog.Log, set func(*ingest.Options)) *Env {
	t.Helper()
	return services(t, l, set, 0)
}

// ServicesHeartbeat is Services whose idle streams send a heartbeat every heartbeat.
func ServicesHeartbeat(t testing.TB, l *eventlog.Log, heartbeat time.Duration) *Env {
	t.Helper()
	return services(t, l, nil, heartbeat)
}

// services is Services with the core's options changed by set (if not nil), and the streams'
// heartbeat interval (the default when 0).
func services(t testing.TB, l *eventlog.Log, set func(*ingest.Options), heartbeat time.Duration) *Env {
	t.Helper()
	d := config.Default()
	o := ingest.Options{Log: l, BodyLimit: d.HTTP.BodyLimit, Listeners: map[string]ingest.Listener{ListenerID: {DefaultType: "notification"}}}
	if set != nil {
		set(&o)
	}
	in, err := ingest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	so := stream.OptionsFrom(d)
	so.Log, so.Heartbeat = l, heartbeat
	ev, err := stream.New(so)
	if err != nil {
		t.Fatal(err)
	}
	q, err := quarantine.New(l, in, d.GRPC.MaxResponseBytes, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := grpctest.Serve(t, func(srv *grpc.Server) {
		hookstreamv1.RegisterWebhookServiceServer(srv, in)
		hookstreamv1.RegisterEventServiceServer(srv, ev)
		hookstreamv1.RegisterQuarantineServiceServer(srv, q)
	})
	t.Cleanup(ev.Drain) // before the server stops: streams end with their "draining" message
	return &Env{
		Log: l, Ingest: in, Stream: ev, Conn: conn,
		Webhooks:   hookstreamv1.NewWebhookServiceClient(conn),
		Events:     hookstreamv1.NewEventServiceClient(conn),
		Quarantine: hookstreamv1.NewQuarantineServiceClient(conn),
	}
}

// Stored returns every event l stores, oldest first.
func Stored(t testing.TB, l *eventlog.Log) []*hookstreamv1.Event {
	t.Helper()
	var all []*hookstreamv1.Event
	for from := uint64(1); from != 0; {
		page, next, err := l.ListEvents(context.Background(), nil, from, 1000, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		from = next
	}
	return all
}

// Entries returns every quarantine entry l stores, oldest first.
func Entries(t testing.TB, l *eventlog.Log) []*hookstreamv1.QuarantineEntry {
	t.Helper()
	var all []*hookstreamv1.QuarantineEntry
	for from := uint64(1); from != 0; {
		page, next, err := l.ListEntries(context.Background(), eventlog.EntrySubject(0, 0), from, 1000, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		from = next
	}
	return all
}

// Usage returns what l's streams hold.
func Usage(t testing.TB, l *eventlog.Log) eventlog.Usage {
	t.Helper()
	u, err := l.Usage(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// Items returns the exact bytes of each element of a delivery's "events" array, read with
// encoding/json (a json.RawMessage keeps the bytes as they are): the oracle of what each MVMNT
// event keeps, independent of the code that splits deliveries.
func Items(t testing.TB, raw []byte) [][]byte {
	t.Helper()
	var d struct{ Events []json.RawMessage }
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	out := make([][]byte, len(d.Events))
	for i, e := range d.Events {
		out[i] = e
	}
	return out
}

// ListenerBody is a listener notification of exactly n bytes (n of at least 32) whose typed form
// is as large as can be: a list of one-digit numbers, each a google.protobuf.Value.
func ListenerBody(n int) []byte {
	const pre, post = `{"event_type":"big","data":[`, `0]}`
	k := (n - len(pre) - len(post)) / 2
	b := []byte(pre + strings.Repeat("0,", k) + post)
	if len(b) < n {
		b = append(b[:len(b)-2], []byte(" ]}")...) // one byte of space makes up an odd n
	}
	return b
}

// Sample reads a provider payload of convert's testdata (path like "moveapi/job_state_started.json")
// into m and returns its bytes.
func Sample(t testing.TB, path string, m proto.Message) []byte {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "..", "convert", "testdata", path))
	if err != nil {
		t.Fatal(err)
	}
	if err := convert.Unmarshal(raw, m); err != nil {
		t.Fatal(err)
	}
	return raw
}
