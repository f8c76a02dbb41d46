package convert_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hookstream/hookstream/server/convert"
)

// fuzzProvider feeds arbitrary bodies to one provider's conversion. It must never panic; every
// body is accepted, malformed or invalid; and what is accepted survives a JSON round trip
// unchanged (what a consumer reads back is what was stored). Seeds: the sample payloads in
// testdata/<provider>/ and the committed corpus in testdata/fuzz/.
func fuzzProvider(f *testing.F, provider string) {
	files, _ := filepath.Glob(filepath.Join("testdata", provider+"*", "*.json"))
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		res := ingest(t, provider, raw)
		if res.err != nil {
			var verr *protovalidate.ValidationError
			if !errors.As(res.err, &verr) && !errors.Is(res.err, convert.ErrMalformed) {
				t.Fatalf("error %v is neither malformed nor invalid", res.err)
			}
			return
		}
		for _, p := range res.payloads {
			b, err := protojson.Marshal(p)
			if err != nil {
				t.Fatalf("marshal accepted payload: %v", err)
			}
			back := p.ProtoReflect().New().Interface()
			if err := protojson.Unmarshal(b, back); err != nil {
				t.Fatalf("accepted payload does not read back: %v", err)
			}
			if !proto.Equal(p, back) {
				t.Fatalf("payload changed in a JSON round trip:\n%v\n%v", p, back)
			}
		}
	})
}

func FuzzMoveAPI(f *testing.F)  { fuzzProvider(f, "moveapi") }
func FuzzMovement(f *testing.F) { fuzzProvider(f, "movement") }
func FuzzMvmnt(f *testing.F)    { fuzzProvider(f, "mvmnt") }
func FuzzListener(f *testing.F) { fuzzProvider(f, "listener") }

// FuzzSplitMvmnt checks the envelope reader on any input: it never panics; what it accepts is
// one JSON object, and each item it returns is valid JSON, a piece of the input, byte for byte
// the element encoding/json finds at the same place.
func FuzzSplitMvmnt(f *testing.F) {
	for _, s := range []string{
		`{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"A"},{"event":"B"}]}`,
		`{"events":[ 1 , "s" ,null,[],{}],"x":{"events":5}}`,
		`{"sent_at":null,"events":null}`,
		`{"events":[{"a":[1,2,{"b":"]"}]}]} `,
		`{"events":"nope"}`, `[1]`, `{"events":[1,]}`, `{"events":[{}]}{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, items, err := convert.SplitMvmnt(raw)
		if err != nil {
			if !errors.Is(err, convert.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		var d struct {
			Events []json.RawMessage `json:"events"`
		}
		jsonErr := json.Unmarshal(raw, &d)
		for i, item := range items {
			if !json.Valid(item) || !bytes.Contains(raw, item) {
				t.Fatalf("item %d %q is not valid JSON from the input", i, item)
			}
			if jsonErr == nil && i < len(d.Events) && !bytes.Equal(item, d.Events[i]) {
				t.Fatalf("item %d: %q, encoding/json has %q", i, item, d.Events[i])
			}
		}
	})
}
