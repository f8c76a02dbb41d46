package gateway

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
)

// protojsonAnswer is the answer as the webhook mux wrote it before appendAnswer: compact
// protojson with convert's options.
func protojsonAnswer(t testing.TB, v proto.Message) ([]byte, error) {
	t.Helper()
	return convert.Marshaler().Marshal(v)
}

func stored(seq uint64) *hookstreamv1.Receipt {
	return &hookstreamv1.Receipt{EventId: fmt.Sprintf("0193a5c4-7e1f-7c3a-9d2b-%012d", seq), Sequence: seq, Outcome: hookstreamv1.Receipt_OUTCOME_STORED}
}

func TestAppendAnswerMatchesProtojson(t *testing.T) {
	t.Parallel()
	quarantined := &hookstreamv1.Receipt{
		Outcome:           hookstreamv1.Receipt_OUTCOME_QUARANTINED,
		QuarantineEntryId: "0193a5c4-7e1f-7c3a-9d2b-000000000009",
		Violations: []*hookstreamv1.Receipt_Violation{
			{Field: "events[2].timestamp", Rule: "required", Message: "value is required"},
			{Field: "events[2]", Rule: "malformed", Message: `proto: (line 1:2): unexpected token "x"`},
			{Rule: "string.uuid"},
		},
	}
	var many []*hookstreamv1.Receipt
	for i := range 1500 {
		if i%7 == 3 {
			many = append(many, quarantined)
			continue
		}
		many = append(many, stored(uint64(i+1)))
	}
	var control strings.Builder
	for c := range rune(0x20) {
		control.WriteRune(c)
	}
	tests := []struct {
		name string
		v    proto.Message
	}{
		{"stored_moveapi", &hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: stored(42)}},
		{"stored_movement", &hookstreamv1.ReceiveMovementWebhookResponse{Receipt: stored(1<<64 - 1)}},
		{"duplicate", &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: []*hookstreamv1.Receipt{
			{EventId: "a", Sequence: 7, Duplicate: true, Outcome: hookstreamv1.Receipt_OUTCOME_DUPLICATE}}}},
		{"quarantined_with_violations", &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: []*hookstreamv1.Receipt{quarantined}}},
		{"batch_of_many", &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: many}},
		{"no_receipts", &hookstreamv1.ReceiveMvmntDeliveryResponse{}},
		{"empty_list", &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: []*hookstreamv1.Receipt{}}},
		{"empty_receipt", &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: []*hookstreamv1.Receipt{{}, stored(1), {}}}},
		{"no_receipt", &hookstreamv1.ReceiveMoveApiWebhookResponse{}},
		{"empty_single_receipt", &hookstreamv1.ReceiveMovementWebhookResponse{Receipt: &hookstreamv1.Receipt{}}},
		{"unnamed_outcome", &hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: &hookstreamv1.Receipt{Outcome: 99}}},
		{"negative_outcome", &hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: &hookstreamv1.Receipt{Outcome: -3}}},
		{"duplicate_without_outcome", &hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: &hookstreamv1.Receipt{Duplicate: true}}},
		{"strings_needing_escapes", &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: []*hookstreamv1.Receipt{{
			EventId:           "quote\" backslash\\ slash/ <html>&amp; \u2028\u2029 é 日本 😀 \ufffd",
			QuarantineEntryId: control.String() + "\x7f",
			Outcome:           hookstreamv1.Receipt_OUTCOME_QUARANTINED,
			Violations:        []*hookstreamv1.Receipt_Violation{{Field: "a\tb\nc", Rule: "\x00", Message: `{"json":"inside"}`}},
		}}}},
		{"listener_ack", &hookstreamv1.NotifyListenerResponse{Message: "Event received successfully", Status: "RECEIVED"}},
		{"listener_ack_empty", &hookstreamv1.NotifyListenerResponse{}},
		{"listener_ack_status_only", &hookstreamv1.NotifyListenerResponse{Status: "RECEIVED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want, err := protojsonAnswer(t, tt.v)
			if err != nil {
				t.Fatalf("protojson: %v", err)
			}
			got, ok := appendAnswer(nil, tt.v)
			if !ok {
				t.Fatalf("appendAnswer declined %v", tt.v)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("appendAnswer (-protojson +got):\n%s", diff)
			}
		})
	}
}

