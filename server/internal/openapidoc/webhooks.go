package main

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
)

// webhookRoute is what the protos cannot say about a webhook route: how its provider
// authenticates, how it spells its JSON, and the format of its errors.
type webhookRoute struct {
	// security lists the ways a request may prove itself, any one of them.
	security openapi3.SecurityRequirements
	// camel: the provider spells fields in lowerCamelCase, protojson's JSON names ("sentAt"),
	// not in proto names ("sent_at"); hookstream accepts both.
	camel bool
	// listener: errors are in the listener contract's format, and an unknown listener id is 404.
	listener bool
	// body describes the request body, answer the 200 answer.
	body, answer string
}

// webhookRoutes is webhookRoute of each WebhookService RPC, by operation id
// ("WebhookService_<rpc>"). The routes, their bodies and their receipts come from the protos; an
// RPC missing here fails the generation.
var webhookRoutes = map[string]webhookRoute{
	"WebhookService_ReceiveMoveApiWebhook": {
		security: openapi3.SecurityRequirements{
			{schemeSvixID: {}, schemeSvixTimestamp: {}, schemeSvixSignature: {}},
			{schemeWebhookID: {}, schemeWebhookTimestamp: {}, schemeWebhookSignature: {}},
		},
		body:   "The Move API webhook as move.ai sends it through Svix: its JSON, unchanged.",
		answer: "Durably stored, or a duplicate of a stored event (the same svix-id; the same answer): its receipt.",
	},
	"WebhookService_ReceiveMovementWebhook": {
		security: openapi3.SecurityRequirements{{schemeMovementToken: {}}, {schemeMovementBearer: {}}, {schemeMovementBasic: {}}},
		body:     "The Movement webhook as Movement sends it: one JSON object per event.",
		answer:   "Durably stored, or a duplicate of a stored event (the same topic, event and object id): its receipt.",
	},
	"WebhookService_ReceiveMvmntDelivery": {
		security: openapi3.SecurityRequirements{{schemeMVMNTAPIKey: {}}},
		camel:    true,
		body:     "The MVMNT delivery as MVMNT sends it: {\"sentAt\", \"events\": [...]}, each item of events becoming its own event.",
		answer:   "Each item handled on its own: one receipt per item, in the delivery's order (stored, duplicate, or quarantined with its violations).",
	},
	"WebhookService_NotifyListener": {
		security: openapi3.SecurityRequirements{{schemeListenerBearer: {}}, {schemeListenerBearer: {}, schemeListenerHMAC: {}}},
		listener: true,
		body:     "Any JSON object (may be empty). When the listener has a dedup_header, that header's value is the notification's dedup key; otherwise a hash of the body.",
		answer:   `Durably stored (or a duplicate of a stored notification): the listener contract's {"message":"Event received successfully","status":"RECEIVED"}.`,
	},
}

// webhookErrors are the answers of every webhook route besides 200, by HTTP status.
var webhookErrors = map[int]struct {
	desc  string
	retry bool
}{
	http.StatusBadRequest:            {desc: "Malformed JSON, or a payload against the schema: the details name each violated field. The authentic payload is kept in the quarantine. (An MVMNT delivery answers 400 only for an unusable envelope; its invalid items are quarantined with a 200.)"},
	http.StatusUnauthorized:          {desc: "Not authentic: a credential or signature is missing or wrong, or the route has no credentials configured. Nothing is stored."},
	http.StatusRequestTimeout:        {desc: "The body was not received in time (http.body_read_timeout)."},
	http.StatusRequestEntityTooLarge: {desc: "The body is over the limit (http.body_limit, default 1 MiB)."},
	http.StatusUnsupportedMediaType:  {desc: "The body is not JSON (Content-Type other than application/json or */*+json)."},
	http.StatusTooManyRequests:       {desc: "Too many requests at once (http.max_in_flight, http.max_unverified_in_flight): retry later.", retry: true},
	http.StatusServiceUnavailable:    {desc: "The event log cannot take the event now: nothing was acknowledged, retry later.", retry: true},
}

// describeWebhook gives a webhook route its security, its real body (the provider's payload as
// it sends it, not the RPC's fields: raw and the ids come from the raw body and the verified
// headers) and its answers.
func describeWebhook(doc *openapi3.T, op *openapi3.Operation, r webhookRoute) error {
	sec := r.security
	op.Security = &sec
	var path openapi3.Parameters
	for _, p := range op.Parameters {
		if p.Value != nil && p.Value.In == openapi3.ParameterInPath {
			path = append(path, p)
		}
	}
	op.Parameters = path
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return fmt.Errorf("%w %s: no request body", errRoute, op.OperationID)
	}
	body := op.RequestBody.Value
	body.Extensions = nil // x-originalParamName: the RPC's field, not part of the route
	body.Description, body.Required = r.body, true
	mt := body.Content.Get("application/json")
	if mt == nil || mt.Schema == nil {
		return fmt.Errorf("%w %s: no JSON request body", errRoute, op.OperationID)
	}
	w := &wire{doc: doc, camel: r.camel, memo: map[string]string{}}
	mt.Schema = w.ref(mt.Schema)
	if w.err != nil {
		return fmt.Errorf("%w %s: %w", errRoute, op.OperationID, w.err)
	}
	return webhookResponses(op, r)
}

// webhookResponses sets the answers of a webhook route: the receipt (or the listener's
// acknowledgement) on 200, and each error the front door answers.
func webhookResponses(op *openapi3.Operation, r webhookRoute) error {
	ok := op.Responses.Status(http.StatusOK)
	if ok == nil || ok.Value == nil {
		return fmt.Errorf("%w %s: no 200 answer", errRoute, op.OperationID)
	}
	ok.Value.Description = &r.answer
	listener := r.listener
	errSchema := schemaStatus
	if listener {
		errSchema = schemaListenerError
	}
	for code, e := range webhookErrors {
		op.Responses.Set(strconv.Itoa(code), statusResponse(e.desc, errSchema, e.retry))
	}
	op.Responses.Set("default", statusResponse("An unexpected error.", errSchema, false))
	if listener {
		op.Responses.Set("404", &openapi3.ResponseRef{Value: openapi3.NewResponse().WithDescription("No listener has this id (or it is not a UUID): an empty body.")})
	}
	return nil
}
