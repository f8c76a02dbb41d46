package stream

import (
	"context"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
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
	for _, g := range groups {
		pg := &hookstreamv1.Group{
			Name:                 g.Name,
			CreatedAt:            timestamppb.New(g.Created),
			PendingEvents:        g.Pending,
			UnacknowledgedEvents: g.Unacknowledged,
		}
		if !g.LastDelivered.IsZero() {
			pg.LastDeliveredAt = timestamppb.New(g.LastDelivered)
		}
		if g.IdleExpiry > 0 {
			pg.IdleExpiry = durationpb.New(g.IdleExpiry)
		}
		resp.Groups = append(resp.Groups, pg)
	}
	if more {
		resp.NextPageToken = groups[len(groups)-1].Name
	}
	return resp, nil
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
