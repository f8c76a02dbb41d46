package ingest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	"github.com/hookstream/hookstream/server/convert"
)

func TestKeys(t *testing.T) {
	t.Parallel()
	movement := func(raw string) string {
		w := &movementv1.Webhook{}
		if err := convert.Unmarshal([]byte(raw), w); err != nil {
			t.Fatal(err)
		}
		return movementKey(w, []byte(raw))
	}
	mvmnt := func(raw string) string {
		w := &mvmntv1.DeliveryEvent{}
		if err := convert.Unmarshal([]byte(raw), w); err != nil {
			t.Fatal(err)
		}
		return mvmntKey(w, []byte(raw))
	}
	for _, tt := range []struct{ name, got, want string }{
		{"movement_with_id", movement(`{"topic":"call","event":"finished","call":{"id":1050}}`), "call.finished.1050"},
		{"movement_id_zero", movement(`{"topic":"call","event":"finished","call":{"id":0}}`), "call.finished." + hashKey([]byte(`{"topic":"call","event":"finished","call":{"id":0}}`))},
		{"movement_no_object", movement(`{"topic":"call","event":"finished"}`), "call.finished." + hashKey([]byte(`{"topic":"call","event":"finished"}`))},
		{"mvmnt_with_id", mvmnt(`{"event":"X","timestamp":"2025-01-15T14:30:00.000Z","data":{"id":"a"}}`), "X/a/2025-01-15T14:30:00Z"},
		{"mvmnt_empty_id", mvmnt(`{"event":"X","timestamp":"2025-01-15T14:30:00Z","data":{"id":""}}`), hashKey([]byte(`{"event":"X","timestamp":"2025-01-15T14:30:00Z","data":{"id":""}}`))},
		{"mvmnt_id_not_string", mvmnt(`{"event":"X","timestamp":"2025-01-15T14:30:00Z","data":{"id":5}}`), hashKey([]byte(`{"event":"X","timestamp":"2025-01-15T14:30:00Z","data":{"id":5}}`))},
		{"mvmnt_no_timestamp", mvmnt(`{"event":"X","data":{"id":"a"}}`), hashKey([]byte(`{"event":"X","data":{"id":"a"}}`))},
		{"listener_dedup_id", listenerKey("l", "d", []byte(`{}`)), "l/id:d"},
		{"listener_no_dedup_id", listenerKey("l", "", []byte(`{}`)), "l/" + hashKey([]byte(`{}`))},
		{"moveapi", moveAPIKey("msg_1", nil), "msg_1"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: key %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// keyOf is the key a provider's payload gets, and whether it was built from an id of the
// payload's (false: from its bytes).
type keyOf func(raw []byte) (key string, fromID, ok bool)

var keyFuncs = map[string]keyOf{
	"movement": func(raw []byte) (string, bool, bool) {
		w := &movementv1.Webhook{}
		if convert.Unmarshal(raw, w) != nil {
			return "", false, false
		}
		id, ok := convert.MovementObjectID(w)
		return movementKey(w, raw), ok && id > 0, true
	},
	"mvmnt": func(raw []byte) (string, bool, bool) {
		w := &mvmntv1.DeliveryEvent{}
		if convert.Unmarshal(raw, w) != nil {
			return "", false, false
		}
		return mvmntKey(w, raw), w.GetEvent() != "" && w.GetData().GetFields()["id"].GetStringValue() != "" && w.GetTimestamp() != nil, true
	},
	"listener": func(raw []byte) (string, bool, bool) {
		return listenerKey("0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a", "", raw), false, true
	},
}

// fuzzKeys checks the property every dedup key must have: two payloads that differ and carry no
// id never share a key; the same bytes always do.
func fuzzKeys(f *testing.F, provider string, seeds ...string) {
	for _, a := range seeds {
		for _, b := range seeds {
			f.Add([]byte(a), []byte(b))
		}
	}
	key := keyFuncs[provider]
	f.Fuzz(func(t *testing.T, a, b []byte) {
		ka, idA, okA := key(a)
		kb, idB, okB := key(b)
		if !okA || !okB {
			return
		}
		if again, _, _ := key(a); again != ka {
			t.Fatalf("the same bytes got keys %q and %q", ka, again)
		}
		if !idA && !idB && !bytes.Equal(a, b) && ka == kb {
			t.Fatalf("distinct payloads without ids share the key %q:\n%q\n%q", ka, a, b)
		}
		if idA != idB && ka == kb {
			t.Fatalf("an id-based key and a digest key meet: %q", ka)
		}
	})
}

func FuzzMovementKey(f *testing.F) {
	fuzzKeys(f, "movement",
		`{"topic":"call","event":"finished","call":{"outcome":"answered"}}`,
		`{"topic":"call","event":"finished","call":{"outcome":"no answer"}}`,
		`{"topic":"call","event":"finished","call":{"id":0}}`,
		`{"topic":"call","event":"finished","call":{"id":7}}`,
		`{"topic":"petition","event":"signed"}`)
}

func FuzzMvmntKey(f *testing.F) {
	fuzzKeys(f, "mvmnt",
		`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000"}}`,
		`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{}}`,
		`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"id":""}}`,
		`{"event":"SHIPMENT_BOOKED","data":{"id":"a"}}`)
}

func FuzzListenerKey(f *testing.F) {
	fuzzKeys(f, "listener", `{}`, `{"event_type":"a"}`, `{"event_type":"a","n":1}`)
}

// TestWriteKeySeeds keeps the fuzz targets' committed seed corpus in step with the seeds above
// (HOOKSTREAM_UPDATE_SEEDS=1 go test -run TestWriteKeySeeds).
func TestWriteKeySeeds(t *testing.T) {
	if os.Getenv("HOOKSTREAM_UPDATE_SEEDS") == "" {
		return
	}
	for name, seeds := range map[string][]string{
		"FuzzMovementKey": {`{"topic":"call","event":"finished","call":{"outcome":"answered"}}`, `{"topic":"call","event":"finished","call":{"id":0}}`},
		"FuzzMvmntKey":    {`{"event":"X","timestamp":"2025-01-15T14:30:00Z","data":{"id":""}}`, `{"event":"X","timestamp":"2025-01-15T14:30:00Z","data":{"id":"a"}}`},
		"FuzzListenerKey": {`{}`, `{"event_type":"a"}`},
	} {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", seeds[0], seeds[1])
		if err := os.WriteFile(filepath.Join(dir, "seed_pair"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
