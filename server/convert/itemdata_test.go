package convert_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	"github.com/hookstream/hookstream/server/convert"
)

// storedBoth builds item's event both ways: from its exact bytes (MvmntItemEvent, the front
// door's way) and from its Struct alone (MvmntEvent, today's way and a gRPC producer's). It fails
// the test when item does not decode.
func storedBoth(t *testing.T, item []byte) (fromBytes, fromStruct *mvmntv1.Event, errBytes, errStruct error) {
	t.Helper()
	wire := &mvmntv1.DeliveryEvent{}
	if err := convert.Unmarshal(item, wire); err != nil {
		t.Fatalf("item %s does not decode: %v", item, err)
	}
	sentAt := timestamppb.New(timestamppb.Now().AsTime())
	fromBytes, errBytes = convert.MvmntItemEvent(item, wire, sentAt, 1, 3)
	fromStruct, errStruct = convert.MvmntEvent(wire, sentAt, 1, 3)
	return fromBytes, fromStruct, errBytes, errStruct
}

// deterministic is m's deterministic wire form: what the event log stores of it.
func deterministic(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMvmntItemEventGolden types every item of the golden MVMNT testdata from its own bytes and
// checks that the stored event is byte for byte the one typed from its Struct, and that the
// data's bytes were found (the fast way was taken, not the fallback).
func TestMvmntItemEventGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("testdata/mvmnt*/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 16 {
		t.Fatalf("found %d MVMNT samples, want at least 16", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			t.Parallel()
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, items, err := convert.SplitMvmnt(raw)
			if err != nil {
				t.Fatal(err)
			}
			for i, item := range items {
				if convert.ItemData(item) == nil {
					t.Errorf("item %d: data bytes not found", i)
				}
				got, want, errGot, errWant := storedBoth(t, item)
				if errGot != nil || errWant != nil {
					t.Fatalf("item %d: got error %v, want %v", i, errGot, errWant)
				}
				if !bytes.Equal(deterministic(t, got), deterministic(t, want)) {
					t.Errorf("item %d: stored bytes differ (-want +got):\n%s", i, cmp.Diff(want, got, protocmp.Transform()))
				}
			}
		})
	}
}

// TestMvmntItemEventShapes types items written in every way JSON allows, and hostile ones that
// still decode, both ways: what is stored is the same, or both fail as malformed.
func TestMvmntItemEventShapes(t *testing.T) {
	t.Parallel()
	const id = `"id":"660e8400-e29b-41d4-a716-446655440000"`
	tests := []struct {
		name string
		item string
		// fast is whether the data's bytes are found (else the Struct is used).
		fast bool
	}{
		{"compact", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"name":"Acme"}}`, true},
		{"whitespace", "{ \n\t\"event\" : \"CUSTOMER_CREATED\" ,\r\n \"timestamp\":\"2025-01-15T12:00:00Z\" , \"data\" :\n {" + id + " , \"name\" : \"Acme\" } \n}", true},
		{"data_first", `{"data":{` + id + `,"name":"Acme"},"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z"}`, true},
		{"data_after_diff", `{"event":"CUSTOMER_UPDATED","timestamp":"2025-01-15T12:00:00Z","diff":[{"type":"UPDATE","key":"name","value":"}\"{[","oldValue":{"a":[1,{"b":"]"}]}}],"data":{` + id + `}}`, true},
		{"unknown_item_fields_with_brackets", `{"x":"{\"data\":1}","y":[{"data":{}}],"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `}}`, true},
		{"escaped_key_before_data", `{"ev\u0065nt":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `}}`, false},
		{"escaped_data_key", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","d\u0061ta":{` + id + `,"name":"Escaped"}}`, false},
		{"data_null", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":null}`, false},
		{"no_data", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z"}`, false},
		{"empty_data", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{}}`, true},
		{"proto_names_and_escapes", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"friendly_id":"A\u00e9\"1","dba_name":"\ud83d\ude00 \\ \/"}}`, true},
		{"nulls", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"key":null,"website":null,"group":null,"paymentTerm":null,"createdAt":null}}`, true},
		{"numbers", `{"event":"CARRIER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"trucks":12,"trailers":1e2,"drivers":-0,"powerUnits":9007199254740992}}`, true},
		{"doubles", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"creditLimit":0.1500000000000000001,"defaultMargin":1E-7,"maxMargin":-1.5e300}}`, true},
		{"unknown_data_fields_deep", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"later":` + strings.Repeat(`{"a":[`, 40) + `"}]"` + strings.Repeat(`]}`, 40) + `}}`, true},
		{"untyped", `{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"friendlyId":"S1","stops":[{"n":1}]}}`, true},
		{"unknown_event", `{"event":"SHIPMENT_BEAMED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `}}`, true},
		{"deleted", `{"event":"CARRIER_DELETED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `}}`, true},
		{"typed_field_wrong_type", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"name":5}}`, true},
		{"typed_int_fraction", `{"event":"CARRIER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"trucks":1.5}}`, true},
		{"typed_int_too_big", `{"event":"CARRIER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"trucks":1e30}}`, true},
		{"typed_timestamp_bad", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"createdAt":"yesterday"}}`, true},
		{"both_names_of_a_field", `{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{` + id + `,"friendlyId":"A","friendly_id":"B"}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := convert.ItemData([]byte(tt.item)) != nil; got != tt.fast {
				t.Errorf("data bytes found: got %v, want %v", got, tt.fast)
			}
			got, want, errGot, errWant := storedBoth(t, []byte(tt.item))
			if (errGot != nil) != (errWant != nil) {
				t.Fatalf("got error %v, want %v", errGot, errWant)
			}
			if errGot != nil {
				if !errors.Is(errGot, convert.ErrMalformed) {
					t.Errorf("got error %v, want one wrapping ErrMalformed", errGot)
				}
				return
			}
			if !bytes.Equal(deterministic(t, got), deterministic(t, want)) {
				t.Errorf("stored bytes differ (-want +got):\n%s", cmp.Diff(want, got, protocmp.Transform()))
			}
		})
	}
}

