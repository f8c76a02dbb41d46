package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/hookstream/hookstream/gen/openapi"
)

// committed loads and validates the committed document, as its readers do.
func committed(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapi.JSON)
	if err != nil {
		t.Fatalf("load gen/openapi: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("validate gen/openapi: %v", err)
	}
	return doc
}

func TestCommittedDocument(t *testing.T) {
	t.Parallel()
	doc := committed(t)
	if doc.OpenAPI != openAPIVersion {
		t.Errorf("got openapi %q, want %q", doc.OpenAPI, openAPIVersion)
	}
	if doc.Info.Title != "hookstream" {
		t.Errorf("got title %q, want hookstream", doc.Info.Title)
	}
	if v := doc.Info.Version; !strings.HasPrefix(v, "v1+") || len(v) != len("v1+")+12 {
		t.Errorf("got version %q, want v1+<12 hex digits>", v)
	}
}

// httpRule is one google.api.http annotation of a hookstream RPC.
type httpRule struct {
	service, method, verb, path string
}

// annotatedRoutes reads the google.api.http annotation of every RPC of hookstream's services.
func annotatedRoutes(t *testing.T) []httpRule {
	t.Helper()
	var rules []httpRule
	protoregistry.GlobalFiles.RangeFilesByPackage("hookstream.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			sd := fd.Services().Get(i)
			for j := range sd.Methods().Len() {
				m := sd.Methods().Get(j)
				rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				r := httpRule{service: string(sd.Name()), method: string(m.Name())}
				switch {
				case rule.GetGet() != "":
					r.verb, r.path = http.MethodGet, rule.GetGet()
				case rule.GetPost() != "":
					r.verb, r.path = http.MethodPost, rule.GetPost()
				case rule.GetDelete() != "":
					r.verb, r.path = http.MethodDelete, rule.GetDelete()
				case rule.GetPut() != "":
					r.verb, r.path = http.MethodPut, rule.GetPut()
				case rule.GetPatch() != "":
					r.verb, r.path = http.MethodPatch, rule.GetPatch()
				default:
					continue // gRPC only (Subscribe)
				}
				rules = append(rules, r)
			}
		}
		return true
	})
	if len(rules) < 10 {
		t.Fatalf("found %d annotated RPCs: the protos are not registered", len(rules))
	}
	return rules
}

// TestEveryAnnotatedRoute finds every RPC's route in the document, on its door's server and with
// security.
func TestEveryAnnotatedRoute(t *testing.T) {
	t.Parallel()
	doc := committed(t)
	for _, r := range annotatedRoutes(t) {
		t.Run(r.service+"_"+r.method, func(t *testing.T) {
			t.Parallel()
			item := doc.Paths.Value(r.path)
			if item == nil {
				t.Fatalf("no path %s", r.path)
			}
			op := item.GetOperation(r.verb)
			if op == nil {
				t.Fatalf("no %s %s", r.verb, r.path)
			}
			if want := r.service + "_" + r.method; op.OperationID != want {
				t.Errorf("%s %s: got operation %q, want %q", r.verb, r.path, op.OperationID, want)
			}
			wantAddr := internalServer.Variables["addr"].Default
			if r.service == webhookTag {
				wantAddr = publicServer.Variables["addr"].Default
			}
			if len(item.Servers) != 1 || item.Servers[0].Variables["addr"] == nil || item.Servers[0].Variables["addr"].Default != wantAddr {
				t.Errorf("%s %s: got servers %v, want the one at %s", r.verb, r.path, item.Servers, wantAddr)
			}
			if op.Security == nil || len(*op.Security) == 0 {
				t.Errorf("%s %s: no security", r.verb, r.path)
			}
			for _, req := range deref(op.Security) {
				for name := range req {
					if doc.Components.SecuritySchemes[name] == nil {
						t.Errorf("%s %s: security scheme %q is not defined", r.verb, r.path, name)
					}
				}
			}
		})
	}
}

func deref(s *openapi3.SecurityRequirements) openapi3.SecurityRequirements {
	if s == nil {
		return nil
	}
	return *s
}

// samples reads the provider payloads of convert's testdata matching pattern
// ("mvmnt/*.json").
func samples(t *testing.T, pattern string) map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "convert", "testdata", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples %s: %v", pattern, err)
	}
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = v
	}
	return out
}

