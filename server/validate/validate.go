// Package validate runs the protovalidate rules of hookstream's protos with the process's one
// validator and turns their violations into what clients see: gRPC statuses with details, and the
// violations kept with quarantine entries and receipts.
package validate

import (
	"errors"

	"buf.build/go/protovalidate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// MaxViolations is the most violations reported for one message: a body within the size limit
// can break a rule in each of thousands of list elements, and every answer and quarantine entry
// must stay within its size budget.
const MaxViolations = 100

// Check validates m against its rules with protovalidate's global validator, the one validator of
// the process (each validator has its own caches). It returns nil, a *ValidationError, or an
// error wrapping ErrNotRun when the rules could not be evaluated.
func Check(m proto.Message) error {
	err := protovalidate.GlobalValidator.Validate(m)
	var verr *protovalidate.ValidationError
	if err == nil || errors.As(err, &verr) {
		return err
	}
	return errors.Join(ErrNotRun, err)
}

// ErrNotRun is wrapped by Check's errors when validation could not run (a rule that does not
// compile): a defect, not the caller's fault.
var ErrNotRun = errors.New("validation did not run")

// ValidationError is protovalidate's error for a message that breaks rules.
type ValidationError = protovalidate.ValidationError

// Violation is one broken rule.
type Violation = protovalidate.Violation

// Field returns a violation's field path, e.g. "webhook.detail.job_id" or "delivery.events[2]".
func Field(v *Violation) string { return protovalidate.FieldPathString(v.Proto.GetField()) }

// FieldViolations returns the first MaxViolations of vs as quarantine FieldViolations.
func FieldViolations(vs []*Violation) []*hookstreamv1.FieldViolation {
	vs = vs[:min(len(vs), MaxViolations)]
	out := make([]*hookstreamv1.FieldViolation, len(vs))
	for i, v := range vs {
		out[i] = &hookstreamv1.FieldViolation{Field: Field(v), Rule: v.Proto.GetRuleId(), Message: v.Proto.GetMessage()}
	}
	return out
}

// Status returns the gRPC status of a message that breaks the rules vs: INVALID_ARGUMENT with a
// google.rpc.BadRequest naming each violated field and rule, and protovalidate's Violations, at
// most MaxViolations of each.
func Status(vs []*Violation) error {
	vs = vs[:min(len(vs), MaxViolations)]
	st := status.New(codes.InvalidArgument, "payload violates the schema")
	br := &errdetails.BadRequest{}
	verr := &protovalidate.ValidationError{Violations: vs}
	for _, v := range vs {
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field:       Field(v),
			Description: v.Proto.GetRuleId() + ": " + v.Proto.GetMessage(),
			Reason:      v.Proto.GetRuleId(),
		})
	}
	if withDetails, err := st.WithDetails(br, verr.ToProto()); err == nil {
		st = withDetails
	}
	return st.Err()
}

// Request validates a request at the gRPC edge: nil, INVALID_ARGUMENT with the violations as
// details, or INTERNAL when validation could not run.
func Request(m proto.Message) error {
	err := Check(m)
	var verr *protovalidate.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &verr):
		return Status(verr.Violations)
	}
	return status.Error(codes.Internal, "validation failed to run")
}
