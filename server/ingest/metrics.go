package ingest

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// Routes that are not HTTP routes, as the route label of the webhook metrics names them.
const (
	// RouteGRPC is the route of gRPC producers' calls (WebhookService on the internal API).
	RouteGRPC = "grpc"
	// RouteRedrive is the route of redriven quarantine entries.
	RouteRedrive = "redrive"
)

// outcomes are the values of the outcome label that are resolved in advance: the receipts'
// outcomes, then the HTTP statuses of refused requests.
var outcomes = [...]string{"stored", "duplicate", "quarantined", "400", "401", "404", "408", "413", "415", "429", "499", "500", "503", "504"}

// firstStatus is the index in outcomes of the first HTTP status.
const firstStatus = 3

// Metrics are the webhook metrics, shared by the front door (what it refuses before the core:
// 401, 404, 408, 413, 415, 429, and the bodies it reads) and the core (everything else):
//
//   - hookstream_webhooks_total{provider,route,outcome}: each event of a 2xx answer by its
//     receipt (stored, duplicate, quarantined), each other answer by its HTTP status;
//   - hookstream_webhook_ack_seconds{provider}: from the request's delivery to the core (an HTTP
//     body read and verified) to its 2xx answer, which comes after the durable append;
//   - hookstream_webhook_body_bytes{provider}: the bodies the front door read in full.
//
// The route label is the route's path template ("/webhooks/v1/listeners/{listener_id}/notify",
// never a listener's id), RouteGRPC or RouteRedrive: its values are bounded. Build it with
// NewMetrics; it is safe for concurrent use.
type Metrics struct {
	outcomes *prometheus.CounterVec
	ack      *prometheus.HistogramVec
	body     *prometheus.HistogramVec

	mu     sync.Mutex                                 // serialises adding routes
	routes atomic.Pointer[map[routeKey]*RouteMetrics] // copied on write: read without a lock
}

type routeKey struct {
	provider hookstreamv1.Provider
	route    string
}

// NewMetrics returns the webhook metrics, registered with reg. It fails when reg already has
// them.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_webhooks_total",
			Help: "Webhooks answered: each event of a 2xx answer by its receipt (stored, duplicate, quarantined), each other answer by its HTTP status.",
		}, []string{"provider", "route", "outcome"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookstream_webhook_ack_seconds",
			Help:    "Time from a webhook's verified body to its 2xx answer, sent after the durable append.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 15), // 0.5 ms to 8 s
		}, []string{"provider"}),
		body: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookstream_webhook_body_bytes",
			Help:    "Sizes of the webhook bodies read in full by the front door.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 8), // 256 B to 4 MiB
		}, []string{"provider"}),
	}
	for _, c := range []prometheus.Collector{m.outcomes, m.ack, m.body} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.routes.Store(&map[routeKey]*RouteMetrics{})
	return m, nil
}

// Route returns the metrics of one route of provider p, resolved once: the label values of a
// route are looked up on its first request only.
func (m *Metrics) Route(p hookstreamv1.Provider, route string) *RouteMetrics {
	k := routeKey{p, route}
	if r, ok := (*m.routes.Load())[k]; ok {
		return r
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.routes.Load()
	if r, ok := old[k]; ok {
		return r
	}
	provider := providerLabel(p)
	r := &RouteMetrics{vec: m.outcomes, provider: provider, route: route, ack: m.ack.WithLabelValues(provider), body: m.body.WithLabelValues(provider)}
	for i, o := range outcomes {
		r.outcomes[i] = m.outcomes.WithLabelValues(provider, route, o)
	}
	routes := make(map[routeKey]*RouteMetrics, len(old)+1)
	for k, v := range old {
		routes[k] = v
	}
	routes[k] = r
	m.routes.Store(&routes)
	return r
}

// providerLabel is the provider label of p: "moveapi", "movement", "mvmnt", "listener".
func providerLabel(p hookstreamv1.Provider) string {
	return strings.ToLower(strings.TrimPrefix(p.String(), "PROVIDER_"))
}

// RouteMetrics are the webhook metrics of one route, with every label resolved. A nil
// RouteMetrics counts nothing. Safe for concurrent use.
type RouteMetrics struct {
	vec             *prometheus.CounterVec
	provider, route string
	outcomes        [len(outcomes)]prometheus.Counter
	ack, body       prometheus.Observer
}

// Refused counts one request answered with httpStatus, not 2xx.
func (r *RouteMetrics) Refused(httpStatus int) {
	if r == nil {
		return
	}
	if i, ok := statusOutcome[httpStatus]; ok {
		r.outcomes[i].Inc()
		return
	}
	r.vec.WithLabelValues(r.provider, r.route, strconv.Itoa(httpStatus)).Inc()
}

// statusOutcome is the index in outcomes of each HTTP status there.
var statusOutcome = func() map[int]int {
	m := make(map[int]int, len(outcomes)-firstStatus)
	for i := firstStatus; i < len(outcomes); i++ {
		n, _ := strconv.Atoi(outcomes[i])
		m[n] = i
	}
	return m
}()

// Body observes the size of a body read in full.
func (r *RouteMetrics) Body(n int) {
	if r != nil {
		r.body.Observe(float64(n))
	}
}

// finish counts the answer of one request of provider p: each receipt of a success, else the
// HTTP status of err's code. began is when the core got the request; an HTTP delivery's
// ReceivedAt, when set, is when the front door had its body verified. Redrives count, but their
// time is not an ack's.
func (s *Service) finish(ctx context.Context, p hookstreamv1.Provider, began time.Time, receipts []*hookstreamv1.Receipt, err error) {
	route := RouteGRPC
	d, fromHTTP := FromContext(ctx)
	if fromHTTP {
		route = d.Route
		if route == "" {
			route = RouteRedrive
		} else if !d.ReceivedAt.IsZero() {
			began = d.ReceivedAt
		}
	}
	r := s.metrics.Route(p, route)
	if err != nil {
		r.Refused(runtime.HTTPStatusFromCode(status.Code(err)))
		return
	}
	for _, rc := range receipts {
		switch rc.GetOutcome() {
		case hookstreamv1.Receipt_OUTCOME_STORED:
			r.outcomes[0].Inc()
		case hookstreamv1.Receipt_OUTCOME_DUPLICATE:
			r.outcomes[1].Inc()
		case hookstreamv1.Receipt_OUTCOME_QUARANTINED:
			r.outcomes[2].Inc()
		}
	}
	if route != RouteRedrive {
		r.ack.Observe(time.Since(began).Seconds())
	}
}
