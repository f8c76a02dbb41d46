package convert_test

import (
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
