package ingest_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/ingest"
)

// TestRouteMetrics counts on a route's metrics: a route is resolved once, and a status outside
// the resolved ones is still counted.
func TestRouteMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := ingest.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.NewMetrics(reg); err == nil {
		t.Errorf("NewMetrics twice on one registry: got no error, want one")
	}
	const route = "/webhooks/v1/listeners/{listener_id}/notify"
	p := hookstreamv1.Provider_PROVIDER_LISTENER
	if a, b := m.Route(p, route), m.Route(p, route); a != b {
		t.Errorf("Route twice: got two metrics, want one")
	}
	for _, tc := range []struct {
		name  string
		count func()
		want  string // the outcome label moved
	}{
		{name: "refused_401", count: func() { m.Route(p, route).Refused(401) }, want: "401"},
		{name: "refused_503", count: func() { m.Route(p, route).Refused(503) }, want: "503"},
		{name: "refused_other", count: func() { m.Route(p, route).Refused(418) }, want: "418"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.count()
			got := counted(t, reg, "listener", route, tc.want)
			if got < 1 {
				t.Errorf("outcome %s: got %v, want at least 1", tc.want, got)
			}
		})
	}
}

// TestRouteMetricsDoNotAllocate counts on a resolved route: the webhook path is hot, and
// counting allocates nothing. Not parallel: AllocsPerRun refuses to run in a parallel test.
func TestRouteMetricsDoNotAllocate(t *testing.T) {
	m, err := ingest.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	p, route := hookstreamv1.Provider_PROVIDER_MVMNT, "/webhooks/mvmnt"
	m.Route(p, route)
	if n := testing.AllocsPerRun(100, func() { r := m.Route(p, route); r.Refused(429); r.Body(512) }); n != 0 {
		t.Errorf("got %v allocations per count, want 0", n)
	}
}

// counted is the value of hookstream_webhooks_total with these labels, read from reg.
func counted(t *testing.T, reg *prometheus.Registry, provider, route, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "hookstream_webhooks_total" {
			continue
		}
		for _, s := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["provider"] == provider && labels["route"] == route && labels["outcome"] == outcome {
				return s.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no hookstream_webhooks_total{provider=%q,route=%q,outcome=%q}", provider, route, outcome)
	return 0
}