// TestWebhookRoutes checks each webhook route's security, its body (the provider's real JSON:
// every sample payload validates, and one without a required field does not), that the RPC's
// other fields (raw, webhook_id, dedup_id) are no parameters, and its error format.
func TestWebhookRoutes(t *testing.T) {
	t.Parallel()
	doc := committed(t)
	tests := []struct {
		name, path   string
		wantBody     string // the body schema's reference; empty: an inline object
		wantSecurity openapi3.SecurityRequirements
		wantParams   []string
		samples      string
		invalid      string // a body the schema must refuse
		wantError    string // the errors' schema
	}{
		{
			name: "moveapi", path: "/webhooks/moveapi", wantBody: schemaRef("hookstream.moveapi.v1.Webhook" + wireSuffix),
			wantSecurity: openapi3.SecurityRequirements{
				{schemeSvixID: {}, schemeSvixTimestamp: {}, schemeSvixSignature: {}},
				{schemeWebhookID: {}, schemeWebhookTimestamp: {}, schemeWebhookSignature: {}},
			},
			samples: "moveapi/*.json", invalid: `{"event_name":"job.state.started","detail":{}}`, wantError: schemaStatus,
		},
		{
			name: "movement", path: "/webhooks/movement", wantBody: schemaRef("hookstream.movement.v1.Webhook" + wireSuffix),
			wantSecurity: openapi3.SecurityRequirements{{schemeMovementToken: {}}, {schemeMovementBearer: {}}, {schemeMovementBasic: {}}},
			samples:      "movement/*.json", invalid: `{"topic":"call","event":"finished","call":{"id":true}}`, wantError: schemaStatus,
		},
		{
			name: "mvmnt", path: "/webhooks/mvmnt", wantBody: schemaRef("hookstream.mvmnt.v1.Delivery" + wireSuffix),
			wantSecurity: openapi3.SecurityRequirements{{schemeMVMNTAPIKey: {}}},
			samples:      "mvmnt/*.json", invalid: `{"events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{}}]}`, wantError: schemaStatus,
		},
		{
			name: "listener", path: "/webhooks/v1/listeners/{listener_id}/notify",
			wantSecurity: openapi3.SecurityRequirements{{schemeListenerBearer: {}}, {schemeListenerBearer: {}, schemeListenerHMAC: {}}},
			wantParams:   []string{"listener_id"}, samples: "listener/*.json", invalid: `["not", "an", "object"]`, wantError: schemaListenerError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			op := doc.Paths.Value(tt.path).GetOperation(http.MethodPost)
			if diff := cmp.Diff(tt.wantSecurity, deref(op.Security)); diff != "" {
				t.Errorf("security (-want +got):\n%s", diff)
			}
			var params []string
			for _, p := range op.Parameters {
				params = append(params, p.Value.Name)
			}
			if diff := cmp.Diff(tt.wantParams, params); diff != "" {
				t.Errorf("parameters (-want +got):\n%s", diff)
			}
			body := op.RequestBody.Value.Content.Get("application/json")
			if body == nil || body.Schema == nil || !op.RequestBody.Value.Required {
				t.Fatalf("no required JSON request body")
			}
			if body.Schema.Ref != tt.wantBody {
				t.Errorf("got body schema %q, want %q", body.Schema.Ref, tt.wantBody)
			}
			for name, v := range samples(t, tt.samples) {
				if err := body.Schema.Value.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
					t.Errorf("sample %s: %v", name, err)
				}
			}
			var bad any
			if err := json.Unmarshal([]byte(tt.invalid), &bad); err != nil {
				t.Fatal(err)
			}
			if err := body.Schema.Value.VisitJSON(bad, openapi3.EnableJSONSchema2020()); err == nil {
				t.Errorf("body %s: valid, want refused", tt.invalid)
			}
			for _, code := range []int{400, 401, 413, 429, 503} {
				r := op.Responses.Status(code)
				if r == nil || r.Value.Content.Get("application/json").Schema.Ref != schemaRef(tt.wantError) {
					t.Errorf("answer %d: want a %s body", code, tt.wantError)
				}
			}
			if op.Responses.Status(http.StatusOK).Value.Content.Get("application/json") == nil {
				t.Errorf("answer 200: no JSON body")
			}
		})
	}
}

// TestTailIsNDJSON checks that Tail's answer is a stream of newline-delimited JSON objects, each
// {"result": TailResponse} or {"error": google.rpc.Status}.
func TestTailIsNDJSON(t *testing.T) {
	t.Parallel()
	doc := committed(t)
	ok := doc.Paths.Value("/v1/events:tail").GetOperation(http.MethodGet).Responses.Status(http.StatusOK).Value
	var types []string
	for mt := range ok.Content {
		types = append(types, mt)
	}
	if diff := cmp.Diff([]string{"application/x-ndjson"}, types); diff != "" {
		t.Fatalf("content types (-want +got):\n%s", diff)
	}
	// A line is the envelope format's {"result"}/{"error"} or, with format=EVENT_FORMAT_CLOUDEVENT,
	// a CloudEvent.
	line := ok.Content.Get("application/x-ndjson").Schema.Value
	if len(line.AnyOf) != 2 || line.AnyOf[1].Ref != schemaRef(schemaCloudEvent) {
		t.Fatalf("a line: got %d kinds, want the envelope's and a CloudEvent", len(line.AnyOf))
	}
	got := map[string]string{}
	for name, p := range line.AnyOf[0].Value.Properties {
		got[name] = p.Ref
	}
	want := map[string]string{"result": schemaRef("hookstream.v1.TailResponse"), "error": schemaRef(schemaStatus)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("an envelope line's properties (-want +got):\n%s", diff)
	}
}