// TestMvmntItemEventExactIntegers pins the one intended difference: an integer beyond 2^53 is
// stored as sent, where a round trip through the Struct's doubles rounded it.
func TestMvmntItemEventExactIntegers(t *testing.T) {
	t.Parallel()
	item := []byte(`{"event":"CARRIER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000","trucks":9007199254740993}}`)
	got, viaStruct, errGot, errStruct := storedBoth(t, item)
	if errGot != nil || errStruct != nil {
		t.Fatalf("errors %v, %v", errGot, errStruct)
	}
	if n := got.GetCarrier().GetTrucks(); n != 9007199254740993 {
		t.Errorf("got trucks %d, want 9007199254740993", n)
	}
	if n := viaStruct.GetCarrier().GetTrucks(); n != 9007199254740992 {
		t.Errorf("via the Struct: got trucks %d, want the rounded 9007199254740992", n)
	}
}

// TestItemData checks the data bytes found in items, including inputs protojson would refuse
// (itemData must not panic on them, and finds nothing it cannot be sure of).
func TestItemData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, item, want string // want "" is nil
	}{
		{"plain", `{"data":{"id":"x"}}`, `{"id":"x"}`},
		{"later", ` {"a":1, "b":[{"data":2}], "data" : {"k":"}"} }`, `{"k":"}"}`},
		{"escaped_quote_in_string", `{"a":"\"data\":{}","data":{"b":"\\"}}`, `{"b":"\\"}`},
		{"no_data", `{"a":1}`, ``},
		{"empty_object", `{}`, ``},
		{"not_object", `[{"data":{}}]`, ``},
		{"data_string", `{"data":"{}"}`, ``},
		{"data_null", `{"data":null}`, ``},
		{"escaped_key", `{"d\u0061ta":{}}`, ``},
		{"truncated_before_data", `{"a":[1,2`, ``},
		{"truncated_in_data", `{"data":{"a":"b`, ``},
		{"truncated_string", `{"a":"\`, ``},
		{"truncated_key", `{"da`, ``},
		{"no_colon", `{"data" {}}`, ``},
		{"no_comma", `{"a":1 "data":{}}`, ``},
		{"empty_value", `{"a":,"data":{}}`, ``},
		{"empty", ``, ``},
		{"deep", `{"x":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `,"data":{}}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := convert.ItemData([]byte(tt.item))
			if (got == nil) != (tt.want == "") || string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzItemData checks on any input that itemData never panics and that the bytes it finds, when
// the input decodes as an item, are exactly the item's data: they decode to the item's Struct.
func FuzzItemData(f *testing.F) {
	for _, s := range []string{
		`{"event":"CUSTOMER_CREATED","timestamp":"2025-01-15T12:00:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000"}}`,
		`{"x":"{\"data\":1}","data":{"a":[1,{"b":"]"}]}}`,
		`{"d\u0061ta":{}}`, `{"data":null}`, `{"data":{"a":"\\\""}}`, `[{"data":{}}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, item []byte) {
		data := convert.ItemData(item)
		wire := &mvmntv1.DeliveryEvent{}
		if data == nil || convert.Unmarshal(item, wire) != nil {
			return
		}
		s := &structpb.Struct{}
		if err := protojson.Unmarshal(data, s); err != nil {
			t.Fatalf("data %q of a decoded item does not decode: %v", data, err)
		}
		if !proto.Equal(s, wire.GetData()) {
			t.Fatalf("data %q is not the item's data %v", data, wire.GetData())
		}
	})
}
