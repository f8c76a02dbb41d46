package cloudevent

import (
	"bytes"
	"encoding/json"
	"fmt"

	ceproto "github.com/cloudevents/sdk-go/binding/format/protobuf/v2"
	"github.com/cloudevents/sdk-go/binding/format/protobuf/v2/pb"
	"google.golang.org/protobuf/encoding/protojson"
)

// MarshalJSON writes ce, made by New, in the CloudEvents JSON event format (structured mode,
// media type ContentTypeJSON), through the CloudEvents SDK: the same attributes, and the
// proto_data message as JSON written with opts as "data", with datacontenttype
// DataContentTypeJSON and without dataschema: the protobuf format sets it to the data's type URL,
// as that format asks, but a type URL ("type.googleapis.com/…") is not the absolute URI the JSON
// event format requires, and the type names the payload anyway. The output is compact, one
// line.
// Errors are those of an attribute the SDK refuses, or of data whose type is not linked in.
func MarshalJSON(ce *pb.CloudEvent, opts protojson.MarshalOptions) ([]byte, error) {
	ev, err := ceproto.FromProto(ce)
	if err != nil {
		return nil, fmt.Errorf("cloudevent %s: %w", ce.GetId(), err)
	}
	if d := ce.GetProtoData(); d != nil {
		m, err := d.UnmarshalNew()
		if err != nil {
			return nil, fmt.Errorf("cloudevent %s data: %w", ce.GetId(), err)
		}
		data, err := opts.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("cloudevent %s data: %w", ce.GetId(), err)
		}
		ev.SetDataContentType(DataContentTypeJSON)
		ev.SetDataSchema("")
		// Set directly: SetData would encode the JSON again, or as base64.
		ev.DataEncoded, ev.DataBase64 = data, false
	}
	// Validate reports the setters' errors too, which they keep rather than return.
	if err := ev.Validate(); err != nil {
		return nil, fmt.Errorf("cloudevent %s: %w", ce.GetId(), err)
	}
	b, err := ev.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("cloudevent %s: %w", ce.GetId(), err)
	}
	// protojson varies its whitespace on purpose: one line, always the same.
	var out bytes.Buffer
	out.Grow(len(b))
	if err := json.Compact(&out, b); err != nil {
		return nil, fmt.Errorf("cloudevent %s: %w", ce.GetId(), err)
	}
	return out.Bytes(), nil
}
