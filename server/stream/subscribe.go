package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cloudevent"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/validate"
)

// subscription is one Subscribe stream.
type subscription struct {
	s             *Service
	consumer      *eventlog.Consumer
	group         string
	ackDeadline   time.Duration
	maxInFlight   int
	maxDeliveries int
	// cloudEvents says the stream delivers CloudEvents instead of envelopes.
	cloudEvents bool

	m groupMetrics

	mu       sync.Mutex
	inFlight map[string]held
	credit   chan struct{} // signalled when in-flight events are settled
}

// held is an event sent to the client and not settled yet.
type held struct {
	d    *eventlog.Delivery
	sent time.Time
}

func (s *Service) newSubscription(ctx context.Context, open *hookstreamv1.SubscribeRequest_Open) (*subscription, error) {
	subjects, err := eventlog.FilterSubjects(open.GetFilter())
	if err != nil {
		return nil, logError(err)
	}
	cc := eventlog.ConsumerConfig{
		Subjects:      subjects,
		Start:         start(open.GetStart(), hookstreamv1.StartPosition_POLICY_NEW),
		AckWait:       DefaultAckDeadline,
		MaxDeliveries: DefaultMaxDeliveries,
	}
	if d := open.GetAckDeadline(); d != nil {
		cc.AckWait = d.AsDuration()
	}
	if n := open.GetMaxDeliveries(); n > 0 {
		cc.MaxDeliveries = int(n)
	}
	sub := &subscription{
		s: s, maxInFlight: DefaultMaxInFlight, inFlight: map[string]held{}, credit: make(chan struct{}, 1),
		cloudEvents: open.GetFormat() == hookstreamv1.EventFormat_EVENT_FORMAT_CLOUDEVENT,
	}
	if n := open.GetMaxInFlight(); n > 0 {
		sub.maxInFlight = int(n)
	}
	if open.GetGroup() == "" {
		sub.consumer, err = s.log.OpenEphemeral(ctx, cc)
	} else {
		sub.consumer, err = s.log.OpenGroup(ctx, open.GetGroup(), cc)
	}
	if errors.Is(err, eventlog.ErrTooManyGroups) || errors.Is(err, eventlog.ErrTooManyConsumers) {
		s.logger.Warn("subscription refused: limit reached", "group", open.GetGroup(), "principal", principalOf(ctx), "reason", err.Error())
	}
	if err != nil {
		return nil, logError(err)
	}
	sub.group = open.GetGroup()
	sub.m = s.metrics.group(sub.group)
	if sub.group == "" {
		sub.group = sub.consumer.Name()
	}
	sub.ackDeadline, sub.maxDeliveries = sub.consumer.Config.AckWait, sub.consumer.Config.MaxDeliveries
	return sub, nil
}

func (sub *subscription) close() {
	// Release what this stream still holds, so only its events are redelivered, and soon: once
	// the stream's last fetch is over (the server would deliver them to it again before).
	sub.mu.Lock()
	for _, h := range sub.inFlight {
		h.d.Nak(pollWait)
	}
	sub.inFlight = nil
	sub.mu.Unlock()
	if err := sub.consumer.Close(); err != nil {
		sub.s.logger.Warn("subscription's consumer not deleted, the log expires it", "group", sub.group, "err", err)
	}
}

// run serves the stream until ctx (the stream's) ends: one goroutine sends (the only one that may), one applies the client's
// settle requests, and this one pulls events as credit allows.
func (sub *subscription) run(ctx context.Context, srv hookstreamv1.EventService_SubscribeServer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan *hookstreamv1.SubscribeResponse, 4)
	sendErr := make(chan error, 1)
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
	return sub.pullLoop(ctx, send, sendErr, recvErr)
}

