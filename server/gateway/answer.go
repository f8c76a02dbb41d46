package gateway

import (
	"math/bits"
	"strconv"
	"unicode/utf8"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// Marshal implements runtime.Marshaler. The answers of the webhook routes (receipts, the
// listener's acknowledgement) are written by appendAnswer, byte for byte what the wrapped
// marshaler writes (compact protojson with proto names) without its reflection and its second
// pass through json.Compact: that pair cost ~5 % of the CPU of a webhook. Anything else, and an
// answer appendAnswer declines (a string that is not UTF-8, which protojson rejects), goes to the
// wrapped marshaler, so its errors stay protojson's.
func (m webhookMarshaler) Marshal(v any) ([]byte, error) {
	if b, ok := appendAnswer(nil, v); ok {
		return b, nil
	}
	return m.Marshaler.Marshal(v)
}

// receiptSize is about what one receipt takes as JSON (a stored one is ~90 bytes), to size the
// answer's buffer once.
const receiptSize = 112

// appendAnswer appends the JSON of a webhook route's answer v to b, as protojson with
// UseProtoNames writes it once compacted: fields in field number order, zero values left out,
// uint64 as a quoted decimal, enums by name (by number when unnamed). It returns false, and b in
// any state, when v is of another type or holds a string that is not valid UTF-8.
func appendAnswer(b []byte, v any) ([]byte, bool) {
	switch m := v.(type) {
	case *hookstreamv1.ReceiveMvmntDeliveryResponse:
		if m == nil {
			return append(b, "{}"...), true
		}
		rs := m.GetReceipts()
		b = grow(b, 16+len(rs)*receiptSize)
		if len(rs) == 0 {
			return append(b, "{}"...), true
		}
		b = append(b, `{"receipts":[`...)
		for i, r := range rs {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendReceipt(b, r); !ok {
				return b, false
			}
		}
		return append(b, "]}"...), true
	case *hookstreamv1.ReceiveMoveApiWebhookResponse:
		return appendReceiptResponse(b, m.GetReceipt())
	case *hookstreamv1.ReceiveMovementWebhookResponse:
		return appendReceiptResponse(b, m.GetReceipt())
	case *hookstreamv1.NotifyListenerResponse:
		return appendListenerAck(b, m)
	}
	return b, false
}

// appendReceiptResponse appends {"receipt":r}, or {} for a nil r.
func appendReceiptResponse(b []byte, r *hookstreamv1.Receipt) ([]byte, bool) {
	b = grow(b, 16+receiptSize)
	if r == nil {
		return append(b, "{}"...), true
	}
	b = append(b, `{"receipt":`...)
	b, ok := appendReceipt(b, r)
	return append(b, '}'), ok
}

// appendListenerAck appends a NotifyListenerResponse.
func appendListenerAck(b []byte, m *hookstreamv1.NotifyListenerResponse) ([]byte, bool) {
	b = grow(b, 64)
	f := fields{b: append(b, '{'), ok: true}
	f.string("message", m.GetMessage())
	f.string("status", m.GetStatus())
	return append(f.b, '}'), f.ok
}

// appendReceipt appends one receipt; a nil r is {}, as protojson writes a nil list element.
func appendReceipt(b []byte, r *hookstreamv1.Receipt) ([]byte, bool) {
	f := fields{b: append(b, '{'), ok: true}
	f.string("event_id", r.GetEventId())
	if s := r.GetSequence(); s != 0 {
		f.name("sequence")
		f.b = append(f.b, '"')
		f.b = strconv.AppendUint(f.b, s, 10)
		f.b = append(f.b, '"')
	}
	if r.GetDuplicate() {
		f.name("duplicate")
		f.b = append(f.b, "true"...)
	}
	if o := r.GetOutcome(); o != 0 {
		f.name("outcome")
		if name, ok := hookstreamv1.Receipt_Outcome_name[int32(o)]; ok {
			f.b = append(f.b, '"')
			f.b = append(f.b, name...)
			f.b = append(f.b, '"')
		} else {
			f.b = strconv.AppendInt(f.b, int64(o), 10)
		}
	}
	f.string("quarantine_entry_id", r.GetQuarantineEntryId())
	if vs := r.GetViolations(); len(vs) > 0 {
		f.name("violations")
		f.b = append(f.b, '[')
		for i, v := range vs {
			if i > 0 {
				f.b = append(f.b, ',')
			}
			g := fields{b: append(f.b, '{'), ok: f.ok}
			g.string("field", v.GetField())
			g.string("rule", v.GetRule())
			g.string("message", v.GetMessage())
			f.b, f.ok = append(g.b, '}'), g.ok
		}
		f.b = append(f.b, ']')
	}
	return append(f.b, '}'), f.ok
}

// fields appends the members of one JSON object, after its opening brace.
type fields struct {
	b  []byte
	n  int  // members appended
	ok bool // false once a string was not valid UTF-8
}

// name appends the separator and the member name k, which needs no escaping.
func (f *fields) name(k string) {
	if f.n > 0 {
		f.b = append(f.b, ',')
	}
	f.n++
	f.b = append(f.b, '"')
	f.b = append(f.b, k...)
	f.b = append(f.b, '"', ':')
}

// string appends member k with the string s, unless s is empty (proto3's zero value).
func (f *fields) string(k, s string) {
	if s == "" {
		return
	}
	f.name(k)
	var ok bool
	f.b, ok = appendString(f.b, s)
	f.ok = f.ok && ok
}

// appendString appends s as a JSON string escaped as protojson escapes it
// (google.golang.org/protobuf/internal/encoding/json): '"' and '\\' with a backslash, \b \f \n
// \r \t by their short forms, other control characters as \u00xx in lower case hex, everything
// else as is (no HTML escaping). It returns false for a string that is not valid UTF-8.
func appendString(b []byte, s string) ([]byte, bool) {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return b, false
			}
			i += n
			continue
		}
		if c >= ' ' && c != '"' && c != '\\' {
			i++
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, '\\')
		switch c {
		case '"', '\\':
			b = append(b, c)
		case '\b':
			b = append(b, 'b')
		case '\f':
			b = append(b, 'f')
		case '\n':
			b = append(b, 'n')
		case '\r':
			b = append(b, 'r')
		case '\t':
			b = append(b, 't')
		default:
			b = append(b, 'u')
			b = append(b, "0000"[1+(bits.Len32(uint32(c))-1)/4:]...)
			b = strconv.AppendUint(b, uint64(c), 16)
		}
		i++
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"'), true
}

// grow makes room for n more bytes in b with at most one allocation.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}
