package main

import (
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
)

// CloudEvents over HTTP (package gateway): GetEvent and Tail answer CloudEvents in the JSON
// event format when asked with the query parameter format=EVENT_FORMAT_CLOUDEVENT (or the header
// "Accept: application/cloudevents+json").
const (
	formatParam        = "format"
	formatCloudEvent   = "EVENT_FORMAT_CLOUDEVENT"
	cloudEventsJSON    = "application/cloudevents+json"
	schemaCloudEvent   = "io.cloudevents.JSONEventFormat"
	cloudEventsSpecURL = "https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md"
)

// cloudEventSchema is one CloudEvent in the JSON event format (CloudEvents 1.0), with the
// attributes hookstream sets; hookstream.v1.EventFormat documents how they map the envelope.
func cloudEventSchema() *openapi3.Schema {
	str := func(desc string) *openapi3.Schema {
		s := openapi3.NewStringSchema()
		s.Description = desc
		return s
	}
	s := openapi3.NewObjectSchema().
		WithProperty("specversion", str("The CloudEvents version: \"1.0\".").WithEnum("1.0")).
		WithProperty("id", str("The event's id (the envelope's id).").WithMinLength(1)).
		WithProperty("source", str("Where the event came from (the envelope's source: the route, or grpc:<principal>).").WithMinLength(1)).
		WithProperty("type", str("The event's type (see hookstream.v1.EventFormat).").WithMinLength(1)).
		WithProperty("time", str("When the event happened (RFC 3339).").WithFormat("date-time")).
		WithProperty("subject", str("What the event is about, when the payload says.")).
		WithProperty("datacontenttype", str("The media type of data: application/json.")).
		WithProperty("dataschema", str("The schema of data, when set.")).
		WithProperty("data_base64", str("Data that is not JSON, base64-encoded."))
	s.Properties["data"] = &openapi3.SchemaRef{Value: &openapi3.Schema{Description: "The typed payload, as JSON."}}
	s.Required = []string{"id", "source", "specversion", "type"}
	s.AdditionalProperties = openapi3.AdditionalProperties{Schema: &openapi3.SchemaRef{Value: &openapi3.Schema{
		Type:        &openapi3.Types{openapi3.TypeString, openapi3.TypeInteger, openapi3.TypeBoolean},
		Description: "Extension attributes: provider, sequence (a decimal string), traceparent, tracestate.",
	}}}
	s.Description = "One CloudEvent in the JSON event format (structured mode), CloudEvents 1.0."
	s.ExternalDocs = &openapi3.ExternalDocs{URL: cloudEventsSpecURL, Description: "The JSON event format"}
	return s
}

// describeCloudEvents adds the CloudEvents answer of an operation that has a format parameter
// with EVENT_FORMAT_CLOUDEVENT: one CloudEvent as application/cloudevents+json, or, for a stream
// (application/x-ndjson), one CloudEvent a line and an empty line for each heartbeat.
func describeCloudEvents(op *openapi3.Operation) {
	p := op.Parameters.GetByInAndName(openapi3.ParameterInQuery, formatParam)
	if p == nil || p.Schema == nil || p.Schema.Value == nil || !slices.Contains(p.Schema.Value.Enum, any(formatCloudEvent)) {
		return
	}
	ok := op.Responses.Status(200)
	if ok == nil || ok.Value == nil {
		return
	}
	ce := &openapi3.SchemaRef{Ref: schemaRef(schemaCloudEvent)}
	stream := ok.Value.Content.Get(ndjson)
	if stream == nil {
		ok.Value.Content[cloudEventsJSON] = &openapi3.MediaType{Schema: ce}
		desc := *ok.Value.Description + " With format=" + formatCloudEvent + " (or \"Accept: " + cloudEventsJSON + "\"): the event as a CloudEvent, " + cloudEventsJSON + "."
		ok.Value.Description = &desc
		return
	}
	stream.Schema = &openapi3.SchemaRef{Value: &openapi3.Schema{
		Description: "One line of the stream: in the envelope format, {\"result\": ...} or {\"error\": ...}; with format=" + formatCloudEvent + ", a CloudEvent, or {\"error\": ...}.",
		AnyOf:       openapi3.SchemaRefs{stream.Schema, ce},
	}}
	desc := *ok.Value.Description + " With format=" + formatCloudEvent + " (or \"Accept: " + cloudEventsJSON + "\"): one CloudEvent in the JSON event format a line, bare, and an empty line for each heartbeat."
	ok.Value.Description = &desc
}
