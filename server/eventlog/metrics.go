package eventlog

import (
	"context"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Reasons of hookstream_append_errors_total.
const (
	reasonRefused     = "refused"     // the log was known to be failing: refused at once
	reasonUnavailable = "unavailable" // the publish or its ack failed, or the commit timed out
	reasonFsync       = "fsync"       // stored, but the fsync after the commit failed
	reasonTooLarge    = "too_large"   // beyond the size budget: never sent
	reasonClosed      = "closed"      // the log was closing
)

// scrapeTimeout bounds the JetStream requests of one scrape of the log's collector.
const scrapeTimeout = 5 * time.Second

// logMetrics are the metrics of the committers, by stream label ("events", "quarantine").
type logMetrics struct {
	size   *prometheus.HistogramVec
	commit *prometheus.HistogramVec
	fsync  *prometheus.HistogramVec
	errors *prometheus.CounterVec
}

func newLogMetrics() *logMetrics {
	return &logMetrics{
		size: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookstream_commit_messages",
			Help:    "Messages per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1 to 1,024 (MaxBatch is 1,000)
		}, []string{"stream"}),
		commit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookstream_commit_seconds",
			Help:    "Duration of a group commit, from its first publish to its last ack (and fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16), // 0.2 ms to 6.5 s
		}, []string{"stream"}),
		fsync: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hookstream_fsync_seconds",
			Help:    "Duration of the fsync that ends a group commit on the embedded server with durability always.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 0.1 ms to 3.3 s
		}, []string{"stream"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hookstream_append_errors_total",
			Help: "Messages the event log did not store, by reason: refused (the log was failing), unavailable (publish, ack or timeout), fsync, too_large, closed.",
		}, []string{"stream", "reason"}),
	}
}

func (m *logMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.size, m.commit, m.fsync, m.errors}
}

// committerMetrics are one committer's metrics, with the stream label resolved.
type committerMetrics struct {
	size, commit, fsync prometheus.Observer
	errors              map[string]prometheus.Counter // by reason
}

func (m *logMetrics) committer(stream string) *committerMetrics {
	c := &committerMetrics{
		size:   m.size.WithLabelValues(stream),
		commit: m.commit.WithLabelValues(stream),
		fsync:  m.fsync.WithLabelValues(stream),
		errors: map[string]prometheus.Counter{},
	}
	for _, r := range []string{reasonRefused, reasonUnavailable, reasonFsync, reasonTooLarge, reasonClosed} {
		c.errors[r] = m.errors.WithLabelValues(stream, r)
	}
	return c
}

// failed counts n messages not stored for reason.
func (c *committerMetrics) failed(reason string, n int) { c.errors[reason].Add(float64(n)) }

// collector reads what the log's streams and groups hold from JetStream at each scrape: one
// stream info request per stream and one consumer listing, bounded by scrapeTimeout (the
// groups are at most Options.MaxGroups).
type collector struct {
	l                                  *Log
	msgs, bytes, entries, pend, flight *prometheus.Desc
	redelivered                        *prometheus.Desc
}

func newCollector(l *Log) *collector {
	return &collector{
		l:           l,
		msgs:        prometheus.NewDesc("hookstream_stream_messages", "Messages a stream holds (events: the events stored and the dead letters redriven to their groups; quarantine: the entries).", []string{"stream"}, nil),
		bytes:       prometheus.NewDesc("hookstream_stream_bytes", "Bytes a stream holds on disk.", []string{"stream"}, nil),
		entries:     prometheus.NewDesc("hookstream_quarantine_entries", "Quarantine entries held, by provider and reason.", []string{"provider", "reason"}, nil),
		pend:        prometheus.NewDesc("hookstream_group_pending", "Events of a consumer group's filter stored and not yet delivered to it: its backlog.", []string{"group"}, nil),
		flight:      prometheus.NewDesc("hookstream_group_in_flight", "Events delivered to a consumer group and not yet acknowledged.", []string{"group"}, nil),
		redelivered: prometheus.NewDesc("hookstream_group_redelivered", "Events of a consumer group delivered more than once and not yet acknowledged.", []string{"group"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.msgs, c.bytes, c.entries, c.pend, c.flight, c.redelivered} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. What JetStream does not answer is reported as an
// invalid metric, so that the scrape says so; the rest is served.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	for _, s := range []struct{ name, label string }{{EventsStream, "events"}, {QuarantineStream, "quarantine"}} {
		var opts []jetstream.StreamInfoOpt
		if s.name == QuarantineStream {
			opts = append(opts, jetstream.WithSubjectFilter(QuarantineSubjectPrefix+".>"))
		}
		info, err := c.streamInfo(ctx, s.name, opts...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.msgs, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.msgs, prometheus.GaugeValue, float64(info.State.Msgs), s.label)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, float64(info.State.Bytes), s.label)
		if s.name == QuarantineStream {
			c.collectEntries(ch, info.State.Subjects)
		}
	}
	c.collectGroups(ctx, ch)
}

func (c *collector) streamInfo(ctx context.Context, name string, opts ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	st, err := c.l.js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	return st.Info(ctx, opts...)
}

// collectEntries reports the quarantine's subjects, hookstream.quarantine.<provider>.<reason>,
// as counts by provider and reason: at most the providers times the reasons.
func (c *collector) collectEntries(ch chan<- prometheus.Metric, subjects map[string]uint64) {
	for subject, n := range subjects {
		provider, reason, ok := strings.Cut(strings.TrimPrefix(subject, QuarantineSubjectPrefix+"."), ".")
		if !ok {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(n), provider, reason)
	}
}

// collectGroups reports each consumer group's backlog and unacknowledged events.
func (c *collector) collectGroups(ctx context.Context, ch chan<- prometheus.Metric) {
	st, err := c.l.js.Stream(ctx, EventsStream)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.pend, err)
		return
	}
	lister := st.ListConsumers(ctx)
	for info := range lister.Info() { // read to the end: the lister's goroutine waits otherwise
		name, ok := strings.CutPrefix(info.Name, groupPrefix)
		if !ok {
			continue // a Tail's or an ephemeral subscription's
		}
		ch <- prometheus.MustNewConstMetric(c.pend, prometheus.GaugeValue, float64(info.NumPending), name)
		ch <- prometheus.MustNewConstMetric(c.flight, prometheus.GaugeValue, float64(info.NumAckPending), name)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), name)
	}
	if err := lister.Err(); err != nil {
		ch <- prometheus.NewInvalidMetric(c.pend, err)
	}
}
