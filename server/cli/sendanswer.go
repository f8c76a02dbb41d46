package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/samples"
)

// answerLine says what the answer of the public door to one delivery of provider means: the
// HTTP status and, for each event, stored, duplicate or quarantined (a 400 is quarantined too:
// hookstream keeps an authentic body it cannot accept). ok reports whether every event was
// stored or a duplicate of a stored one.
func answerLine(provider string, resp *http.Response, body []byte) (line string, ok bool) {
	line, ok = answer(provider, resp, body)
	return oneLine(line), ok
}

// oneLine is s with every control character (a newline a door put in a message) made a space.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// answer is answerLine before it is made one line.
func answer(provider string, resp *http.Response, body []byte) (line string, ok bool) {
	code := resp.StatusCode
	if code/100 != 2 {
		return fmt.Sprintf("%d %s", code, refusal(code, resp.Header.Get("Retry-After"), body)), false
	}
	var receipts []*hookstreamv1.Receipt
	switch provider {
	case samples.Listener:
		// The listener contract fixes the body: the receipt is in headers (a hookstream without
		// them answers only "received").
		switch resp.Header.Get(ingest.MetadataOutcome) {
		case "stored":
			return fmt.Sprintf("%d stored %s", code, resp.Header.Get(ingest.MetadataEventID)), true
		case "duplicate":
			return fmt.Sprintf("%d duplicate, not stored again", code), true
		}
		return fmt.Sprintf("%d received", code), true
	case samples.MVMNT:
		var r hookstreamv1.ReceiveMvmntDeliveryResponse
		if decodeAnswer(body, &r) {
			receipts = r.GetReceipts()
		}
	case samples.MoveAPI:
		var r hookstreamv1.ReceiveMoveApiWebhookResponse
		if decodeAnswer(body, &r) && r.GetReceipt() != nil {
			receipts = append(receipts, r.GetReceipt())
		}
	case samples.Movement:
		var r hookstreamv1.ReceiveMovementWebhookResponse
		if decodeAnswer(body, &r) && r.GetReceipt() != nil {
			receipts = append(receipts, r.GetReceipt())
		}
	}
	if len(receipts) == 0 {
		return fmt.Sprintf("%d without a receipt: %.200q", code, body), false
	}
	parts := make([]string, len(receipts))
	ok = true
	for i, r := range receipts {
		parts[i] = receiptText(r)
		ok = ok && (r.GetOutcome() == hookstreamv1.Receipt_OUTCOME_STORED || r.GetOutcome() == hookstreamv1.Receipt_OUTCOME_DUPLICATE)
	}
	return fmt.Sprintf("%d %s", code, strings.Join(parts, "; ")), ok
}

// decodeAnswer decodes a 2xx answer into m, reporting whether it could.
func decodeAnswer(body []byte, m proto.Message) bool { return convert.Unmarshal(body, m) == nil }

// receiptText is what became of one event.
func receiptText(r *hookstreamv1.Receipt) string {
	switch r.GetOutcome() {
	case hookstreamv1.Receipt_OUTCOME_STORED:
		return fmt.Sprintf("stored %s (sequence %d)", r.GetEventId(), r.GetSequence())
	case hookstreamv1.Receipt_OUTCOME_DUPLICATE:
		return fmt.Sprintf("duplicate of sequence %d, not stored again", r.GetSequence())
	case hookstreamv1.Receipt_OUTCOME_QUARANTINED:
		var vs []string
		for _, v := range r.GetViolations() {
			vs = append(vs, v.GetField()+" ("+v.GetRule()+")")
		}
		return fmt.Sprintf("quarantined as %s: %s", r.GetQuarantineEntryId(), strings.Join(vs, ", "))
	}
	return "outcome " + r.GetOutcome().String()
}

// refusal says why the door refused a delivery with status code, from its error body: a
// google.rpc.Status, or the listener contract's {"error":{"code","message"}}.
func refusal(code int, retryAfter string, body []byte) string {
	var what string
	switch code {
	case http.StatusBadRequest:
		what = "quarantined (the body is kept in the quarantine, not stored as an event)"
	case http.StatusUnauthorized:
		what = "refused: the credentials are not accepted"
	case http.StatusNotFound:
		return "not found: no such route or listener"
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		what = "not stored, retry after " + retryAfter + " s"
	default:
		what = "refused"
	}
	msg := errorMessage(body)
	if msg == "" {
		return what
	}
	return what + ": " + msg
}

// errorMessage is the message of an error body and the fields it names; "" when it has none.
func errorMessage(body []byte) string {
	var st statuspb.Status
	if convert.Unmarshal(body, &st) == nil && st.GetMessage() != "" {
		var fields []string
		for _, d := range st.GetDetails() {
			var br errdetails.BadRequest
			if d.UnmarshalTo(&br) != nil {
				continue
			}
			for _, fv := range br.GetFieldViolations() {
				fields = append(fields, fv.GetField()+": "+fv.GetDescription())
			}
		}
		if len(fields) == 0 {
			return st.GetMessage()
		}
		return st.GetMessage() + ": " + strings.Join(fields, "; ")
	}
	var listener struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(body, &listener) == nil && listener.Error.Message != "" {
		return listener.Error.Message
	}
	return ""
}
