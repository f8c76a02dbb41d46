package stream

import (
	"context"
	"errors"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/validate"
)

// defaultGroupsPageSize is the groups of a ListGroups page when the request does not say.
const defaultGroupsPageSize = 100

// ListGroups implements hookstreamv1.EventServiceServer. The page token is the name of the last
// group of the previous page.
func (s *Service) ListGroups(ctx context.Context, req *hookstreamv1.ListGroupsRequest) (*hookstreamv1.ListGroupsResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultGroupsPageSize
	}
	groups, more, err := s.log.Groups(ctx, req.GetPageToken(), size)
	if err != nil {
		return nil, logError(err)
	}
	resp := &hookstreamv1.ListGroupsResponse{}
	if resp.Groups, err = s.groupMessages(ctx, groups...); err != nil {
		return nil, err
	}
	if more {
		resp.NextPageToken = groups[len(groups)-1].Name
	}
	return resp, nil
}

// groupMessages turns groups into their messages, with their dead letters counted.
func (s *Service) groupMessages(ctx context.Context, groups ...eventlog.Group) ([]*hookstreamv1.Group, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	dead, err := s.log.DeadLetters(ctx)
	if err != nil {
		return nil, logError(err)
	}
	out := make([]*hookstreamv1.Group, len(groups))
	for i, g := range groups {
		pg := &hookstreamv1.Group{
			Name:                 g.Name,
			CreatedAt:            timestamppb.New(g.Created),
			PendingEvents:        g.Pending,
			UnacknowledgedEvents: g.Unacknowledged,
			RedeliveredEvents:    g.Redelivered,
			DeadLetters:          dead[g.Name],
			Paused:               g.Paused,
			AckDeadline:          durationpb.New(g.AckWait),
			MaxDeliveries:        uint32(g.MaxDeliveries),
			DeliveredSequence:    g.Delivered,
			AckFloorSequence:     g.AckFloor,
		}
		if !g.LastDelivered.IsZero() {
			pg.LastDeliveredAt = timestamppb.New(g.LastDelivered)
		}
		if g.IdleExpiry > 0 {
			pg.IdleExpiry = durationpb.New(g.IdleExpiry)
		}
		if !g.PausedUntil.IsZero() {
			pg.PausedUntil = timestamppb.New(g.PausedUntil)
		}
		out[i] = pg
	}
	return out, nil
}

// groupMessage is groupMessages for one group, or the status of err, the error of the call that
// returned g.
func (s *Service) groupMessage(ctx context.Context, g eventlog.Group, err error) (*hookstreamv1.Group, error) {
	if err != nil {
		return nil, logError(err)
	}
	out, err := s.groupMessages(ctx, g)
	if err != nil {
		return nil, err
	}
	return out[0], nil
}

// GetGroup implements hookstreamv1.EventServiceServer.
func (s *Service) GetGroup(ctx context.Context, req *hookstreamv1.GetGroupRequest) (*hookstreamv1.GetGroupResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	g, err := s.log.Group(ctx, req.GetName())
	pg, err := s.groupMessage(ctx, g, err)
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.GetGroupResponse{Group: pg}, nil
}

// DeleteGroup implements hookstreamv1.EventServiceServer.
func (s *Service) DeleteGroup(ctx context.Context, req *hookstreamv1.DeleteGroupRequest) (*hookstreamv1.DeleteGroupResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	if err := s.log.DeleteGroup(ctx, req.GetName()); err != nil {
		return nil, logError(err)
	}
	s.metrics.forget(req.GetName())
	s.logger.Info("consumer group deleted", "group", req.GetName(), "principal", principalOf(ctx))
	return &hookstreamv1.DeleteGroupResponse{}, nil
}

