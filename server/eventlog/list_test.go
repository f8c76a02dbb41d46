package eventlog_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
)

// TestFilterSubjectsPrefix checks that a prefix pattern becomes the exact subjects of the
// documented MVMNT types it matches, and that patterns that cannot match are ErrBadFilter.
func TestFilterSubjectsPrefix(t *testing.T) {
	t.Parallel()
	mvmnt := []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_MVMNT}
	for _, tt := range []struct {
		name      string
		providers []hookstreamv1.Provider
		types     []string
		want      []string
		wantErr   error
	}{
		{"contact_prefix", mvmnt, []string{"CUSTOMER_CONTACT_*"}, []string{
			"hookstream.events.mvmnt.CUSTOMER_CONTACT_CREATED",
			"hookstream.events.mvmnt.CUSTOMER_CONTACT_DELETED",
			"hookstream.events.mvmnt.CUSTOMER_CONTACT_UPDATED",
		}, nil},
		{"prefix_and_exact_once", mvmnt, []string{"SHIPMENT_DELIVERED", "SHIPMENT_DELIVERED*"}, []string{"hookstream.events.mvmnt.SHIPMENT_DELIVERED"}, nil},
		{"token_patterns_unchanged", nil, []string{"job.state.*"}, []string{
			"hookstream.events.moveapi.job.state.*",
			"hookstream.events.movement.job.state.*",
			"hookstream.events.mvmnt.job.state.*",
			"hookstream.events.listener.job.state.*",
		}, nil},
		{"leading_star", mvmnt, []string{"*FOO"}, nil, eventlog.ErrBadFilter},
		{"inner_star", mvmnt, []string{"SHIP*MENT"}, nil, eventlog.ErrBadFilter},
		{"empty", mvmnt, []string{""}, nil, eventlog.ErrBadFilter},
		{"no_match", mvmnt, []string{"NOSUCH_*"}, nil, eventlog.ErrBadFilter},
		{"listener_prefix", []hookstreamv1.Provider{hookstreamv1.Provider_PROVIDER_LISTENER}, []string{"incident.*", "incident.op*"}, nil, eventlog.ErrBadFilter},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := eventlog.FilterSubjects(&hookstreamv1.EventFilter{Providers: tt.providers, Types: tt.types})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("subjects (-want +got):\n%s", diff)
			}
		})
	}
}
