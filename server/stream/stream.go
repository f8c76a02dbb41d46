// Package stream implements EventService: Subscribe (consumer groups as durable JetStream pull
// consumers, acks, flow control, redelivery, dead letters), Tail, GetEvent and ListEvents, all
// reading the event log.
package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
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
	// pollWait bounds each pull from JetStream, so streams notice shutdown and idle time.
	pollWait = time.Second
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
	// Logger receives what goes wrong. Default: discard.
	Logger *slog.Logger
}

// Service implements hookstreamv1.EventServiceServer. It is safe for concurrent use.
type Service struct {
	hookstreamv1.UnimplementedEventServiceServer
	log       *eventlog.Log
	js        jetstream.JetStream
	heartbeat time.Duration
	validator protovalidate.Validator
	logger    *slog.Logger

	drainOnce sync.Once
	draining  chan struct{}
}

// New returns a Service reading o.Log.
func New(o Options) (*Service, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{log: o.Log, js: o.Log.JetStream(), heartbeat: o.Heartbeat, validator: v, logger: o.Logger, draining: make(chan struct{})}, nil
}

// Drain makes every open stream send its last "draining" message and end, so that clients
// reconnect (to another instance) at once. Events in flight are released for redelivery. Call it
// before stopping the gRPC server; streams opened after it end at once.
func (s *Service) Drain() { s.drainOnce.Do(func() { close(s.draining) }) }

func badRequest(err error) error { return status.Error(codes.InvalidArgument, err.Error()) }

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
	sub, err := s.newSubscription(srv.Context(), open)
	if err != nil {
		return err
	}
	defer sub.close()
	return sub.run(srv)
}

// subscription is one Subscribe stream.
type subscription struct {
	s             *Service
	group         string
	ephemeral     bool
	consumer      jetstream.Consumer
	ackDeadline   time.Duration
	maxInFlight   int
	maxDeliveries int

	mu       sync.Mutex
	inFlight map[string]jetstream.Msg
	credit   chan struct{} // signalled when in-flight events are settled
}

func (s *Service) newSubscription(ctx context.Context, open *hookstreamv1.SubscribeRequest_Open) (*subscription, error) {
	subjects, err := eventlog.FilterSubjects(open.GetFilter())
	if err != nil {
		return nil, badRequest(err)
	}
	policy, seq, t, err := startPolicy(open.GetStart(), hookstreamv1.StartPosition_POLICY_NEW)
	if err != nil {
		return nil, badRequest(err)
	}
	sub := &subscription{
		s:             s,
		group:         open.GetGroup(),
		ackDeadline:   DefaultAckDeadline,
		maxInFlight:   DefaultMaxInFlight,
		maxDeliveries: DefaultMaxDeliveries,
		inFlight:      map[string]jetstream.Msg{},
		credit:        make(chan struct{}, 1),
	}
	if d := open.GetAckDeadline(); d != nil {
		sub.ackDeadline = d.AsDuration()
	}
	if n := open.GetMaxInFlight(); n > 0 {
		sub.maxInFlight = int(n)
	}
	if n := open.GetMaxDeliveries(); n > 0 {
		sub.maxDeliveries = int(n)
	}
	cfg := jetstream.ConsumerConfig{
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        sub.ackDeadline,
		MaxDeliver:     -1, // dead letters are moved to the quarantine by hookstream itself
		MaxAckPending:  -1,
		FilterSubjects: subjects,
		DeliverPolicy:  policy,
		OptStartSeq:    seq,
		OptStartTime:   t,
		Metadata:       map[string]string{"max_deliveries": fmt.Sprint(sub.maxDeliveries)},
	}
	stream, err := s.js.Stream(ctx, eventlog.EventsStream)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "event log unavailable")
	}
	if sub.group == "" {
		sub.ephemeral = true
		sub.group = "ephemeral-" + uuid.NewString()
		cfg.Name = sub.group
		cfg.InactiveThreshold = time.Minute
		if sub.consumer, err = stream.CreateConsumer(ctx, cfg); err != nil {
			return nil, consumerError(err)
		}
		return sub, nil
	}
	cfg.Durable = "group-" + sub.group
	existing, err := stream.Consumer(ctx, cfg.Durable)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if sub.consumer, err = stream.CreateConsumer(ctx, cfg); err != nil {
			// Another stream of the group may have created it meanwhile.
			if existing, err2 := stream.Consumer(ctx, cfg.Durable); err2 == nil {
				return sub.join(existing, subjects)
			}
			return nil, consumerError(err)
		}
		return sub, nil
	case err != nil:
		return nil, status.Error(codes.Unavailable, "event log unavailable")
	}
	return sub.join(existing, subjects)
}

