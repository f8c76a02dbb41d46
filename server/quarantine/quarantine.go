// Package quarantine implements QuarantineService over the quarantine stream of the event log:
// listing and reading the authentic payloads hookstream rejected and the dead letters of consumer
// groups, and redriving them: rejected payloads through the ingestion core, dead letters back to
// their group.
package quarantine

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/ingest"
	"github.com/hookstream/hookstream/server/validate"
)

// Service implements hookstreamv1.QuarantineServiceServer. It is safe for concurrent use.
type Service struct {
	hookstreamv1.UnimplementedQuarantineServiceServer
	log    *eventlog.Log
	ingest *ingest.Service
	logger *slog.Logger
	// maxPageBytes bounds a page of ListEntries.
	maxPageBytes int
}

// defaultPageSize is the entries of a ListEntries page when the request does not say.
const defaultPageSize = 100

// New returns a Service reading log's quarantine and redriving through in. Pages of ListEntries
// hold at most maxPageBytes of entries (grpc.max_response_bytes).
func New(log *eventlog.Log, in *ingest.Service, maxPageBytes int, logger *slog.Logger) (*Service, error) {
	if log == nil || in == nil || maxPageBytes <= 0 {
		return nil, errors.New("quarantine: a log, an ingestion core and a positive page size are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{log: log, ingest: in, maxPageBytes: maxPageBytes, logger: logger}, nil
}

// ListEntries implements hookstreamv1.QuarantineServiceServer. A page holds at most page_size
// entries and at most maxPageBytes of them (one entry alone when it is larger); it is read with
// direct gets by sequence, so a listing creates no consumer.
func (s *Service) ListEntries(ctx context.Context, req *hookstreamv1.ListEntriesRequest) (*hookstreamv1.ListEntriesResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	from := uint64(1)
	if tok := req.GetPageToken(); tok != "" {
		seq, err := strconv.ParseUint(strings.TrimPrefix(tok, "q"), 10, 64)
		if err != nil || !strings.HasPrefix(tok, "q") || seq == 0 {
			return nil, status.Error(codes.InvalidArgument, "bad page token")
		}
		from = seq
	}
	entries, next, err := s.log.ListEntries(ctx, eventlog.EntrySubject(req.GetProvider(), req.GetReason()), from, size, s.maxPageBytes)
	switch {
	case errors.Is(err, eventlog.ErrCorrupt):
		return nil, status.Error(codes.DataLoss, "a stored entry does not decode")
	case err != nil:
		return nil, status.Error(codes.Unavailable, "event log unavailable, retry later")
	}
	resp := &hookstreamv1.ListEntriesResponse{Entries: entries}
	if next != 0 {
		resp.NextPageToken = "q" + strconv.FormatUint(next, 10)
	}
	return resp, nil
}

// GetEntry implements hookstreamv1.QuarantineServiceServer.
func (s *Service) GetEntry(ctx context.Context, req *hookstreamv1.GetEntryRequest) (*hookstreamv1.GetEntryResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	entry, _, err := s.find(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.GetEntryResponse{Entry: entry}, nil
}

func (s *Service) find(ctx context.Context, id string) (*hookstreamv1.QuarantineEntry, uint64, error) {
	entry, seq, err := s.log.FindEntry(ctx, id)
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, 0, status.Error(codes.NotFound, "no such entry")
	case errors.Is(err, eventlog.ErrCorrupt):
		return nil, 0, status.Error(codes.DataLoss, "stored entry does not decode")
	case err != nil:
		return nil, 0, status.Error(codes.Unavailable, "event log unavailable")
	}
	return entry, seq, nil
}

// RedriveEntry implements hookstreamv1.QuarantineServiceServer. A rejected payload goes through
// the ingestion core again, exactly as it came from its provider (ingest.Redelivery, which tells
// the core not to quarantine what it still rejects); a dead letter goes back to the consumer
// group that gave it up, and to no other (eventlog.Log.Redrive): the same event, with its id and
// sequence. On success the entry leaves the quarantine and is answered with redriven_at and its
// receipts; when the payload is still rejected, or the dead letter's group no longer exists or
// no longer selects the event, the error is returned and the quarantine is left as it was.
func (s *Service) RedriveEntry(ctx context.Context, req *hookstreamv1.RedriveEntryRequest) (*hookstreamv1.RedriveEntryResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	entry, seq, err := s.find(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	var receipts []*hookstreamv1.Receipt
	if entry.GetReason() == hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER {
		receipts, err = s.redriveDeadLetter(ctx, entry)
	} else {
		receipts, err = s.ingest.Ingest(ctx, ingest.Redelivery(entry))
	}
	if err != nil {
		return nil, err
	}
	for _, r := range receipts {
		if r.GetOutcome() == hookstreamv1.Receipt_OUTCOME_QUARANTINED {
			return nil, status.Errorf(codes.InvalidArgument, "still rejected: %s", violationText(r))
		}
	}
	if err := s.log.DeleteEntry(ctx, seq); err != nil {
		// Stored again but still listed: a second redrive is answered as a duplicate.
		s.logger.Warn("redriven entry not removed", "id", entry.GetId(), "err", err)
	}
	entry.RedrivenAt = timestamppb.Now()
	entry.RedriveReceipts = receipts
	return &hookstreamv1.RedriveEntryResponse{Entry: entry, Receipts: receipts}, nil
}

// redriveDeadLetter sends a dead letter back to its group and returns the receipt of its event:
// its own id and sequence, a duplicate when the entry was redriven already.
func (s *Service) redriveDeadLetter(ctx context.Context, entry *hookstreamv1.QuarantineEntry) ([]*hookstreamv1.Receipt, error) {
	res, err := s.log.Redrive(ctx, entry)
	switch {
	case errors.Is(err, eventlog.ErrNotDeadLetter):
		return nil, status.Error(codes.FailedPrecondition, "the entry holds no event")
	case errors.Is(err, eventlog.ErrGroupNotFound):
		return nil, status.Errorf(codes.FailedPrecondition, "consumer group %q no longer exists: the dead letter stays in the quarantine", entry.GetConsumerGroup())
	case errors.Is(err, eventlog.ErrGroupMismatch):
		return nil, status.Errorf(codes.FailedPrecondition, "consumer group %q no longer selects this event (made again with another filter): the dead letter stays in the quarantine", entry.GetConsumerGroup())
	case errors.Is(err, eventlog.ErrTooLarge):
		// The entry fitted, and its event alone is smaller: a defect, not the caller's fault.
		s.logger.Error("dead letter too large to redrive", "id", entry.GetId(), "err", err)
		return nil, status.Error(codes.Internal, "the dead letter does not fit the event log")
	case err != nil:
		s.logger.Warn("dead letter not redriven", "id", entry.GetId(), "err", err)
		return nil, status.Error(codes.Unavailable, "event log unavailable, retry later")
	}
	r := &hookstreamv1.Receipt{EventId: entry.GetEvent().GetId(), Sequence: entry.GetEvent().GetSequence(), Outcome: hookstreamv1.Receipt_OUTCOME_STORED}
	if res.Duplicate {
		r.Duplicate, r.Outcome = true, hookstreamv1.Receipt_OUTCOME_DUPLICATE
	}
	return []*hookstreamv1.Receipt{r}, nil
}

// DeleteEntry implements hookstreamv1.QuarantineServiceServer.
func (s *Service) DeleteEntry(ctx context.Context, req *hookstreamv1.DeleteEntryRequest) (*hookstreamv1.DeleteEntryResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	entry, seq, err := s.find(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.log.DeleteEntry(ctx, seq); err != nil {
		return nil, status.Error(codes.Unavailable, "event log unavailable, retry later")
	}
	return &hookstreamv1.DeleteEntryResponse{Entry: entry}, nil
}

// PurgeEntries implements hookstreamv1.QuarantineServiceServer. On an error part of the
// matching entries may be removed already; purging again removes the rest.
func (s *Service) PurgeEntries(ctx context.Context, req *hookstreamv1.PurgeEntriesRequest) (*hookstreamv1.PurgeEntriesResponse, error) {
	if err := validate.Request(req); err != nil {
		return nil, err
	}
	var before time.Time
	if req.GetQuarantinedBefore() != nil {
		before = req.GetQuarantinedBefore().AsTime()
	}
	n, err := s.log.PurgeEntries(ctx, eventlog.EntrySubject(req.GetProvider(), req.GetReason()), before)
	if err != nil {
		s.logger.Warn("purge stopped", "purged", n, "err", err)
		return nil, status.Error(codes.Unavailable, "event log unavailable, retry later")
	}
	return &hookstreamv1.PurgeEntriesResponse{Purged: n}, nil
}

// violationText names a quarantined receipt's first violation, for the redrive's answer.
func violationText(r *hookstreamv1.Receipt) string {
	if len(r.GetViolations()) == 0 {
		return "quarantined again"
	}
	v := r.GetViolations()[0]
	return v.GetField() + ": " + v.GetRule() + ": " + v.GetMessage()
}
