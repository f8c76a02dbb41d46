package convert_test

import (
	"errors"
	"strings"
	"testing"

	"buf.build/go/protovalidate"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hookstream/hookstream/server/convert"
)

const (
	moveapiOK  = `{"detail":{"api_name":"move-ugc-api","client_id":"client-1","job_id":"8c2f4e1a-3b5d-4c7e-9f0a-1b2c3d4e5f60"},"event_name":"job.state.completed","timestamp":"2023-09-04T10:58:06Z"}`
	movementOK = `{"topic":"call","event":"finished","call":{"id":1050,"began_at":"2023-03-21T15:21:26.414Z","duration":65,"outcome":"answer","responses":[]},"campaign":{"id":3,"name":"c"},"target":{"id":104,"organisations":[]},"user":null}`
	mvmntOK    = `{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000","friendlyId":"SHP-12345","key":"ERP-SHIP-789"},"diff":null}]}`
)

// TestBrokenPayloads holds what each kind of broken, odd or hostile payload must come to: a
// conversion error (400, quarantined), named schema violations (400, quarantined), or acceptance
// (a provider adding fields, event types or enum values must never make a delivery fail).
func TestBrokenPayloads(t *testing.T) {
	t.Parallel()
	mvmntWith := func(item string) string {
		return `{"sentAt":"2025-01-15T14:30:00Z","events":[` + item + `]}`
	}
	const id = `"id":"660e8400-e29b-41d4-a716-446655440000"`
	tests := []struct {
		name       string
		provider   string
		body       string
		want       outcome
		violations []string
	}{
		// Move API.
		{name: "moveapi_sample", provider: "moveapi", body: moveapiOK, want: accepted},
		{name: "moveapi_unknown_fields", provider: "moveapi", body: strings.Replace(moveapiOK, `"detail":{`, `"attempt":2,"detail":{"region":"eu",`, 1), want: accepted},
		{name: "moveapi_unknown_event_name", provider: "moveapi", body: strings.Replace(moveapiOK, "job.state.completed", "job.state.paused", 1), want: accepted},
		{name: "moveapi_metadata_any_json", provider: "moveapi", body: `{"detail":{"event_attributes":{"job":{"created":"","id":"j","metadata":{"n":1,"nested":{"a":[1,null,true]}}},"take":{"id":"t"}}},"event_name":"ugc.job.state.completed","timestamp":"2023-09-14T09:18:17Z"}`, want: accepted},
		{name: "moveapi_empty_object", provider: "moveapi", body: `{}`, want: invalid, violations: []string{"webhook.detail: required", "webhook.event_name: string.min_len", "webhook.timestamp: required"}},
		{name: "moveapi_missing_event_name", provider: "moveapi", body: strings.Replace(moveapiOK, `"event_name":"job.state.completed",`, ``, 1), want: invalid, violations: []string{"webhook.event_name: string.min_len"}},
		{name: "moveapi_detail_null", provider: "moveapi", body: `{"detail":null,"event_name":"job.state.started","timestamp":"2023-09-04T10:58:06Z"}`, want: invalid, violations: []string{"webhook.detail: required"}},
		{name: "moveapi_timestamp_not_a_date", provider: "moveapi", body: strings.Replace(moveapiOK, "2023-09-04T10:58:06Z", "yesterday", 1), want: malformed},
		{name: "moveapi_timestamp_unix_number", provider: "moveapi", body: strings.Replace(moveapiOK, `"2023-09-04T10:58:06Z"`, `1693825086`, 1), want: malformed},
		{name: "moveapi_job_id_number", provider: "moveapi", body: strings.Replace(moveapiOK, `"8c2f4e1a-3b5d-4c7e-9f0a-1b2c3d4e5f60"`, `42`, 1), want: malformed},
		{name: "moveapi_duplicate_key", provider: "moveapi", body: strings.Replace(moveapiOK, `"event_name":"job.state.completed"`, `"event_name":"job.state.completed","event_name":"job.state.started"`, 1), want: malformed},
		{name: "json_array", provider: "moveapi", body: `[{"event_name":"job.state.started"}]`, want: malformed},
		{name: "not_json", provider: "moveapi", body: `event_name=job.state.started`, want: malformed},
		{name: "truncated_json", provider: "moveapi", body: moveapiOK[:len(moveapiOK)-5], want: malformed},
		{name: "invalid_utf8", provider: "moveapi", body: strings.Replace(moveapiOK, "move-ugc-api", "move-\xff\xfe-api", 1), want: malformed},

		// Movement.
		{name: "movement_doc_email_invalid_json", provider: "movement", body: `{"topic":"email","event":"sent","email":{"id":1050,"sent_at":"2023-03-21T15:21:26.414Z","body":"Content of email","subject_line:" "Subject line of email"}}`, want: malformed},
		{name: "movement_user_null", provider: "movement", body: movementOK, want: accepted},
		{name: "movement_media_null", provider: "movement", body: `{"topic":"text_message","event":"received","text_message":{"id":1,"sent_at":"2023-03-21T15:21:26.414Z","body":"hi","media_type":null,"media_url":null},"user":null}`, want: accepted},
		{name: "movement_id_as_string", provider: "movement", body: strings.Replace(movementOK, `"id":1050`, `"id":"1050"`, 1), want: accepted},
		{name: "movement_unknown_topic", provider: "movement", body: `{"topic":"donation","event":"received","donation":{"id":9,"amount":"10.00"}}`, want: accepted},
		{name: "movement_unknown_kind", provider: "movement", body: `{"topic":"subscription","event":"unsubscribe","subscription":{"id":1,"kind":"telegram","topic":"default","subscribed":false}}`, want: accepted},
		{name: "movement_call_missing", provider: "movement", body: `{"topic":"call","event":"finished"}`, want: invalid, violations: []string{"webhook: webhook.call_present"}},
		{name: "movement_topic_missing", provider: "movement", body: `{"event":"finished","call":{"id":1}}`, want: invalid, violations: []string{"webhook.topic: string.min_len"}},
		{name: "movement_negative_duration", provider: "movement", body: strings.Replace(movementOK, `"duration":65`, `"duration":-5`, 1), want: invalid, violations: []string{"webhook.call.duration: int64.gte"}},
		{name: "movement_id_fraction", provider: "movement", body: strings.Replace(movementOK, `"id":1050`, `"id":10.5`, 1), want: malformed},
		{name: "movement_id_huge", provider: "movement", body: strings.Replace(movementOK, `"id":1050`, `"id":1e30`, 1), want: malformed},
		{name: "movement_subscribed_string", provider: "movement", body: `{"topic":"subscription","event":"unsubscribe","subscription":{"id":1,"kind":"sms","subscribed":"false"}}`, want: malformed},
		{name: "movement_two_objects", provider: "movement", body: `{"topic":"call","event":"finished","call":{"id":1},"email":{"id":2}}`, want: malformed},
		{name: "movement_responses_not_array", provider: "movement", body: strings.Replace(movementOK, `"responses":[]`, `"responses":{}`, 1), want: malformed},

		// MVMNT.
		{name: "mvmnt_sample", provider: "mvmnt", body: mvmntOK, want: accepted},
		{name: "mvmnt_unknown_event", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_TELEPORTED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `}}`), want: accepted},
		{name: "mvmnt_unknown_diff_type", provider: "mvmnt", body: mvmntWith(`{"event":"CARRIER_UPDATED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `},"diff":[{"type":"MOVE","key":"x","value":{"a":[1]}}]}`), want: accepted},
		{name: "mvmnt_deleted_with_extra_fields", provider: "mvmnt", body: mvmntWith(`{"event":"VENDOR_DELETED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `,"deletedAt":"2025-01-15T14:29:00Z"}}`), want: accepted},
		{name: "mvmnt_timestamp_offset", provider: "mvmnt", body: strings.ReplaceAll(mvmntOK, "2025-01-15T14:30:00Z", "2025-01-15T16:30:00+02:00"), want: accepted},
		{name: "mvmnt_events_empty", provider: "mvmnt", body: `{"sentAt":"2025-01-15T14:30:00Z","events":[]}`, want: invalid, violations: []string{"delivery.events: repeated.min_items"}},
		{name: "mvmnt_events_null", provider: "mvmnt", body: `{"sentAt":"2025-01-15T14:30:00Z","events":null}`, want: invalid, violations: []string{"delivery.events: repeated.min_items"}},
		{name: "mvmnt_sent_at_missing", provider: "mvmnt", body: strings.Replace(mvmntOK, `"sentAt":"2025-01-15T14:30:00Z",`, ``, 1), want: invalid, violations: []string{"delivery.sent_at: required"}},
		{name: "mvmnt_data_missing", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z"}`), want: invalid, violations: []string{"delivery.events[0].data: required"}},
		{name: "mvmnt_data_id_missing", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"friendlyId":"SHP-1"}}`), want: invalid, violations: []string{"delivery.events[0]: delivery_event.data_id"}},
		{name: "mvmnt_data_id_not_uuid", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"SHP-1"}}`), want: invalid, violations: []string{"delivery.events[0]: delivery_event.data_id"}},
		{name: "mvmnt_data_id_number", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{"id":7}}`), want: invalid, violations: []string{"delivery.events[0]: delivery_event.data_id"}},
		{name: "mvmnt_second_item_broken", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `}},{"event":"","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `}}`), want: invalid, violations: []string{"delivery.events[1].event: string.min_len"}},
		{name: "mvmnt_data_array", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":[1]}`), want: malformed},
		{name: "mvmnt_typed_field_wrong_type", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `,"friendlyId":12}}`), want: malformed},
		{name: "mvmnt_key_too_long", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `,"key":"` + strings.Repeat("k", 513) + `"}}`), want: invalid, violations: []string{"shipment_delivered.key: string.max_len"}},
		{name: "mvmnt_timestamp_without_zone", provider: "mvmnt", body: strings.Replace(mvmntOK, `"timestamp":"2025-01-15T14:30:00Z"`, `"timestamp":"2025-01-15T14:30:00"`, 1), want: malformed},
		{name: "mvmnt_events_object", provider: "mvmnt", body: `{"sentAt":"2025-01-15T14:30:00Z","events":{"event":"SHIPMENT_BOOKED"}}`, want: malformed},
		{name: "mvmnt_nesting_200", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `,"x":` + strings.Repeat(`[`, 200) + strings.Repeat(`]`, 200) + `}}`), want: accepted},
		{name: "mvmnt_nesting_20000", provider: "mvmnt", body: mvmntWith(`{"event":"SHIPMENT_BOOKED","timestamp":"2025-01-15T14:30:00Z","data":{` + id + `,"x":` + strings.Repeat(`[`, 20000) + strings.Repeat(`]`, 20000) + `}}`), want: malformed},

		// Listener.
		{name: "listener_empty_object", provider: "listener", body: `{}`, want: accepted},
		{name: "listener_event_type_number", provider: "listener", body: `{"event_type":5,"data":{}}`, want: accepted},
		{name: "listener_array", provider: "listener", body: `[1,2]`, want: malformed},
		{name: "listener_string", provider: "listener", body: `"hello"`, want: malformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := ingest(t, tt.provider, []byte(tt.body))
			var verr *protovalidate.ValidationError
			var got outcome
			switch {
			case res.err == nil:
				got = accepted
			case errors.As(res.err, &verr):
				got = invalid
			case errors.Is(res.err, convert.ErrMalformed):
				got = malformed
			default:
				t.Fatalf("ingest failed with %v, which is neither malformed nor invalid", res.err)
			}
			if got != tt.want {
				t.Fatalf("outcome %d (err %v), want %d", got, res.err, tt.want)
			}
			if diff := cmp.Diff(tt.violations, res.violations, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("violations differ (-want +got):\n%s", diff)
			}
		})
	}
}
