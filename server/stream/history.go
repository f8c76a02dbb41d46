package stream

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cloudevent"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/validate"
)

// defaultPageSize is the events of a ListEvents page when the request does not say.
const defaultPageSize = 100

// Tail implements hookstreamv1.EventServiceServer. Each message carries one event, so a message
// is never larger than the largest event. The tail's consumer is deleted when the call ends.
func (s *Service) Tail(req *hookstreamv1.TailRequest, srv hookstreamv1.EventService_TailServer) error {
	if err := validate.Request(req); err != nil {
		return err
	}
	subjects, err := eventlog.FilterSubjects(req.GetFilter())
	if err != nil {
		return logError(err)
	}
	release, err := s.admit(srv.Context(), "tail")
	if err != nil {
		return err
	}
	defer release()
	tail, err := s.log.OpenTail(srv.Context(), subjects, start(req.GetStart(), hookstreamv1.StartPosition_POLICY_NEW))
	if err != nil {
		return logError(err)
	}
	defer func() {
		if err := tail.Close(); err != nil {
			s.logger.Warn("tail's consumer not deleted, the log expires it", "err", err)
		}
	}()
	return s.tail(srv, tail, req.GetFormat() == hookstreamv1.EventFormat_EVENT_FORMAT_CLOUDEVENT)
}

// tail sends the tail's events, as CloudEvents when cloudEvents, and a heartbeat when it has been
// idle, until the call ends or the server drains.
func (s *Service) tail(srv hookstreamv1.EventService_TailServer, tail *eventlog.Tail, cloudEvents bool) error {
	ctx := srv.Context()
	idle := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.draining:
			return nil
		default:
		}
		batch, err := tail.Fetch(256, pollWait)
		if err != nil {
			return logError(err)
		}
		sent, err := s.forwardTail(ctx, srv, batch, cloudEvents)
		if err != nil {
			return err
		}
		if sent {
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

// forwardTail sends the events of one fetch as they arrive, as CloudEvents when cloudEvents, and
// stops at once when the call ends or the server drains. It reports whether it sent anything.
func (s *Service) forwardTail(ctx context.Context, srv hookstreamv1.EventService_TailServer, batch *eventlog.Batch, cloudEvents bool) (bool, error) {
	defer batch.Stop()
	sent := false
	for {
		select {
		case d, ok := <-batch.Deliveries():
			if !ok {
				return sent, nil
			}
			if d.Err != nil {
				s.logger.Error("undeliverable event", "sequence", d.Sequence, "err", d.Err)
				continue
			}
			m, err := tailMessage(d.Event, cloudEvents)
			if err != nil {
				s.logger.Error("event not converted to a cloudevent", "sequence", d.Sequence, "err", err)
				continue
			}
			if err := srv.Send(m); err != nil {
				return sent, err
			}
			sent = true
		case <-ctx.Done():
			return sent, nil
		case <-s.draining:
			return sent, nil
		}
	}
}

// tailMessage is the message of a Tail stream carrying e: the envelope, or the CloudEvent when
// cloudEvents.
func tailMessage(e *hookstreamv1.Event, cloudEvents bool) (*hookstreamv1.TailResponse, error) {
	if !cloudEvents {
		return &hookstreamv1.TailResponse{Kind: &hookstreamv1.TailResponse_Event{Event: e}}, nil
	}
	ce, err := cloudevent.New(e, 0)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.TailResponse{Kind: &hookstreamv1.TailResponse_CloudEvent{CloudEvent: ce}}, nil
}

// GetEvent implements hookstreamv1.EventServiceServer. The event is the envelope, or the
// CloudEvent when the request asks for EVENT_FORMAT_CLOUDEVENT.
func (s *Service) GetEvent(ctx context.Context, req *hookstreamv1.GetEventRequest) (*hookstreamv1.GetEventResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	e, err := s.log.FindEvent(ctx, req.GetId())
	if err != nil {
		return nil, logError(err)
	}
	if req.GetFormat() != hookstreamv1.EventFormat_EVENT_FORMAT_CLOUDEVENT {
		return &hookstreamv1.GetEventResponse{Event: e}, nil
	}
	ce, err := cloudevent.New(e, 0)
	if err != nil {
		s.logger.Error("event not converted to a cloudevent", "id", e.GetId(), "err", err)
		return nil, status.Error(codes.Internal, "the event could not be converted to a cloudevent")
	}
	return &hookstreamv1.GetEventResponse{CloudEvent: ce}, nil
}

// ListEvents implements hookstreamv1.EventServiceServer. A page holds at most page_size events
// and at most MaxResponseBytes of them (one event alone when it is larger); it is read with
// direct gets by sequence, so a listing creates no consumer and is complete.
func (s *Service) ListEvents(ctx context.Context, req *hookstreamv1.ListEventsRequest) (*hookstreamv1.ListEventsResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	subjects, err := eventlog.FilterSubjects(req.GetFilter())
	if err != nil {
		return nil, logError(err)
	}
	from, err := s.listFrom(ctx, req)
	if err != nil || from == 0 {
		return &hookstreamv1.ListEventsResponse{}, err
	}
	events, next, err := s.log.ListEvents(ctx, subjects, from, size, s.responseBytes)
	if err != nil {
		return nil, logError(err)
	}
	resp := &hookstreamv1.ListEventsResponse{Events: events}
	if next != 0 {
		resp.NextPageToken = pageToken(next)
	}
	return resp, nil
}

// listFrom is the first sequence a listing reads: the page token's, else the start position's;
// 0 when there is nothing to read (POLICY_NEW, or a time after the last event).
func (s *Service) listFrom(ctx context.Context, req *hookstreamv1.ListEventsRequest) (uint64, error) {
	if tok := req.GetPageToken(); tok != "" {
		seq, err := parsePageToken(tok)
		if err != nil {
			return 0, logError(err)
		}
		return seq, nil
	}
	st := start(req.GetStart(), hookstreamv1.StartPosition_POLICY_ALL)
	switch st.Policy {
	case hookstreamv1.StartPosition_POLICY_ALL:
		return 1, nil
	case hookstreamv1.StartPosition_POLICY_NEW:
		return 0, nil
	case hookstreamv1.StartPosition_POLICY_SEQUENCE:
		if st.Sequence == 0 {
			return 0, logError(eventlog.ErrBadFilter)
		}
		return st.Sequence, nil
	case hookstreamv1.StartPosition_POLICY_TIME:
		seq, err := s.log.SequenceAt(ctx, st.Time)
		if err != nil {
			return 0, logError(err)
		}
		return seq, nil
	}
	return 0, logError(eventlog.ErrBadFilter)
}