func TestWebhookMarshalerFallsBack(t *testing.T) {
	t.Parallel()
	m := webhookMarshaler{convert.Marshaler()}
	tests := []struct {
		name    string
		v       any
		wantErr bool
	}{
		// protojson rejects a string that is not UTF-8: the answer must be its error, not bytes.
		{"invalid_utf8_event_id", &hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: &hookstreamv1.Receipt{EventId: "a\xffb"}}, true},
		{"invalid_utf8_violation", &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: []*hookstreamv1.Receipt{
			stored(1), {Violations: []*hookstreamv1.Receipt_Violation{{Message: "\xc3"}}}}}, true},
		{"invalid_utf8_listener", &hookstreamv1.NotifyListenerResponse{Status: "\xed\xa0\x80"}, true},
		{"other_message", &hookstreamv1.Receipt{EventId: "x", Sequence: 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := m.Marshal(tt.v)
			want, wantErr := convert.Marshaler().Marshal(tt.v)
			if (err != nil) != tt.wantErr || (wantErr != nil) != tt.wantErr {
				t.Fatalf("got error %v, protojson error %v, want error %v", err, wantErr, tt.wantErr)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("Marshal (-protojson +got):\n%s", diff)
			}
		})
	}
}

// FuzzAppendAnswer compares appendAnswer with protojson for receipts built from arbitrary
// strings and numbers: the same bytes, or both refuse (invalid UTF-8).
func FuzzAppendAnswer(f *testing.F) {
	f.Add("0193a5c4-7e1f-7c3a-9d2b-000000000001", uint64(1), false, int32(1), "", "", "", "", uint8(1))
	f.Add("a", uint64(7), true, int32(2), "", "", "", "", uint8(3))
	f.Add("", uint64(0), false, int32(3), "q-1", "events[0].timestamp", "required", "value is required", uint8(2))
	f.Add("\"\\\x00\x1f\u2028<>&", uint64(1<<64-1), true, int32(-1), "\t\n\r\b\f", "é", "😀", "\x7f", uint8(0))
	f.Add("\xff", uint64(0), false, int32(0), "", "", "", "", uint8(1))
	f.Fuzz(func(t *testing.T, id string, seq uint64, dup bool, outcome int32, qid, field, rule, msg string, n uint8) {
		r := &hookstreamv1.Receipt{EventId: id, Sequence: seq, Duplicate: dup, Outcome: hookstreamv1.Receipt_Outcome(outcome), QuarantineEntryId: qid}
		if field != "" || rule != "" || msg != "" {
			r.Violations = []*hookstreamv1.Receipt_Violation{{Field: field, Rule: rule, Message: msg}, {Message: msg}}
		}
		receipts := make([]*hookstreamv1.Receipt, n%8)
		for i := range receipts {
			receipts[i] = r
		}
		for _, v := range []proto.Message{
			&hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: receipts},
			&hookstreamv1.ReceiveMoveApiWebhookResponse{Receipt: r},
			&hookstreamv1.ReceiveMovementWebhookResponse{Receipt: r},
			&hookstreamv1.NotifyListenerResponse{Message: id, Status: msg},
		} {
			want, err := protojsonAnswer(t, v)
			got, ok := appendAnswer(nil, v)
			if (err == nil) != ok {
				t.Fatalf("appendAnswer ok %v, protojson error %v, for %v", ok, err, v)
			}
			if ok && string(got) != string(want) {
				t.Fatalf("appendAnswer\n got %s\nwant %s", got, want)
			}
		}
	})
}

// BenchmarkAnswer measures the webhook mux's answer for a one-item MVMNT delivery and a
// 100-item one: appended by hand (fast) and compact protojson (protojson, the encoding before).
func BenchmarkAnswer(b *testing.B) {
	one := &hookstreamv1.ReceiveMvmntDeliveryResponse{Receipts: []*hookstreamv1.Receipt{stored(123456)}}
	hundred := &hookstreamv1.ReceiveMvmntDeliveryResponse{}
	for i := range 100 {
		hundred.Receipts = append(hundred.Receipts, stored(uint64(i+1)))
	}
	fast := webhookMarshaler{convert.Marshaler()}
	for _, bc := range []struct {
		name string
		v    proto.Message
	}{{"receipt_1", one}, {"receipt_100", hundred}} {
		b.Run(bc.name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fast.Marshal(bc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+"/protojson", func(b *testing.B) {
			m := convert.Marshaler()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Marshal(bc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
