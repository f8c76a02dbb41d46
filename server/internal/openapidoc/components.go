package main

import (
	"github.com/getkin/kin-openapi/openapi3"
)

// Names of the security schemes (components.securitySchemes).
const (
	schemeSvixID              = "svix_id"
	schemeSvixTimestamp       = "svix_timestamp"
	schemeSvixSignature       = "svix_signature"
	schemeWebhookID           = "webhook_id"
	schemeWebhookTimestamp    = "webhook_timestamp"
	schemeWebhookSignature    = "webhook_signature"
	schemeMovementToken       = "movement_token"
	schemeMovementBearer      = "movement_bearer"
	schemeMovementBasic       = "movement_basic"
	schemeMVMNTAPIKey         = "mvmnt_api_key"
	schemeListenerBearer      = "listener_bearer"
	schemeListenerHMAC        = "listener_hmac"
	schemeAPIBearer           = "api_bearer"
	schemeAPIMutualTLS        = "api_mutual_tls"
	svixSigned                = "Svix (Standard Webhooks) signature: HMAC-SHA256, with a configured providers.moveapi.secrets key, over \"<id>.<timestamp>.<raw body>\"; "
	standardWebhooksAlternate = " The webhook-* headers (white-labelled senders) are accepted instead of the svix-* ones."
)

// Names of the shared answers (components.responses) and schemas the generator adds.
const (
	responseAPIUnauthenticated = "api.unauthenticated"
	responseAPIForbidden       = "api.forbidden"
	schemaListenerError        = "hookstream.http.ListenerError"
	schemaStreamError          = "hookstream.http.StreamError"
	schemaStatus               = "google.rpc.Status"
	headerRetryAfter           = "Retry-After"
)

func schemaRef(name string) string   { return "#/components/schemas/" + name }
func responseRef(name string) string { return "#/components/responses/" + name }

