// Package stream implements EventService: Subscribe (consumer groups as durable JetStream pull
// consumers, acks, flow control, redelivery, dead letters), Tail, GetEvent and ListEvents, all
// reading the event log, and the administration of groups (ListGroups, GetGroup, ResetGroup,
// PauseGroup, ResumeGroup, DeleteGroup). Tails and Subscribes are capped per principal and in all
// (Options.MaxStreamsPerPrincipal, MaxStreams).
package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/validate"
)

// Defaults of a subscription.
const (
	DefaultAckDeadline   = 30 * time.Second
	DefaultMaxInFlight   = 100
	DefaultMaxDeliveries = 5
	// DefaultHeartbeat is how long a stream may stay idle before the server sends a heartbeat:
	// below the ~60 s idle timeout of common proxies.
	DefaultHeartbeat = 20 * time.Second
	// maxNackBackoff caps the delay of a nack without one.
	maxNackBackoff = 5 * time.Minute
	// pollWait bounds each pull from the log, so streams notice shutdown and idle time.
	pollWait = time.Second
	// maxEventsPerMessage bounds the events of one Subscribe message by count, beside
	// Options.MaxResponseBytes by size.
	maxEventsPerMessage = 64
)

// Options configures a Service.
type Options struct {
	// Log is the event log to read. Required.
	Log *eventlog.Log
	// Heartbeat is the idle time before a heartbeat. Default DefaultHeartbeat.
	Heartbeat time.Duration
	// MaxResponseBytes bounds each message of a Subscribe or Tail stream and each page of
	// ListEvents, in encoded event bytes; an event larger than that goes out alone. Required.
	MaxResponseBytes int
	// MaxStreamsPerPrincipal is how many Tail and Subscribe streams one principal (package
	// auth; Anonymous without one) may hold open at once; more are refused with
	// RESOURCE_EXHAUSTED. Required (config holds the default).
	MaxStreamsPerPrincipal int
	// MaxStreams is how many Tail and Subscribe streams may be open at once, in all; more are
	// refused with RESOURCE_EXHAUSTED. Required (config holds the default).
	MaxStreams int
	// Logger receives what goes wrong. Default: discard.
	Logger *slog.Logger
	// Metrics is where New registers the consumer groups' redeliveries, dead letters and ack
	// latency. Nil: not exported.
	Metrics prometheus.Registerer
}

// Service implements hookstreamv1.EventServiceServer. It is safe for concurrent use.
type Service struct {
	hookstreamv1.UnimplementedEventServiceServer
	log           *eventlog.Log
	heartbeat     time.Duration
	responseBytes int
	logger        *slog.Logger
	streams       *streamLimiter
	metrics       *metrics
	groups        *groupStreams

	drainOnce sync.Once
	draining  chan struct{}
}

// OptionsFrom returns the Options of a configuration: the one place its keys meet the service's
// options (package config holds the defaults). Log, Heartbeat and Logger are left unset.
func OptionsFrom(c config.Config) Options {
	return Options{
		MaxResponseBytes:       c.GRPC.MaxResponseBytes,
		MaxStreamsPerPrincipal: c.Limits.MaxStreamsPerPrincipal,
		MaxStreams:             c.Limits.MaxStreams,
	}
}

// ErrInvalidOptions is wrapped by New's errors for Options that cannot be used.
var ErrInvalidOptions = errors.New("invalid stream options")

// New returns a Service reading o.Log. Errors wrap ErrInvalidOptions.
func New(o Options) (*Service, error) {
	switch {
	case o.Log == nil || o.MaxResponseBytes <= 0:
		return nil, fmt.Errorf("%w: a log and a positive max response bytes are required", ErrInvalidOptions)
	case o.MaxStreamsPerPrincipal < 1 || o.MaxStreams < 1:
		return nil, fmt.Errorf("%w: max streams %d per principal, %d in all: want positive limits", ErrInvalidOptions, o.MaxStreamsPerPrincipal, o.MaxStreams)
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry() // counted where no one reads: no test for nil
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics: %w", ErrInvalidOptions, err)
	}
	return &Service{
		log: o.Log, heartbeat: o.Heartbeat, responseBytes: o.MaxResponseBytes, logger: o.Logger,
		streams:  newStreamLimiter(o.MaxStreamsPerPrincipal, o.MaxStreams),
		metrics:  m,
		groups:   newGroupStreams(),
		draining: make(chan struct{}),
	}, nil
}

// Drain makes every open stream send its last "draining" message and end, so that clients
// reconnect (to another instance) at once. Events in flight are released for redelivery. Call it
// before stopping the gRPC server; streams opened after it end at once.
func (s *Service) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

// logError is the status of an error of the event log: each cause its own code, with a public
// message.
func logError(err error) error {
	switch {
	case errors.Is(err, eventlog.ErrBadFilter), errors.Is(err, eventlog.ErrRejected):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, eventlog.ErrGroupMismatch):
		return status.Error(codes.FailedPrecondition, "the group exists with another filter")
	case errors.Is(err, eventlog.ErrTooManyGroups):
		return exhausted("TOO_MANY_GROUPS", "too many consumer groups: an admin may delete one (DeleteGroup), or use an existing group")
	case errors.Is(err, eventlog.ErrTooManyConsumers):
		return exhausted("TOO_MANY_CONSUMERS", "the event log holds the most consumers it may: retry later")
	case errors.Is(err, eventlog.ErrGroupNotFound):
		return status.Error(codes.NotFound, "no such consumer group")
	case errors.Is(err, eventlog.ErrNotFound):
		return status.Error(codes.NotFound, "no such event")
	case errors.Is(err, eventlog.ErrCorrupt):
		return status.Error(codes.DataLoss, "a stored event does not decode")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the request was canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the request timed out")
	}
	return status.Error(codes.Unavailable, "event log unavailable, retry later")
}

// Subscribe implements hookstreamv1.EventServiceServer.
func (s *Service) Subscribe(srv hookstreamv1.EventService_SubscribeServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return status.Error(codes.InvalidArgument, "the first request must be open")
	}
	if err := validate.Request(first); err != nil {
		return err
	}
	release, err := s.admit(srv.Context(), "subscribe")
	if err != nil {
		return err
	}
	defer release()
	ctx := srv.Context()
	if group := open.GetGroup(); group != "" {
		var left func()
		if ctx, left, err = s.groups.join(ctx, group); err != nil {
			return err
		}
		defer left() // after sub.close: a reset waits until the stream's events are released
	}
	sub, err := s.newSubscription(ctx, open)
	if err != nil {
		return resetOr(ctx, err)
	}
	defer sub.close()
	return resetOr(ctx, sub.run(ctx, srv))
}
