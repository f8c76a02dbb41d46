package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3conv"
)

// The document's versions. info.version is apiVersion, then "+" and a digest of the rest of the
// document: it changes whenever a route or schema does, and only then, with nothing to bump by
// hand.
const (
	openAPIVersion = "3.1.0"
	apiVersion     = "v1"
	title          = "hookstream"
)

const description = `hookstream receives webhooks from outside providers (Move API through Svix, Movement, MVMNT,
webhook listeners), stores each as a typed, validated event, and streams the events to internal
services.

It has two HTTP doors. The public door (http.addr, default :8080) serves the webhook routes
(/webhooks/...), each with its provider's authenticity check on the raw body. The internal API
(api.addr, default 127.0.0.1:9091) serves the HTTP mapping of EventService and QuarantineService,
authenticated by a Bearer token (an opaque token or a JWT) or a client certificate (mTLS) when
principals are configured, and open on loopback when none are; it also serves this document at
GET /openapi.json, without credentials (it holds no data and no secret). gRPC (grpc.addr) serves
the same services, and WebhookService for internal producers.

Generated from the protos by .ci/generate (server/internal/openapidoc); committed in
gen/openapi/hookstream.openapi.json.`

// The servers of the two doors: their addresses are variables, defaulting to the configuration's
// defaults (with http.tls or api.tls, the scheme is https).
var (
	publicServer = &openapi3.Server{URL: "{scheme}://{addr}", Description: "The public door (http.addr): the webhook routes.",
		Variables: serverVariables("localhost:8080", "http.addr, default :8080")}
	internalServer = &openapi3.Server{URL: "{scheme}://{addr}", Description: "The internal API (api.addr): EventService and QuarantineService.",
		Variables: serverVariables("127.0.0.1:9091", "api.addr, default 127.0.0.1:9091")}
)

func serverVariables(addr, desc string) map[string]*openapi3.ServerVariable {
	return map[string]*openapi3.ServerVariable{
		"scheme": {Enum: []string{"http", "https"}, Default: "http", Description: "https when the listener has TLS."},
		"addr":   {Default: addr, Description: "host:port of " + desc + "."},
	}
}

// webhookTag is the tag protoc-gen-openapiv2 gives the webhook routes: their service's name.
const webhookTag = "WebhookService"

// errRoute is wrapped by the errors of a route the generator does not know how to describe.
var errRoute = errors.New("route")

// build converts the Swagger 2.0 document to OpenAPI 3.1 and completes it. It fails when the
// input is not a Swagger document, a webhook route is not in webhookRoutes, or the result does
// not validate.
func build(swagger []byte) (*openapi3.T, error) {
	var doc2 openapi2.T
	if err := json.Unmarshal(swagger, &doc2); err != nil {
		return nil, fmt.Errorf("read swagger: %w", err)
	}
	doc, err := openapi2conv.ToV3(&doc2)
	if err != nil {
		return nil, fmt.Errorf("convert to openapi 3.0: %w", err)
	}
	ctx := context.Background()
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("converted document: %w", err)
	}
	openapi3conv.Upgrade(doc)
	doc.OpenAPI = openAPIVersion
	addComponents(doc)
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			if err := describe(doc, path, item, method, op); err != nil {
				return nil, err
			}
		}
	}
	doc.Servers = openapi3.Servers{publicServer, internalServer}
	if err := prune(doc); err != nil {
		return nil, err
	}
	if err := setInfo(doc); err != nil {
		return nil, err
	}
	return doc, check(ctx, doc)
}

// check validates the document as its readers will load it: from its JSON.
func check(ctx context.Context, doc *openapi3.T) error {
	b, err := marshal(doc)
	if err != nil {
		return err
	}
	loaded, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return fmt.Errorf("load the openapi 3.1 document: %w", err)
	}
	if err := loaded.Validate(ctx); err != nil {
		return fmt.Errorf("openapi 3.1 document: %w", err)
	}
	return nil
}

// describe completes one operation: a webhook route's from webhookRoutes, an internal route's
// with the internal API's security; a server-streaming one as newline-delimited JSON.
func describe(doc *openapi3.T, path string, item *openapi3.PathItem, method string, op *openapi3.Operation) error {
	integerParameters(op)
	parameterRules(op)
	if !slices.Contains(op.Tags, webhookTag) {
		item.Servers = openapi3.Servers{internalServer}
		describeInternal(op)
		describeStream(op)
		describeCloudEvents(op)
		return nil
	}
	item.Servers = openapi3.Servers{publicServer}
	r, ok := webhookRoutes[op.OperationID]
	if !ok {
		return fmt.Errorf("%w %s %s: operation %s is not in webhookRoutes (its security and answers)", errRoute, method, path, op.OperationID)
	}
	if method != http.MethodPost {
		return fmt.Errorf("%w %s %s: webhook routes are POST", errRoute, method, path)
	}
	return describeWebhook(doc, op, r)
}

// integerPatterns are the patterns of the 64-bit integer parameters, which the gateway parses
// with strconv (they are strings to JSON: protojson writes 64-bit integers as strings).
var integerPatterns = map[string]string{"int64": `^-?[0-9]+$`, "uint64": `^[0-9]+$`}