// addComponents adds the security schemes, the listener contract's error schema and the answers
// routes share.
func addComponents(doc *openapi3.T) {
	c := doc.Components
	c.SecuritySchemes = openapi3.SecuritySchemes{}
	header := func(name, desc string) *openapi3.SecuritySchemeRef {
		return &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{Type: "apiKey", In: "header", Name: name, Description: desc}}
	}
	httpScheme := func(scheme, format, desc string) *openapi3.SecuritySchemeRef {
		return &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{Type: "http", Scheme: scheme, BearerFormat: format, Description: desc}}
	}
	c.SecuritySchemes[schemeSvixID] = header("svix-id", svixSigned+"the message id, kept across retries (the dedup key)."+standardWebhooksAlternate)
	c.SecuritySchemes[schemeSvixTimestamp] = header("svix-timestamp", svixSigned+"Unix seconds, within 5 minutes (providers.moveapi.tolerance) of hookstream's clock.")
	c.SecuritySchemes[schemeSvixSignature] = header("svix-signature", svixSigned+"space-separated \"v1,<base64>\" signatures; any one that matches passes (key rotation).")
	c.SecuritySchemes[schemeWebhookID] = header("webhook-id", "Standard Webhooks twin of svix-id.")
	c.SecuritySchemes[schemeWebhookTimestamp] = header("webhook-timestamp", "Standard Webhooks twin of svix-timestamp.")
	c.SecuritySchemes[schemeWebhookSignature] = header("webhook-signature", "Standard Webhooks twin of svix-signature.")
	c.SecuritySchemes[schemeMovementToken] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{Type: "apiKey", In: "query", Name: "token",
		Description: "One of providers.movement.tokens in the URL given to Movement (Movement documents no signature); compared in constant time."}}
	c.SecuritySchemes[schemeMovementBearer] = httpScheme("bearer", "", "One of providers.movement.tokens as \"Authorization: Bearer <token>\".")
	c.SecuritySchemes[schemeMovementBasic] = httpScheme("basic", "", "One of providers.movement.tokens as the password of Basic authentication (the user name is ignored), e.g. in the URL given to Movement.")
	c.SecuritySchemes[schemeMVMNTAPIKey] = header("x-api-key", "One of providers.mvmnt.tokens, the token configured in MVMNT's webhook settings (the current and the previous one during a rotation); compared in constant time.")
	c.SecuritySchemes[schemeListenerBearer] = httpScheme("bearer", "", "One of the listener's tokens (listeners.<id>.tokens) as \"Authorization: Bearer <token>\".")
	c.SecuritySchemes[schemeListenerHMAC] = header("X-Signature", "When the listener has listeners.<id>.hmac.secrets: an HMAC of the raw body, in the header named by listeners.<id>.hmac.header (X-Signature is an example), with the configured algorithm, prefix and encoding; checked beside the Bearer token, never instead of it.")
	c.SecuritySchemes[schemeAPIBearer] = httpScheme("bearer", "opaque token or JWT", "A principal's token (auth.principals[].token_digests), or a JWT verified with the configured JWKS whose subject is a principal's. Not needed when no principals are configured (the internal API is then open, on loopback only).")
	c.SecuritySchemes[schemeAPIMutualTLS] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{Type: "mutualTLS",
		Description: "A client certificate of the configured client CA (auth.client_ca_file) on a TLS listener; the principal is the certificate's common name or a subject alternative name."}}

	c.Schemas[schemaListenerError] = &openapi3.SchemaRef{Value: listenerErrorSchema()}
	streamErr := openapi3.NewObjectSchema().WithPropertyRef("error", &openapi3.SchemaRef{Ref: schemaRef(schemaStatus)})
	streamErr.Required = []string{"error"}
	streamErr.Description = `How a server stream (Tail) answers an error of the service: {"error": <google.rpc.Status>}, as its last line, or as its whole body when the stream failed before its first message.`
	c.Schemas[schemaStreamError] = &openapi3.SchemaRef{Value: streamErr}
	c.Schemas[schemaCloudEvent] = &openapi3.SchemaRef{Value: cloudEventSchema()}
	c.Headers = openapi3.Headers{headerRetryAfter: &openapi3.HeaderRef{Value: &openapi3.Header{Parameter: openapi3.Parameter{
		Description: "Seconds to wait before retrying.",
		Schema:      &openapi3.SchemaRef{Value: openapi3.NewStringSchema()},
	}}}}
	c.Responses = openapi3.ResponseBodies{
		responseAPIUnauthenticated: statusResponse("No valid credentials: a Bearer token or JWT of a principal, or a client certificate, is required (principals are configured). Carries \"WWW-Authenticate: Bearer\".", schemaStatus, false),
		responseAPIForbidden:       statusResponse("The principal lacks the permission the call needs (auth.principals[].permissions).", schemaStatus, false),
	}
}

// listenerErrorSchema is the listener contract's error body: {"error":{"code","message"}}.
func listenerErrorSchema() *openapi3.Schema {
	inner := openapi3.NewObjectSchema().
		WithProperty("code", openapi3.NewStringSchema().WithEnum("BAD_REQUEST", "UNAUTHORIZED", "PAYLOAD_TOO_LARGE", "REQUEST_TIMEOUT", "METHOD_NOT_ALLOWED",
			"UNSUPPORTED_MEDIA_TYPE", "UNAVAILABLE", "TOO_MANY_REQUESTS", "NOT_FOUND", "ERROR")).
		WithProperty("message", openapi3.NewStringSchema())
	inner.Required = []string{"code", "message"}
	inner.Properties["code"].Value.Description = "The error's code, from its HTTP status."
	inner.Properties["message"].Value.Description = "What is wrong, for people."
	s := openapi3.NewObjectSchema().WithPropertyRef("error", &openapi3.SchemaRef{Value: inner})
	s.Required = []string{"error"}
	s.Description = `The webhook listener contract's error body, e.g. {"error":{"code":"UNAUTHORIZED","message":"the request is not authentic"}}.`
	return s
}

// statusResponse is an answer whose body is the named schema, as JSON; with Retry-After when
// retry is set.
func statusResponse(desc, schema string, retry bool) *openapi3.ResponseRef {
	r := openapi3.NewResponse().WithDescription(desc).WithJSONSchemaRef(&openapi3.SchemaRef{Ref: schemaRef(schema)})
	if retry {
		r.Headers = openapi3.Headers{headerRetryAfter: &openapi3.HeaderRef{Ref: "#/components/headers/" + headerRetryAfter}}
	}
	return &openapi3.ResponseRef{Value: r}
}