// TestGetEventCloudEvent checks GetEvent's two answers: the envelope as JSON, and the
// CloudEvent (format=EVENT_FORMAT_CLOUDEVENT) as application/cloudevents+json.
func TestGetEventCloudEvent(t *testing.T) {
	t.Parallel()
	doc := committed(t)
	ok := doc.Paths.Value("/v1/events/{id}").GetOperation(http.MethodGet).Responses.Status(http.StatusOK).Value
	got := map[string]string{}
	for mt, c := range ok.Content {
		got[mt] = c.Schema.Ref
	}
	want := map[string]string{"application/json": schemaRef("hookstream.v1.GetEventResponse"), "application/cloudevents+json": schemaRef(schemaCloudEvent)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}
	required := doc.Components.Schemas[schemaCloudEvent].Value.Required
	if diff := cmp.Diff([]string{"id", "source", "specversion", "type"}, required); diff != "" {
		t.Errorf("a CloudEvent's required attributes (-want +got):\n%s", diff)
	}
}

// minimalSwagger is a Swagger 2.0 document of protoc-gen-openapiv2's shape with one webhook
// route of operation id op.
func minimalSwagger(op string) []byte {
	return []byte(`{"swagger":"2.0","info":{"title":"x","version":"version not set"},
"consumes":["application/json"],"produces":["application/json"],
"paths":{"/webhooks/v1/listeners/{listener_id}/notify":{"post":{"operationId":"` + op + `","tags":["WebhookService"],
"parameters":[{"name":"listener_id","in":"path","required":true,"type":"string"},
{"name":"body","in":"body","required":true,"schema":{"type":"object"}},
{"name":"raw","in":"query","required":false,"type":"string","format":"byte"}],
"responses":{"200":{"description":"ok","schema":{"$ref":"#/definitions/hookstream.v1.NotifyListenerResponse"}},
"default":{"description":"error","schema":{"$ref":"#/definitions/google.rpc.Status"}}}}}},
"definitions":{"hookstream.v1.NotifyListenerResponse":{"type":"object","properties":{"message":{"type":"string"},"status":{"type":"string"}}},
"google.rpc.Status":{"type":"object","properties":{"code":{"type":"integer","format":"int32"},"message":{"type":"string"}}}}}`)
}

func TestBuild(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		swagger []byte
		wantErr error
	}{
		{name: "known_route", swagger: minimalSwagger("WebhookService_NotifyListener")},
		{name: "webhook_route_not_in_webhook_routes", swagger: minimalSwagger("WebhookService_ReceiveNewProvider"), wantErr: errRoute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc, err := build(tt.swagger)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("build: got %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			first, err := marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			again, err := build(tt.swagger)
			if err != nil {
				t.Fatal(err)
			}
			second, err := marshal(again)
			if err != nil {
				t.Fatal(err)
			}
			if string(first) != string(second) {
				t.Errorf("two builds of the same input differ")
			}
			if strings.Contains(string(first), `"raw"`) {
				t.Errorf("the route still has the RPC's raw field as a parameter")
			}
		})
	}
}

// TestParameterRules checks parameters that carry rules of their request fields (protovalidate)
// or of the gateway's parsing (64-bit integers).
func TestParameterRules(t *testing.T) {
	t.Parallel()
	doc := committed(t)
	type rules struct {
		Format, Pattern string
		Max             float64
	}
	tests := []struct {
		name, method, path, param string
		want                      rules
	}{
		{name: "event_id_uuid", method: http.MethodGet, path: "/v1/events/{id}", param: "id", want: rules{Format: "uuid"}},
		{name: "entry_id_uuid", method: http.MethodPost, path: "/v1/quarantine/{id}:redrive", param: "id", want: rules{Format: "uuid"}},
		{name: "listener_id_uuid", method: http.MethodPost, path: "/webhooks/v1/listeners/{listener_id}/notify", param: "listener_id", want: rules{Format: "uuid"}},
		{name: "group_name_pattern", method: http.MethodDelete, path: "/v1/groups/{name}", param: "name", want: rules{Pattern: "^[A-Za-z0-9_-]{1,64}$"}},
		{name: "page_size_maximum", method: http.MethodGet, path: "/v1/events", param: "page_size", want: rules{Format: "int32", Max: 1000}},
		{name: "sequence_digits", method: http.MethodGet, path: "/v1/events:tail", param: "start.sequence", want: rules{Format: "uint64", Pattern: "^[0-9]+$"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			params := doc.Paths.Value(tt.path).GetOperation(tt.method).Parameters
			p := params.GetByInAndName(openapi3.ParameterInPath, tt.param)
			if p == nil {
				p = params.GetByInAndName(openapi3.ParameterInQuery, tt.param)
			}
			if p == nil {
				t.Fatalf("no parameter %s", tt.param)
			}
			s := p.Schema.Value
			got := rules{Format: s.Format, Pattern: s.Pattern}
			if s.Max != nil {
				got.Max = *s.Max
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s %s %s (-want +got):\n%s", tt.method, tt.path, tt.param, diff)
			}
		})
	}
}