// integerParameters gives the 64-bit integer parameters of op their pattern.
func integerParameters(op *openapi3.Operation) {
	for _, p := range op.Parameters {
		if p.Value == nil || p.Value.Schema == nil || p.Value.Schema.Value == nil {
			continue
		}
		if s := p.Value.Schema.Value; s.Type.Is(openapi3.TypeString) && integerPatterns[s.Format] != "" {
			s.Pattern = integerPatterns[s.Format]
		}
	}
}

// describeInternal gives an internal API route its security and its authentication answers.
func describeInternal(op *openapi3.Operation) {
	op.Security = &openapi3.SecurityRequirements{
		{schemeAPIBearer: {}},
		{schemeAPIMutualTLS: {}},
	}
	op.Responses.Set("401", &openapi3.ResponseRef{Ref: responseRef(responseAPIUnauthenticated)})
	op.Responses.Set("403", &openapi3.ResponseRef{Ref: responseRef(responseAPIForbidden)})
}

// streamTitle starts the title protoc-gen-openapiv2 gives the answer of a server-streaming RPC.
const streamTitle = "Stream result of "

// ndjson is the media type of grpc-gateway's server streams as hookstream sends them (package
// convert): one JSON object per line.
const ndjson = "application/x-ndjson"

// describeStream describes a server-streaming route's answer as what grpc-gateway writes: one
// JSON object per line, {"result": <message>} for each message of the stream, and
// {"error": <google.rpc.Status>} as the last line when the stream fails after it began.
func describeStream(op *openapi3.Operation) {
	ok := op.Responses.Status(http.StatusOK)
	if ok == nil || ok.Value == nil {
		return
	}
	mt := ok.Value.Content.Get("application/json")
	if mt == nil || mt.Schema == nil || mt.Schema.Value == nil || !strings.HasPrefix(mt.Schema.Value.Title, streamTitle) {
		return
	}
	line := mt.Schema.Value
	name := strings.TrimPrefix(line.Title, streamTitle)
	line.Title = "One line of the stream of " + name
	// Exactly one of result and error, nothing else.
	no := false
	line.AdditionalProperties = openapi3.AdditionalProperties{Has: &no}
	line.MinProps, line.MaxProps = 1, &[]uint64{1}[0]
	line.Description = `One line of the answer: {"result": ...} for each message of the stream, or {"error": ...} as the last line when the stream fails after it began.`
	desc := "A stream of newline-delimited JSON objects (" + ndjson + "), one line per message, written as each message is sent, for as long as the stream lasts: " +
		`{"result": <` + name + `>}, and {"error": <google.rpc.Status>} as the last line if the stream fails after it began. ` +
		"An idle stream carries heartbeats ({\"result\": {\"heartbeat\": <time>}}); a stream that fails before its first message is answered with the error's HTTP status and one such error line."
	ok.Value.Description = &desc
	ok.Value.Content = openapi3.Content{ndjson: mt}
	// Refusals of the service (the authorization interceptor's too) come through the stream:
	// {"error": ...}. The gateway's own (a malformed parameter) are plain statuses.
	either := &openapi3.SchemaRef{Value: &openapi3.Schema{AnyOf: openapi3.SchemaRefs{{Ref: schemaRef(schemaStreamError)}, {Ref: schemaRef(schemaStatus)}}}}
	answer := func(desc string) *openapi3.ResponseRef {
		return &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription(desc).WithJSONSchemaRef(either)}
	}
	op.Responses.Set("403", answer(`The principal lacks the permission the call needs: {"error": <google.rpc.Status>}.`))
	op.Responses.Set("default", answer(`An error before the stream began: {"error": <google.rpc.Status>} from the service (e.g. 400 for an invalid filter), or a google.rpc.Status from the gateway (e.g. 400 for a malformed query parameter).`))
}

// setInfo sets the title, the description and the version: apiVersion and a digest of the
// document without its info.
func setInfo(doc *openapi3.T) error {
	doc.Info = &openapi3.Info{Title: title, Description: description}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	doc.Info.Version = apiVersion + "+" + hex.EncodeToString(sum[:6])
	return nil
}

// marshal writes the document as indented JSON with sorted keys (kin-openapi marshals through
// maps), without HTML escapes: the same input gives the same bytes.
func marshal(doc *openapi3.T) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// refPattern finds the schema references in a part of the document, as JSON.
var refPattern = regexp.MustCompile(`"\$ref":"#/components/schemas/([^"]+)"`)

// prune removes the schemas no route reaches: messages whose fields became query parameters
// (EventFilter), the webhook bodies replaced by their as-sent copies, unused well-known types.
func prune(doc *openapi3.T) error {
	schemas := doc.Components.Schemas
	doc.Components.Schemas = nil
	roots, err := json.Marshal(doc)
	doc.Components.Schemas = schemas
	if err != nil {
		return err
	}
	used := map[string]bool{}
	queue := []string{string(roots)}
	for len(queue) > 0 {
		part := queue[0]
		queue = queue[1:]
		for _, m := range refPattern.FindAllStringSubmatch(part, -1) {
			if used[m[1]] || schemas[m[1]] == nil {
				continue
			}
			used[m[1]] = true
			b, err := json.Marshal(schemas[m[1]])
			if err != nil {
				return err
			}
			queue = append(queue, string(b))
		}
	}
	for name := range schemas {
		if !used[name] {
			delete(schemas, name)
		}
	}
	return nil
}