// join attaches the subscription to an existing group, whose settings win.
func (sub *subscription) join(c jetstream.Consumer, subjects []string) (*subscription, error) {
	info := c.CachedInfo()
	have := append([]string(nil), info.Config.FilterSubjects...)
	if len(have) == 0 && info.Config.FilterSubject != "" {
		have = []string{info.Config.FilterSubject}
	}
	want := append([]string(nil), subjects...)
	slices.Sort(have)
	slices.Sort(want)
	if !slices.Equal(have, want) {
		return nil, status.Errorf(codes.FailedPrecondition, "group %q exists with another filter", sub.group)
	}
	sub.consumer = c
	sub.ackDeadline = info.Config.AckWait
	if n := info.Config.Metadata["max_deliveries"]; n != "" {
		fmt.Sscan(n, &sub.maxDeliveries)
	}
	return sub, nil
}

func consumerError(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code == 400 {
		return status.Errorf(codes.InvalidArgument, "subscription rejected: %s", apiErr.Description)
	}
	return status.Error(codes.Unavailable, "event log unavailable")
}

func (sub *subscription) close() {
	// Release what this stream still holds, so only its events are redelivered, at once.
	sub.mu.Lock()
	for _, m := range sub.inFlight {
		m.Nak()
	}
	sub.inFlight = nil
	sub.mu.Unlock()
	if sub.ephemeral {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		sub.s.js.DeleteConsumer(ctx, eventlog.EventsStream, sub.group)
	}
}