// ResetGroup implements hookstreamv1.EventServiceServer. The group's streams in this process
// end with ABORTED (errGroupReset) and release their events before its consumer is replaced;
// streams of the group opened meanwhile wait for the reset to finish.
func (s *Service) ResetGroup(ctx context.Context, req *hookstreamv1.ResetGroupRequest) (*hookstreamv1.ResetGroupResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	if req.GetPosition().GetPolicy() == hookstreamv1.StartPosition_POLICY_UNSPECIFIED {
		return nil, status.Error(codes.InvalidArgument, "position.policy is required")
	}
	release, err := s.groups.stop(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	defer release()
	g, err := s.log.ResetGroup(ctx, req.GetName(), start(req.GetPosition(), hookstreamv1.StartPosition_POLICY_UNSPECIFIED))
	pg, err := s.groupMessage(ctx, g, err)
	if err != nil {
		return nil, err
	}
	s.logger.Info("consumer group reset", "group", req.GetName(), "policy", req.GetPosition().GetPolicy().String(), "principal", principalOf(ctx))
	return &hookstreamv1.ResetGroupResponse{Group: pg}, nil
}

// PauseGroup implements hookstreamv1.EventServiceServer.
func (s *Service) PauseGroup(ctx context.Context, req *hookstreamv1.PauseGroupRequest) (*hookstreamv1.PauseGroupResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	var until time.Time
	if req.GetUntil() != nil {
		until = req.GetUntil().AsTime()
	}
	g, err := s.log.PauseGroup(ctx, req.GetName(), until)
	pg, err := s.groupMessage(ctx, g, err)
	if err != nil {
		return nil, err
	}
	s.logger.Info("consumer group paused", "group", req.GetName(), "until", until, "principal", principalOf(ctx))
	return &hookstreamv1.PauseGroupResponse{Group: pg}, nil
}

// ResumeGroup implements hookstreamv1.EventServiceServer.
func (s *Service) ResumeGroup(ctx context.Context, req *hookstreamv1.ResumeGroupRequest) (*hookstreamv1.ResumeGroupResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	g, err := s.log.ResumeGroup(ctx, req.GetName())
	pg, err := s.groupMessage(ctx, g, err)
	if err != nil {
		return nil, err
	}
	s.logger.Info("consumer group resumed", "group", req.GetName(), "principal", principalOf(ctx))
	return &hookstreamv1.ResumeGroupResponse{Group: pg}, nil
}

// errGroupReset is the cause that ends the streams of a group being reset.
var errGroupReset = errors.New("consumer group reset")

// resetOr is err, or the status a stream ended by a reset of its group ends with.
func resetOr(ctx context.Context, err error) error {
	if errors.Is(context.Cause(ctx), errGroupReset) {
		return status.Error(codes.Aborted, "the consumer group was reset: subscribe again to read from its new position")
	}
	return err
}

// groupStreams tracks the open Subscribe streams of each group in this process, so that a reset
// can end them before it replaces the group's consumer, and holds new ones back meanwhile. It is
// safe for concurrent use.
type groupStreams struct {
	mu        sync.Mutex
	open      map[string]map[*groupStream]struct{}
	resetting map[string]chan struct{} // closed when the group's reset is over
}

// groupStream is one open stream of a group.
type groupStream struct {
	cancel context.CancelCauseFunc
	done   chan struct{} // closed once the stream has released its events
}

func newGroupStreams() *groupStreams {
	return &groupStreams{open: map[string]map[*groupStream]struct{}{}, resetting: map[string]chan struct{}{}}
}

// lockIdle locks g once no reset of group is in progress, or returns ctx's status.
func (g *groupStreams) lockIdle(ctx context.Context, group string) error {
	for {
		g.mu.Lock()
		wait, busy := g.resetting[group]
		if !busy {
			return nil
		}
		g.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// join registers a stream of group, once any reset of it is over. It returns the stream's
// context, which a reset ends with the cause errGroupReset, and left, to call once the stream has
// ended and released its events.
func (g *groupStreams) join(ctx context.Context, group string) (_ context.Context, left func(), _ error) {
	if err := g.lockIdle(ctx, group); err != nil {
		return nil, nil, err
	}
	defer g.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	gs := &groupStream{cancel: cancel, done: make(chan struct{})}
	if g.open[group] == nil {
		g.open[group] = map[*groupStream]struct{}{}
	}
	g.open[group][gs] = struct{}{}
	return ctx, func() {
		g.mu.Lock()
		delete(g.open[group], gs)
		if len(g.open[group]) == 0 {
			delete(g.open, group)
		}
		g.mu.Unlock()
		cancel(nil)
		close(gs.done)
	}, nil
}

// stop ends the streams of group with errGroupReset and waits until they have released their
// events (or ctx ends: its status), holding new streams of the group back until release.
func (g *groupStreams) stop(ctx context.Context, group string) (release func(), _ error) {
	if err := g.lockIdle(ctx, group); err != nil {
		return nil, err
	}
	over := make(chan struct{})
	g.resetting[group] = over
	var streams []*groupStream
	for gs := range g.open[group] {
		streams = append(streams, gs)
	}
	g.mu.Unlock()
	release = func() {
		g.mu.Lock()
		delete(g.resetting, group)
		g.mu.Unlock()
		close(over)
	}
	for _, gs := range streams {
		gs.cancel(errGroupReset)
	}
	for _, gs := range streams {
		select {
		case <-gs.done:
		case <-ctx.Done():
			release()
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	return release, nil
}
