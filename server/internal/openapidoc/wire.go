package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	// The messages the schemas are named after (openapi_naming_strategy=fqn), for their field
	// names and validation rules.
	_ "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// wireSuffix ends the names of the schemas of webhook bodies as providers send them.
const wireSuffix = ".as_sent"

// errSchema is wrapped by the errors of a schema that matches no proto message.
var errSchema = errors.New("schema")

// wire makes the schemas of a webhook body as its provider sends it, beside the schemas of the
// messages (which describe hookstream's answers, written with proto names and without nulls):
// a copy "<message>.as_sent" of each hookstream message schema the body reaches, whose fields
// are spelled as the provider spells them (proto names, or protojson's lowerCamelCase JSON names
// when camel is set), whose fields that protovalidate requires are required, and whose other
// fields may be null (protojson reads null as absent, and providers send it: MVMNT's
// "diff": null, Movement's "user": null).
type wire struct {
	doc   *openapi3.T
	camel bool
	memo  map[string]string // schema reference → its copy's, for schemas that nest and recurse
	err   error             // the first schema that matched no message
}

// ref returns sr as sent: a reference to the copy of the schema it references, or a copy of sr
// with its items and allOf as sent, and a 64-bit integer also as a JSON number (protojson
// writes them as strings, and reads both: providers send numbers).
func (w *wire) ref(sr *openapi3.SchemaRef) *openapi3.SchemaRef {
	if sr == nil {
		return nil
	}
	if sr.Ref != "" {
		return &openapi3.SchemaRef{Ref: w.schema(sr.Ref)}
	}
	if sr.Value == nil {
		return sr
	}
	c := *sr.Value
	c.Items = w.ref(c.Items)
	c.AllOf = nil
	for _, a := range sr.Value.AllOf {
		c.AllOf = append(c.AllOf, w.ref(a))
	}
	if c.Type.Is(openapi3.TypeString) && (c.Format == "int64" || c.Format == "uint64") {
		c.Type = &openapi3.Types{openapi3.TypeInteger, openapi3.TypeString}
	}
	return &openapi3.SchemaRef{Value: &c}
}

// schema returns the reference to the as-sent copy of the schema at ref, making it; ref itself
// for schemas that are not hookstream messages with fields (enums, google.protobuf types).
func (w *wire) schema(ref string) string {
	name := strings.TrimPrefix(ref, schemaRef(""))
	orig := w.doc.Components.Schemas[name]
	if !strings.HasPrefix(name, "hookstream.") || orig == nil || orig.Value == nil || len(orig.Value.Properties) == 0 {
		return ref
	}
	if r, ok := w.memo[ref]; ok {
		return r
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	md, ok := d.(protoreflect.MessageDescriptor)
	if err != nil || !ok {
		w.fail(fmt.Errorf("%w %s: no such message", errSchema, name))
		return ref
	}
	copyName := name + wireSuffix
	w.memo[ref] = schemaRef(copyName)
	c := *orig.Value
	c.Properties, c.Required = openapi3.Schemas{}, nil
	for k, p := range orig.Value.Properties {
		fd := md.Fields().ByName(protoreflect.Name(k))
		if fd == nil {
			w.fail(fmt.Errorf("%w %s: no field %s", errSchema, name, k))
			continue
		}
		out := k
		if w.camel {
			out = fd.JSONName()
		}
		prop := w.ref(p)
		if prop.Ref == "" && prop.Value != nil {
			constrain(prop.Value, fd) // a copy
		}
		if required(fd) {
			c.Required = append(c.Required, out)
		} else {
			prop = nullable(prop)
		}
		c.Properties[out] = prop
	}
	slices.Sort(c.Required)
	c.Description = strings.TrimSpace(c.Description + "\n\nAs the provider sends it: " + w.spelling() + "; a field that may be absent may also be null.")
	w.doc.Components.Schemas[copyName] = &openapi3.SchemaRef{Value: &c}
	return schemaRef(copyName)
}

func (w *wire) spelling() string {
	if w.camel {
		return "fields in lowerCamelCase (hookstream also accepts the proto names)"
	}
	return "fields in snake_case"
}

func (w *wire) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// nullable returns sr, which may also be null: "null" among its types, or, for a reference or a
// schema of any value, any of it and null (said explicitly: some validators refuse null for a
// schema without a type).
func nullable(sr *openapi3.SchemaRef) *openapi3.SchemaRef {
	if sr.Ref == "" && sr.Value != nil && sr.Value.Type != nil && len(*sr.Value.Type) > 0 {
		c := *sr.Value
		t := append(openapi3.Types{}, *c.Type...)
		if !slices.Contains(t, openapi3.TypeNull) {
			t = append(t, openapi3.TypeNull)
		}
		c.Type = &t
		return &openapi3.SchemaRef{Value: &c}
	}
	null := &openapi3.SchemaRef{Value: &openapi3.Schema{Type: &openapi3.Types{openapi3.TypeNull}}}
	if sr.Ref == "" && sr.Value != nil && len(sr.Value.AllOf) == 1 && len(sr.Value.AnyOf) == 0 {
		// A message field: {"allOf": [reference], "description": ...} keeps its description.
		c := *sr.Value
		c.AnyOf, c.AllOf = openapi3.SchemaRefs{c.AllOf[0], null}, nil
		return &openapi3.SchemaRef{Value: &c}
	}
	return &openapi3.SchemaRef{Value: &openapi3.Schema{AnyOf: openapi3.SchemaRefs{sr, null}}}
}