func (sub *subscription) run(srv hookstreamv1.EventService_SubscribeServer) error {
	ctx, cancel := context.WithCancel(srv.Context())
	defer cancel()
	out := make(chan *hookstreamv1.SubscribeResponse, 4)
	sendErr := make(chan error, 1)
	// The only goroutine that sends on the stream.
	go func() {
		for {
			select {
			case m := <-out:
				if err := srv.Send(m); err != nil {
					sendErr <- err
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	send := func(m *hookstreamv1.SubscribeResponse) bool {
		select {
		case out <- m:
			return true
		case <-ctx.Done():
			return false
		}
	}
	send(&hookstreamv1.SubscribeResponse{Kind: &hookstreamv1.SubscribeResponse_Subscribed_{Subscribed: &hookstreamv1.SubscribeResponse_Subscribed{
		Group:         sub.group,
		AckDeadline:   durationpb.New(sub.ackDeadline),
		MaxInFlight:   uint32(sub.maxInFlight),
		MaxDeliveries: uint32(sub.maxDeliveries),
	}}})

	recvErr := make(chan error, 1)
	go func() { recvErr <- sub.receive(srv) }()

	idle := time.Now()
	for {
		select {
		case <-ctx.Done():
			return sub.endErr(sendErr, recvErr)
		case err := <-recvErr:
			if err == io.EOF {
				return nil
			}
			return err
		case <-sub.s.draining:
			send(&hookstreamv1.SubscribeResponse{Kind: &hookstreamv1.SubscribeResponse_Draining_{Draining: &hookstreamv1.SubscribeResponse_Draining{Reason: "server shutting down"}}})
			// Give the sender a moment to flush the draining message.
			time.Sleep(50 * time.Millisecond)
			return nil
		default:
		}
		credit := sub.credits()
		if credit == 0 {
			select {
			case <-sub.credit:
			case <-time.After(pollWait):
			case <-ctx.Done():
			case <-sub.s.draining:
			}
			if time.Since(idle) >= sub.s.heartbeat {
				send(heartbeat())
				idle = time.Now()
			}
			continue
		}
		batch, err := sub.consumer.Fetch(credit, jetstream.FetchMaxWait(pollWait))
		if err != nil {
			sub.s.logger.Warn("fetch failed", "group", sub.group, "err", err)
			select {
			case <-time.After(pollWait):
			case <-ctx.Done():
			}
			continue
		}
		// Each event goes to the client as soon as it arrives (with whatever else has arrived
		// by then): an event held in a buffer would spend its ack deadline there.
		sent := false
		msgs := batch.Messages()
		for m := range msgs {
			var events []*hookstreamv1.ReceivedEvent
			if ev := sub.deliver(ctx, m); ev != nil {
				events = append(events, ev)
			}
		more:
			for len(events) < 64 {
				select {
				case m, ok := <-msgs:
					if !ok {
						break more
					}
					if ev := sub.deliver(ctx, m); ev != nil {
						events = append(events, ev)
					}
				default:
					break more
				}
			}
			if len(events) > 0 {
				send(eventsResponse(events))
				sent = true
			}
		}
		if sent {
			idle = time.Now()
		} else if time.Since(idle) >= sub.s.heartbeat {
			send(heartbeat())
			idle = time.Now()
		}
	}
}

func (sub *subscription) endErr(sendErr, recvErr chan error) error {
	select {
	case err := <-sendErr:
		return err
	case err := <-recvErr:
		if err == io.EOF {
			return nil
		}
		return err
	default:
		return nil
	}
}

func heartbeat() *hookstreamv1.SubscribeResponse {
	return &hookstreamv1.SubscribeResponse{Kind: &hookstreamv1.SubscribeResponse_Heartbeat_{Heartbeat: &hookstreamv1.SubscribeResponse_Heartbeat{Time: timestamppb.Now()}}}
}

func eventsResponse(events []*hookstreamv1.ReceivedEvent) *hookstreamv1.SubscribeResponse {
	return &hookstreamv1.SubscribeResponse{Kind: &hookstreamv1.SubscribeResponse_Events_{Events: &hookstreamv1.SubscribeResponse_Events{Events: events}}}
}

func (sub *subscription) credits() int {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return max(sub.maxInFlight-len(sub.inFlight), 0)
}

// deliver turns a pulled message into a delivery, or dead-letters it when it has been delivered
// maxDeliveries times already.
func (sub *subscription) deliver(ctx context.Context, m jetstream.Msg) *hookstreamv1.ReceivedEvent {
	meta, err := m.Metadata()
	if err != nil {
		m.Term()
		return nil
	}
	e := &hookstreamv1.Event{}
	if err := proto.Unmarshal(m.Data(), e); err != nil {
		sub.s.logger.Error("undecodable event", "sequence", meta.Sequence.Stream, "err", err)
		m.Term()
		return nil
	}
	e.Sequence = meta.Sequence.Stream
	attempt := int(meta.NumDelivered)
	if attempt > sub.maxDeliveries {
		if err := sub.deadLetter(ctx, e, attempt-1); err != nil {
			// Not lost: it stays in the group and is tried again later.
			sub.s.logger.Error("dead letter not quarantined, redelivered later", "sequence", e.GetSequence(), "err", err)
			m.NakWithDelay(maxNackBackoff)
			return nil
		}
		m.Term()
		return nil
	}
	ackID := fmt.Sprintf("%d.%d", meta.Sequence.Stream, attempt)
	sub.mu.Lock()
	sub.inFlight[ackID] = m
	sub.mu.Unlock()
	return &hookstreamv1.ReceivedEvent{AckId: ackID, Event: e, DeliveryAttempt: uint32(attempt)}
}

// deadLetter moves e to the quarantine. The entry holds the event, whose raw JSON it does not
// copy a second time, so that it fits the log like the event did.
func (sub *subscription) deadLetter(ctx context.Context, e *hookstreamv1.Event, attempts int) error {
	entry := &hookstreamv1.QuarantineEntry{
		Id:               uuid.Must(uuid.NewV7()).String(),
		Reason:           hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER,
		Detail:           fmt.Sprintf("not acknowledged by group %q after %d deliveries", sub.group, attempts),
		Provider:         e.GetProvider(),
		Source:           e.GetSource(),
		ReceivedAt:       e.GetReceivedAt(),
		QuarantinedAt:    timestamppb.Now(),
		RequestId:        e.GetRequestId(),
		Event:            e,
		ConsumerGroup:    sub.group,
		DeliveryAttempts: uint32(attempts),
	}
	res, err := sub.s.log.Quarantine(ctx, entry)
	if err != nil {
		return err
	}
	return res[0].Err
}

// receive applies the settle requests of the stream until it ends.
func (sub *subscription) receive(srv hookstreamv1.EventService_SubscribeServer) error {
	for {
		req, err := srv.Recv()
		if err != nil {
			return err
		}
		settle := req.GetSettle()
		if settle == nil {
			return status.Error(codes.InvalidArgument, "only the first request may be open")
		}
		if err := sub.s.validator.Validate(req); err != nil {
			return status.Error(codes.InvalidArgument, "invalid settle request")
		}
		for _, id := range settle.GetAckIds() {
			if m := sub.take(id); m != nil {
				m.Ack()
			}
		}
		for _, n := range settle.GetNacks() {
			if m := sub.take(n.GetAckId()); m != nil {
				delay := n.GetDelay().AsDuration()
				if delay <= 0 {
					delay = backoff(m)
				}
				m.NakWithDelay(delay)
			}
		}
		for _, id := range settle.GetExtendAckIds() {
			sub.mu.Lock()
			m := sub.inFlight[id]
			sub.mu.Unlock()
			if m != nil {
				m.InProgress()
			}
		}
		select {
		case sub.credit <- struct{}{}:
		default:
		}
	}
}

func (sub *subscription) take(ackID string) jetstream.Msg {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	m := sub.inFlight[ackID]
	delete(sub.inFlight, ackID)
	return m
}

// backoff is the redelivery delay of a nack without one: 1 s after the first delivery, doubling
// with each, at most maxNackBackoff.
func backoff(m jetstream.Msg) time.Duration {
	attempt := uint64(1)
	if meta, err := m.Metadata(); err == nil {
		attempt = meta.NumDelivered
	}
	d := time.Second << min(attempt-1, 20)
	return min(d, maxNackBackoff)
}

// Tail implements hookstreamv1.EventServiceServer.
func (s *Service) Tail(req *hookstreamv1.TailRequest, srv hookstreamv1.EventService_TailServer) error {
	if err := s.validator.Validate(req); err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	cons, err := s.ordered(srv.Context(), req.GetFilter(), req.GetStart(), hookstreamv1.StartPosition_POLICY_NEW)
	if err != nil {
		return err
	}
	idle := time.Now()
	for {
		select {
		case <-srv.Context().Done():
			return nil
		case <-s.draining:
			return nil
		default:
		}
		batch, err := cons.Fetch(256, jetstream.FetchMaxWait(pollWait))
		if err != nil {
			return status.Error(codes.Unavailable, "event log unavailable")
		}
		for m := range batch.Messages() {
			e, err := decode(m)
			if err != nil {
				continue
			}
			if err := srv.Send(&hookstreamv1.TailResponse{Kind: &hookstreamv1.TailResponse_Event{Event: e}}); err != nil {
				return err
			}
			idle = time.Now()
		}
		if time.Since(idle) >= s.heartbeat {
			if err := srv.Send(&hookstreamv1.TailResponse{Kind: &hookstreamv1.TailResponse_Heartbeat{Heartbeat: timestamppb.Now()}}); err != nil {
				return err
			}
			idle = time.Now()
		}
	}
}

func (s *Service) ordered(ctx context.Context, f *hookstreamv1.EventFilter, start *hookstreamv1.StartPosition, def hookstreamv1.StartPosition_Policy) (jetstream.Consumer, error) {
	subjects, err := eventlog.FilterSubjects(f)
	if err != nil {
		return nil, badRequest(err)
	}
	policy, seq, t, err := startPolicy(start, def)
	if err != nil {
		return nil, badRequest(err)
	}
	cons, err := s.js.OrderedConsumer(ctx, eventlog.EventsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects,
		DeliverPolicy:  policy,
		OptStartSeq:    seq,
		OptStartTime:   t,
	})
	if err != nil {
		return nil, consumerError(err)
	}
	return cons, nil
}

func decode(m jetstream.Msg) (*hookstreamv1.Event, error) {
	meta, err := m.Metadata()
	if err != nil {
		return nil, err
	}
	e := &hookstreamv1.Event{}
	if err := proto.Unmarshal(m.Data(), e); err != nil {
		return nil, err
	}
	e.Sequence = meta.Sequence.Stream
	return e, nil
}

// GetEvent implements hookstreamv1.EventServiceServer.
func (s *Service) GetEvent(ctx context.Context, req *hookstreamv1.GetEventRequest) (*hookstreamv1.GetEventResponse, error) {
	if err := s.validator.Validate(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, "id must be a UUID")
	}
	e, err := s.log.FindEvent(ctx, req.GetId())
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, status.Error(codes.NotFound, "no such event")
	case errors.Is(err, eventlog.ErrCorrupt):
		return nil, status.Error(codes.DataLoss, "stored event does not decode")
	case err != nil:
		return nil, status.Error(codes.Unavailable, "event log unavailable")
	}
	return &hookstreamv1.GetEventResponse{Event: e}, nil
}

// ListEvents implements hookstreamv1.EventServiceServer.
func (s *Service) ListEvents(ctx context.Context, req *hookstreamv1.ListEventsRequest) (*hookstreamv1.ListEventsResponse, error) {
	if err := s.validator.Validate(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	start := req.GetStart()
	if tok := req.GetPageToken(); tok != "" {
		seq, err := parsePageToken(tok)
		if err != nil {
			return nil, badRequest(err)
		}
		start = &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_SEQUENCE, Sequence: seq}
	}
	cons, err := s.ordered(ctx, req.GetFilter(), start, hookstreamv1.StartPosition_POLICY_ALL)
	if err != nil {
		return nil, err
	}
	batch, err := cons.FetchNoWait(size)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "event log unavailable")
	}
	resp := &hookstreamv1.ListEventsResponse{}
	var last uint64
	for m := range batch.Messages() {
		e, err := decode(m)
		if err != nil {
			continue
		}
		last = e.GetSequence()
		resp.Events = append(resp.Events, e)
	}
	if len(resp.Events) == size {
		resp.NextPageToken = pageToken(last + 1)
	}
	return resp, nil
}
