// Package samples holds a realistic webhook body for every documented event type of every
// provider hookstream receives, embedded in the binary: all of MVMNT's event types (the
// mvmnt.v1.EventType enum), the four Move API events, every Movement topic and event, and a
// listener notification. `hookstream send` posts them. Each body is built from the providers'
// own documentation (../shared/providers/) and converts and validates against hookstream's
// schemas.
//
// A sample is a JSON file (PROVIDER/TYPE.json) whose values that must differ from one send to
// the next are placeholders, themselves JSON strings, so that the file stays valid JSON:
// "$uuid" becomes a new UUID (each occurrence its own), "$int" a new positive integer (each
// occurrence its own, written as a number), "$now" the send's time (RFC 3339 UTC with
// milliseconds). A body is then never a duplicate of an earlier one: every dedup key
// hookstream builds from a body (MVMNT's event, data.id and timestamp; Movement's object id; a
// listener body's hash) changes with it.
package samples

import (
	"bytes"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"math/big"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

//go:embed moveapi movement mvmnt listener
var files embed.FS

// Provider names, as `hookstream send` takes them and as the providers' routes are named.
const (
	MoveAPI  = "moveapi"
	Movement = "movement"
	MVMNT    = "mvmnt"
	Listener = "listener"
)

// ErrUnknownProvider is wrapped by the errors for a provider hookstream has no samples of.
var ErrUnknownProvider = errors.New("unknown provider")

// ErrUnknownType is wrapped by the errors for an event type a provider has no sample of.
var ErrUnknownType = errors.New("unknown event type")

// Providers returns the providers with samples, in the order of hookstream's documentation.
func Providers() []string { return []string{MoveAPI, Movement, MVMNT, Listener} }

// Types returns the event types of provider that have a sample, sorted: MVMNT's as its enum
// names them ("SHIPMENT_CREATED"), the others as hookstream stores their type ("call.finished",
// "job.state.started", "incident.created"). Errors wrap ErrUnknownProvider.
func Types(provider string) ([]string, error) {
	if !slices.Contains(Providers(), provider) {
		return nil, fmt.Errorf("%w %q: want one of %s", ErrUnknownProvider, provider, strings.Join(Providers(), ", "))
	}
	entries, err := files.ReadDir(provider)
	if err != nil {
		return nil, err // embedded: never
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".json"))
	}
	return out, nil // ReadDir sorts by name
}

// Sample is the embedded sample of one event type. Its zero value is not usable: get one from
// Get.
type Sample struct {
	// Provider is the sample's provider, e.g. "mvmnt".
	Provider string
	// Type is its event type, e.g. "SHIPMENT_CREATED".
	Type     string
	template []byte
}

// Get returns the sample of provider's event type typ. MVMNT types are matched without regard
// to case ("shipment_created" is SHIPMENT_CREATED). Errors wrap ErrUnknownProvider or
// ErrUnknownType.
func Get(provider, typ string) (Sample, error) {
	types, err := Types(provider)
	if err != nil {
		return Sample{}, err
	}
	if provider == MVMNT {
		typ = strings.ToUpper(typ)
	}
	if !slices.Contains(types, typ) {
		return Sample{}, fmt.Errorf("%w %q of %s: `hookstream send --list %s` lists them", ErrUnknownType, typ, provider, provider)
	}
	b, err := files.ReadFile(path.Join(provider, typ+".json"))
	if err != nil {
		return Sample{}, err // embedded: never
	}
	return Sample{Provider: provider, Type: typ, template: b}, nil
}

// Body returns the sample's JSON body with fresh values: new UUIDs and integers, and now as the
// time of every timestamp. Two calls never return the same body. Safe for concurrent use.
func (s Sample) Body(now time.Time) []byte {
	b := bytes.ReplaceAll(s.template, []byte(`"$now"`), []byte(strconv.Quote(now.UTC().Format("2006-01-02T15:04:05.000Z"))))
	b = replaceEach(b, `"$uuid"`, func() string { return strconv.Quote(uuid.NewString()) })
	return replaceEach(b, `"$int"`, func() string { return strconv.FormatInt(positiveInt(), 10) })
}

// replaceEach replaces every occurrence of old in b with a new value of next.
func replaceEach(b []byte, old string, next func() string) []byte {
	parts := bytes.Split(b, []byte(old))
	var out bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			out.WriteString(next())
		}
		out.Write(p)
	}
	return out.Bytes()
}

// positiveInt returns a random integer of ten digits: an id such as Movement's, new with every
// call.
func positiveInt() int64 {
	n, err := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return 1_000_000_000 + n.Int64()
}