// pullLoop pulls events while the stream has credit, and sends a heartbeat when it has been idle
// for the heartbeat interval, until the stream ends or the server drains.
func (sub *subscription) pullLoop(ctx context.Context, send func(*hookstreamv1.SubscribeResponse) bool, sendErr, recvErr chan error) error {
	idle := time.Now()
	for {
		select {
		case <-ctx.Done():
			return endErr(sendErr, recvErr)
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
		sent := false
		if credit := sub.credits(); credit == 0 {
			select {
			case <-sub.credit:
			case <-time.After(pollWait):
			case <-ctx.Done():
			case <-sub.s.draining:
			}
		} else {
			var err error
			if sent, err = sub.pull(ctx, credit, send); err != nil {
				return err
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

// pull fetches up to credit events and sends them. Each event goes to the client as soon as it
// arrives, with whatever else has arrived by then (an event held in a buffer would spend its ack
// deadline there), in messages of at most maxEventsPerMessage events and MaxResponseBytes bytes
// (an event larger than that alone). It reports whether it sent anything.
func (sub *subscription) pull(ctx context.Context, credit int, send func(*hookstreamv1.SubscribeResponse) bool) (bool, error) {
	batch, err := sub.consumer.Fetch(credit, pollWait)
	if err == nil {
		sent := sub.forward(ctx, batch, send)
		if ctx.Err() != nil {
			return sent, nil // the stream ends: what the batch still holds is released
		}
		if err = batch.Err(); err == nil {
			return sent, nil
		}
	}
	if errors.Is(err, eventlog.ErrConsumerGone) {
		// Fetching again cannot help: end the stream, and the client opens it again.
		sub.s.logger.Warn("subscription's consumer is gone, ending the stream", "group", sub.group, "err", err)
		return false, status.Error(codes.Unavailable, "the subscription ended, subscribe again")
	}
	sub.s.logger.Warn("fetch failed", "group", sub.group, "err", err)
	select {
	case <-time.After(pollWait):
	case <-ctx.Done():
	}
	return false, nil
}

// forward sends the deliveries of one fetch, packed as pull says, and reports whether it sent
// anything. It stops at once when the stream ends, releasing the events it did not take.
func (sub *subscription) forward(ctx context.Context, batch *eventlog.Batch, send func(*hookstreamv1.SubscribeResponse) bool) bool {
	defer batch.Stop()
	deliveries := batch.Deliveries()
	sent := false
	var events []*hookstreamv1.ReceivedEvent
	size := 0
	flush := func() {
		if len(events) > 0 {
			send(eventsResponse(events))
			sent, events, size = true, nil, 0
		}
	}
	add := func(d *eventlog.Delivery) {
		ev := sub.deliver(ctx, d)
		if ev == nil {
			return
		}
		if len(events) > 0 && (len(events) == maxEventsPerMessage || size+d.Size > sub.s.responseBytes) {
			flush()
		}
		events = append(events, ev)
		size += d.Size
	}
	for {
		var d *eventlog.Delivery
		select {
		case d = <-deliveries:
		case <-ctx.Done():
			return sent
		}
		if d == nil {
			return sent // the fetch ended
		}
		add(d)
	more:
		for {
			select {
			case d, ok := <-deliveries:
				if !ok {
					break more
				}
				add(d)
			default:
				break more
			}
		}
		flush()
	}
}

func endErr(sendErr, recvErr chan error) error {
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

// deliver turns a pulled event into a delivery, or dead-letters it when it has been delivered
// maxDeliveries times already.
func (sub *subscription) deliver(ctx context.Context, d *eventlog.Delivery) *hookstreamv1.ReceivedEvent {
	if d.Err != nil {
		sub.s.logger.Error("undeliverable event", "sequence", d.Sequence, "err", d.Err)
		d.Term()
		return nil
	}
	if d.Attempt > sub.maxDeliveries {
		if err := sub.deadLetter(ctx, d.Event, d.Attempt-1); err != nil {
			// Not lost: it stays in the group and is tried again later.
			sub.s.logger.Error("dead letter not quarantined, redelivered later", "sequence", d.Sequence, "err", err)
			d.Nak(maxNackBackoff)
			return nil
		}
		sub.m.deadLetters.Inc()
		d.Term()
		return nil
	}
	ev := &hookstreamv1.ReceivedEvent{Event: d.Event, DeliveryAttempt: uint32(d.Attempt)}
	if sub.cloudEvents {
		ce, err := cloudevent.New(d.Event, ev.DeliveryAttempt)
		if err != nil {
			// Not lost: another stream of the group, or this one later, may take it.
			sub.s.logger.Error("event not converted to a cloudevent, redelivered later", "sequence", d.Sequence, "err", err)
			d.Nak(maxNackBackoff)
			return nil
		}
		ev.Event, ev.CloudEvent = nil, ce
	}
	if d.Attempt > 1 {
		sub.m.redeliveries.Inc()
	}
	ev.AckId = fmt.Sprintf("%d.%d", d.Sequence, d.Attempt)
	sub.mu.Lock()
	sub.inFlight[ev.AckId] = held{d: d, sent: time.Now()}
	sub.mu.Unlock()
	return ev
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
		if err := validate.Request(req); err != nil {
			return err
		}
		for _, id := range settle.GetAckIds() {
			if h, ok := sub.take(id); ok {
				h.d.Ack()
				sub.m.ack.Observe(time.Since(h.sent).Seconds())
			}
		}
		for _, n := range settle.GetNacks() {
			if h, ok := sub.take(n.GetAckId()); ok {
				d := h.d
				delay := n.GetDelay().AsDuration()
				if delay <= 0 {
					delay = backoff(d.Attempt)
				}
				d.Nak(delay)
			}
		}
		for _, id := range settle.GetExtendAckIds() {
			sub.mu.Lock()
			h, ok := sub.inFlight[id]
			sub.mu.Unlock()
			if ok {
				h.d.InProgress()
			}
		}
		select {
		case sub.credit <- struct{}{}:
		default:
		}
	}
}

func (sub *subscription) take(ackID string) (held, bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	h, ok := sub.inFlight[ackID]
	delete(sub.inFlight, ackID)
	return h, ok
}

// backoff is the redelivery delay of a nack without one: 1 s after the first delivery, doubling
// with each, at most maxNackBackoff.
func backoff(attempt int) time.Duration {
	d := time.Second << min(max(attempt, 1)-1, 20)
	return min(d, maxNackBackoff)
}
