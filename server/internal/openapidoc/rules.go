package main

import (
	"strings"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/getkin/kin-openapi/openapi3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// fieldRules returns fd's protovalidate rules, nil when it has none.
func fieldRules(fd protoreflect.FieldDescriptor) *validate.FieldRules {
	r, _ := proto.GetExtension(fd.Options(), validate.E_Field).(*validate.FieldRules)
	return r
}

// required reports whether protovalidate refuses a body without the field: the field is
// required, or a string or list of it must not be empty.
func required(fd protoreflect.FieldDescriptor) bool {
	r := fieldRules(fd)
	return r.GetRequired() || r.GetString().GetMinLen() > 0 || r.GetRepeated().GetMinItems() > 0
}

// constrain adds to s, the schema of fd, the rules of fd that JSON Schema says the same way:
// UUID format, lengths, pattern, list sizes, int32 and uint32 bounds. The others (byte lengths,
// CEL) stay the proto's, and the service's answer names them.
func constrain(s *openapi3.Schema, fd protoreflect.FieldDescriptor) {
	r := fieldRules(fd)
	if r == nil {
		return
	}
	if str := r.GetString(); str != nil {
		if str.GetUuid() {
			s.Format = "uuid"
		}
		if str.HasMinLen() {
			s.MinLength = str.GetMinLen()
		}
		if str.HasMaxLen() {
			n := str.GetMaxLen()
			s.MaxLength = &n
		}
		if str.HasPattern() {
			s.Pattern = str.GetPattern()
		}
	}
	if rep := r.GetRepeated(); rep != nil {
		if rep.HasMinItems() {
			s.MinItems = rep.GetMinItems()
		}
		if rep.HasMaxItems() {
			n := rep.GetMaxItems()
			s.MaxItems = &n
		}
	}
	bound := func(has bool, v float64) *float64 {
		if !has {
			return nil
		}
		return &v
	}
	if i := r.GetInt32(); i != nil {
		s.Min, s.Max = bound(i.HasGte(), float64(i.GetGte())), bound(i.HasLte(), float64(i.GetLte()))
	}
	if u := r.GetUint32(); u != nil {
		s.Min, s.Max = bound(u.HasGte(), float64(u.GetGte())), bound(u.HasLte(), float64(u.GetLte()))
	}
}

// parameterRules constrains op's parameters by the rules of the request fields they set: the
// RPC is named by the operation id ("<Service>_<Method>", a service of hookstream.v1), a
// parameter by its field path ("filter.types").
func parameterRules(op *openapi3.Operation) {
	service, method, _ := strings.Cut(op.OperationID, "_")
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName("hookstream.v1." + service))
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if err != nil || !ok || sd.Methods().ByName(protoreflect.Name(method)) == nil {
		return
	}
	in := sd.Methods().ByName(protoreflect.Name(method)).Input()
	for _, p := range op.Parameters {
		if p.Value == nil || p.Value.Schema == nil || p.Value.Schema.Value == nil {
			continue
		}
		if fd := fieldAt(in, p.Value.Name); fd != nil && !fd.IsList() {
			constrain(p.Value.Schema.Value, fd)
		}
	}
}

// fieldAt returns the field at a dotted path of md's fields, nil when there is none.
func fieldAt(md protoreflect.MessageDescriptor, path string) protoreflect.FieldDescriptor {
	var fd protoreflect.FieldDescriptor
	for name := range strings.SplitSeq(path, ".") {
		if md == nil {
			return nil
		}
		if fd = md.Fields().ByName(protoreflect.Name(name)); fd == nil {
			return nil
		}
		md = fd.Message()
	}
	return fd
}
