package stream

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ephemeralGroup is the group label of ephemeral subscriptions: their consumers' generated names
// would make the label unbounded. No group can be named so (groups match [A-Za-z0-9_-]).
const ephemeralGroup = "(ephemeral)"

// metrics are the consumer groups' metrics that only the subscriptions see. The group label is
// bounded by limits.max_groups at a time; a deleted group's series go with it (DeleteGroup), an
// expired one's stay until the process restarts.
type metrics struct {
	redeliveries *prometheus.CounterVec
	deadLetters  *prometheus.CounterVec
	ack          *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		redeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_group_redeliveries_total",
			Help: "Events delivered to a consumer group again (delivery attempt above 1): nacked, or not acknowledged within the ack deadline.",
		}, []string{"group"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_group_dead_letters_total",
			Help: "Events of a consumer group moved to the quarantine after the maximum deliveries.",
		}, []string{"group"}),
		ack: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookstream_group_ack_seconds",
			Help:    "Time from an event's delivery to a consumer group's subscriber to its ack.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms to 33 s
		}, []string{"group"}),
	}
	for _, c := range []prometheus.Collector{m.redeliveries, m.deadLetters, m.ack} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// groupMetrics are one subscription's metrics, with its group label resolved.
type groupMetrics struct {
	redeliveries, deadLetters prometheus.Counter
	ack                       prometheus.Observer
}

// group returns the metrics of group; "" is an ephemeral subscription.
func (m *metrics) group(group string) groupMetrics {
	if group == "" {
		group = ephemeralGroup
	}
	return groupMetrics{
		redeliveries: m.redeliveries.WithLabelValues(group),
		deadLetters:  m.deadLetters.WithLabelValues(group),
		ack:          m.ack.WithLabelValues(group),
	}
}

// forget drops the series of a deleted group.
func (m *metrics) forget(group string) {
	m.redeliveries.DeleteLabelValues(group)
	m.deadLetters.DeleteLabelValues(group)
	m.ack.DeleteLabelValues(group)
}
