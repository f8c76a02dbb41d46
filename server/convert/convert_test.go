package convert_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"google.golang.org/protobuf/types/known/structpb"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

const listenerID = "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a"

// outcome is what converting and validating a payload must come to.
type outcome int

const (
	accepted  outcome = iota // converts and validates
	malformed                // conversion fails: wraps convert.ErrMalformed
	invalid                  // converts but breaks a schema rule
)

// result is what a payload converted into: the type strings and the typed payloads that
// hookstream stores, or the failure.
type result struct {
	types      []string
	payloads   []proto.Message
	err        error
	violations []string // "field: rule" of each violated rule
}

// ingest converts raw the way the front door does for provider: the gateway decodes the body
// into the RPC's request with convert.Marshaler, the request is validated, then typed.
func ingest(t *testing.T, provider string, raw []byte) result {
	t.Helper()
	dec := func(m proto.Message) error {
		if err := convert.Marshaler().NewDecoder(bytes.NewReader(raw)).Decode(m); err != nil {
			return errors.Join(convert.ErrMalformed, err)
		}
		return nil
	}
	var (
		req      proto.Message
		types    []string
		payloads []proto.Message
	)
	switch provider {
	case "moveapi":
		r := &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: &moveapiv1.Webhook{}, WebhookId: "msg_test", Raw: raw}
		if err := dec(r.Webhook); err != nil {
			return result{err: err}
		}
		req, types, payloads = r, []string{convert.MoveAPIType(r.Webhook)}, []proto.Message{r.Webhook}
	case "movement":
		r := &hookstreamv1.ReceiveMovementWebhookRequest{Webhook: &movementv1.Webhook{}, Raw: raw}
		if err := dec(r.Webhook); err != nil {
			return result{err: err}
		}
		req, types, payloads = r, []string{convert.MovementType(r.Webhook)}, []proto.Message{r.Webhook}
	case "mvmnt":
		r := &hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: &mvmntv1.Delivery{}, Raw: raw}
		if err := dec(r.Delivery); err != nil {
			return result{err: err}
		}
		req = r
	case "listener":
		r := &hookstreamv1.NotifyListenerRequest{ListenerId: listenerID, Body: &structpb.Struct{}, Raw: raw}
		if err := dec(r.Body); err != nil {
			return result{err: err}
		}
		n := convert.ListenerNotification(r.ListenerId, r.Body, "listener.notification")
		req, types, payloads = r, []string{n.EventType}, []proto.Message{n}
	default:
		t.Fatalf("unknown provider %q", provider)
	}
	if err := protovalidate.Validate(req); err != nil {
		return result{err: err, violations: violations(t, err)}
	}
	if r, ok := req.(*hookstreamv1.ReceiveMvmntDeliveryRequest); ok {
		events, err := convert.MvmntEvents(r.Delivery)
		if err != nil {
			return result{err: err}
		}
		for _, e := range events {
			types = append(types, e.Event)
			payloads = append(payloads, e)
		}
	}
	for _, p := range payloads {
		if err := protovalidate.Validate(p); err != nil {
			return result{err: err, violations: violations(t, err)}
		}
	}
	return result{types: types, payloads: payloads}
}

func violations(t *testing.T, err error) []string {
	t.Helper()
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("validation failed with %v, want a *protovalidate.ValidationError", err)
	}
	var out []string
	for _, v := range verr.Violations {
		out = append(out, protovalidate.FieldPathString(v.Proto.GetField())+": "+v.Proto.GetRuleId())
	}
	slices.Sort(out)
	return out
}

// TestProviderPayloads converts every sample payload in testdata/<provider>/ (built from the
// providers' documentation) and compares the typed result with its golden file.
func TestProviderPayloads(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("found %d sample payloads, want at least 12", len(files))
	}
	for _, file := range files {
		provider := filepath.Base(filepath.Dir(file))
		if provider == "mvmnt_entities" {
			provider = "mvmnt"
		}
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(filepath.Base(filepath.Dir(file))+"_"+name, func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			res := ingest(t, provider, raw)
			if res.err != nil {
				t.Fatalf("ingest %s: %v (violations %v)", file, res.err, res.violations)
			}
			got := golden(t, res)
			path := filepath.Join("testdata", "golden", filepath.Base(filepath.Dir(file)), name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (run go test -update): %v", err)
			}
			if diff := cmp.Diff(normalize(t, want), normalize(t, got)); diff != "" {
				t.Errorf("typed %s differs from %s (-want +got):\n%s", file, path, diff)
			}
		})
	}
}

// golden renders a result as indented JSON with sorted keys.
func golden(t *testing.T, res result) []byte {
	t.Helper()
	var out []map[string]any
	for i, p := range res.payloads {
		b, err := protojson.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, map[string]any{"type": res.types[i], "message": string(p.ProtoReflect().Descriptor().FullName()), "payload": v})
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func normalize(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("golden file is not JSON: %v", err)
	}
	return v
}
