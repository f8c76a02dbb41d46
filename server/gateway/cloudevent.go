package gateway

import (
	"net/http"
	"strings"

	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cloudevent"
	"github.com/hookstream/hookstream/server/convert"
)

// CloudEvents over HTTP. GetEvent and Tail answer CloudEvents in the JSON event format
// (structured mode) when asked with the query parameter format=EVENT_FORMAT_CLOUDEVENT (the
// request field, as the gateway maps it) or with "Accept: application/cloudevents+json":
// GetEvent the CloudEvent alone, Content-Type application/cloudevents+json; Tail one CloudEvent
// per line, bare (not in grpc-gateway's {"result": …}), Content-Type application/x-ndjson, and
// an empty line for each heartbeat, so that every line that is not empty is a CloudEvent.
// Errors stay google.rpc.Status JSON.

// askCloudEvents makes a request for CloudEvents, by query or Accept header, carry both: the
// query parameter, which the gateway maps to the request's format field, and the Accept header
// by which the gateway picks cloudEventMarshaler. A format in the query wins over the header;
// a request for the envelope loses its Accept header.
// Only GetEvent and Tail have a format: other routes are left as they are.
func askCloudEvents(r *http.Request) {
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/v1/events/") && r.URL.Path != "/v1/events:tail" {
		return
	}
	q := r.URL.Query()
	const ce = hookstreamv1.EventFormat_EVENT_FORMAT_CLOUDEVENT
	switch f := q.Get("format"); {
	case f == ce.String() || f == "2":
	case f == "" && accepts(r.Header, cloudevent.ContentTypeJSON):
		q.Set("format", ce.String())
		r.URL.RawQuery = q.Encode()
	default:
		// The envelope: the header must not pick cloudEventMarshaler either.
		r.Header.Del("Accept")
		return
	}
	r.Header.Set("Accept", cloudevent.ContentTypeJSON)
}

// accepts reports whether an Accept header of h names mediaType.
func accepts(h http.Header, mediaType string) bool {
	for _, v := range h.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), mediaType) {
				return true
			}
		}
	}
	return false
}

// cloudEventMarshaler is the gateway's marshaler of requests for CloudEvents (askCloudEvents
// gives them its Accept header): CloudEvents in the JSON event format, the other messages
// (errors) as the JSON marshaler writes them.
type cloudEventMarshaler struct{ runtime.Marshaler }

// Marshal implements runtime.Marshaler. A stream's messages come wrapped as {"result": m}.
func (m cloudEventMarshaler) Marshal(v any) ([]byte, error) {
	msg := v
	if r, ok := v.(map[string]any); ok && len(r) == 1 && r["result"] != nil {
		msg = r["result"]
	}
	var ce *pb.CloudEvent
	switch t := msg.(type) {
	case *hookstreamv1.GetEventResponse:
		ce = t.GetCloudEvent()
	case *hookstreamv1.TailResponse:
		if t.GetHeartbeat() != nil {
			return nil, nil // the stream's delimiter alone: an empty line
		}
		ce = t.GetCloudEvent()
	}
	if ce == nil {
		return m.Marshaler.Marshal(v)
	}
	return cloudevent.MarshalJSON(ce, convert.MarshalOptions)
}

// ContentType implements runtime.Marshaler.
func (m cloudEventMarshaler) ContentType(v any) string {
	if r, ok := v.(*hookstreamv1.GetEventResponse); ok && r.GetCloudEvent() != nil {
		return cloudevent.ContentTypeJSON
	}
	return m.Marshaler.ContentType(v)
}

// StreamContentType implements runtime.StreamContentType: a Tail of CloudEvents is
// newline-delimited JSON, one CloudEvent a line, like a Tail of envelopes
// (application/cloudevents+json would promise a single event).
func (cloudEventMarshaler) StreamContentType(any) string { return convert.StreamContentType }

// Delimiter implements runtime.Delimited: one message a line.
func (cloudEventMarshaler) Delimiter() []byte { return []byte("\n") }
