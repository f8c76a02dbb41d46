// Package quarantine implements QuarantineService over the quarantine stream of the event log:
// listing and reading the authentic payloads hookstream rejected and the dead letters of consumer
// groups, and redriving them through the ingestion core.
package quarantine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"buf.build/go/protovalidate"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	moveapiv1 "github.com/hookstream/hookstream/gen/hookstream/moveapi/v1"
	movementv1 "github.com/hookstream/hookstream/gen/hookstream/movement/v1"
	mvmntv1 "github.com/hookstream/hookstream/gen/hookstream/mvmnt/v1"
	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/convert"
	"github.com/hookstream/hookstream/server/eventlog"
	"github.com/hookstream/hookstream/server/ingest"
)

// Service implements hookstreamv1.QuarantineServiceServer. It is safe for concurrent use.
type Service struct {
	hookstreamv1.UnimplementedQuarantineServiceServer
	log       *eventlog.Log
	ingest    *ingest.Service
	validator protovalidate.Validator
	logger    *slog.Logger
}

// New returns a Service reading log's quarantine and redriving through in.
func New(log *eventlog.Log, in *ingest.Service, logger *slog.Logger) (*Service, error) {
	v, err := protovalidate.New()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{log: log, ingest: in, validator: v, logger: logger}, nil
}

// ListEntries implements hookstreamv1.QuarantineServiceServer.
func (s *Service) ListEntries(ctx context.Context, req *hookstreamv1.ListEntriesRequest) (*hookstreamv1.ListEntriesResponse, error) {
	if err := s.validator.Validate(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	provider, reason := "*", "*"
	if p := req.GetProvider(); p != hookstreamv1.Provider_PROVIDER_UNSPECIFIED {
		provider = strings.ToLower(strings.TrimPrefix(p.String(), "PROVIDER_"))
	}
	if r := req.GetReason(); r != hookstreamv1.QuarantineEntry_REASON_UNSPECIFIED {
		reason = ingest.ReasonToken(r)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{eventlog.QuarantineSubjectPrefix + "." + provider + "." + reason},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if tok := req.GetPageToken(); tok != "" {
		seq, err := strconv.ParseUint(strings.TrimPrefix(tok, "q"), 10, 64)
		if err != nil || !strings.HasPrefix(tok, "q") || seq == 0 {
			return nil, status.Error(codes.InvalidArgument, "bad page token")
		}
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq
	}
	cons, err := s.log.JetStream().OrderedConsumer(ctx, eventlog.QuarantineStream, cfg)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "event log unavailable")
	}
	batch, err := cons.FetchNoWait(size)
	if err != nil {
		return nil, status.Error(codes.Unavailable, "event log unavailable")
	}
	resp := &hookstreamv1.ListEntriesResponse{}
	var last uint64
	for m := range batch.Messages() {
		entry := &hookstreamv1.QuarantineEntry{}
		if err := proto.Unmarshal(m.Data(), entry); err != nil {
			continue
		}
		if meta, err := m.Metadata(); err == nil {
			last = meta.Sequence.Stream
		}
		resp.Entries = append(resp.Entries, entry)
	}
	if len(resp.Entries) == size {
		resp.NextPageToken = "q" + strconv.FormatUint(last+1, 10)
	}
	return resp, nil
}

// GetEntry implements hookstreamv1.QuarantineServiceServer.
func (s *Service) GetEntry(ctx context.Context, req *hookstreamv1.GetEntryRequest) (*hookstreamv1.GetEntryResponse, error) {
	if err := s.validator.Validate(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, "id must be a UUID")
	}
	entry, _, err := s.find(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return &hookstreamv1.GetEntryResponse{Entry: entry}, nil
}

func (s *Service) find(ctx context.Context, id string) (*hookstreamv1.QuarantineEntry, uint64, error) {
	m, err := s.log.Find(ctx, eventlog.QuarantineStream, id)
	switch {
	case errors.Is(err, eventlog.ErrNotFound):
		return nil, 0, status.Error(codes.NotFound, "no such entry")
	case err != nil:
		return nil, 0, status.Error(codes.Unavailable, "event log unavailable")
	}
	entry := &hookstreamv1.QuarantineEntry{}
	if err := proto.Unmarshal(m.Data, entry); err != nil {
		return nil, 0, status.Error(codes.DataLoss, "stored entry does not decode")
	}
	return entry, m.Sequence, nil
}

// RedriveEntry implements hookstreamv1.QuarantineServiceServer. A rejected payload goes through
// the ingestion core again, as it would from its provider; a dead letter is stored again as a new
// event (with its own id and the dedup key "redrive:<entry id>"), so it reaches every group whose
// filter matches, its own included. On success the entry leaves the quarantine.
func (s *Service) RedriveEntry(ctx context.Context, req *hookstreamv1.RedriveEntryRequest) (*hookstreamv1.RedriveEntryResponse, error) {
	if err := s.validator.Validate(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, "id must be a UUID")
	}
	entry, seq, err := s.find(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	receipts, err := s.redrive(ctx, entry)
	if err != nil {
		return nil, err
	}
	if err := s.deleteMsg(ctx, seq); err != nil {
		// Stored again but still listed: a second redrive is answered as a duplicate.
		s.logger.Warn("redriven entry not removed", "id", entry.GetId(), "err", err)
	}
	entry.RedrivenAt = timestamppb.Now()
	entry.RedriveReceipts = receipts
	return &hookstreamv1.RedriveEntryResponse{Entry: entry, Receipts: receipts}, nil
}

func (s *Service) redrive(ctx context.Context, entry *hookstreamv1.QuarantineEntry) ([]*hookstreamv1.Receipt, error) {
	h := entry.GetHeaders()
	ctx = ingest.NewContext(ctx, ingest.Delivery{
		Raw:        entry.GetRaw(),
		Source:     entry.GetSource(),
		RequestID:  entry.GetRequestId(),
		Headers:    h,
		ReceivedAt: entry.GetReceivedAt().AsTime(),
	})
	malformed := func(err error) error {
		return status.Errorf(codes.InvalidArgument, "still malformed: %v", errors.Unwrap(err))
	}
	if entry.GetReason() == hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER {
		return s.ingest.Restore(ctx, entry.GetEvent(), "redrive:"+entry.GetId())
	}
	switch entry.GetProvider() {
	case hookstreamv1.Provider_PROVIDER_MOVEAPI:
		req := &hookstreamv1.ReceiveMoveApiWebhookRequest{Webhook: &moveapiv1.Webhook{}, WebhookId: h[ingest.HeaderWebhookID]}
		if err := convert.Unmarshal(entry.GetRaw(), req.Webhook); err != nil {
			return nil, malformed(err)
		}
		resp, err := s.ingest.ReceiveMoveApiWebhook(ctx, req)
		return []*hookstreamv1.Receipt{resp.GetReceipt()}, err
	case hookstreamv1.Provider_PROVIDER_MOVEMENT:
		req := &hookstreamv1.ReceiveMovementWebhookRequest{Webhook: &movementv1.Webhook{}}
		if err := convert.Unmarshal(entry.GetRaw(), req.Webhook); err != nil {
			return nil, malformed(err)
		}
		resp, err := s.ingest.ReceiveMovementWebhook(ctx, req)
		return []*hookstreamv1.Receipt{resp.GetReceipt()}, err
	case hookstreamv1.Provider_PROVIDER_MVMNT:
		req := &hookstreamv1.ReceiveMvmntDeliveryRequest{Delivery: &mvmntv1.Delivery{}}
		if err := convert.Unmarshal(entry.GetRaw(), req.Delivery); err != nil {
			return nil, malformed(err)
		}
		resp, err := s.ingest.ReceiveMvmntDelivery(ctx, req)
		return resp.GetReceipts(), err
	case hookstreamv1.Provider_PROVIDER_LISTENER:
		req := &hookstreamv1.NotifyListenerRequest{ListenerId: h[ingest.HeaderListenerID], Body: &structpb.Struct{}, DedupId: h[ingest.HeaderDedupID]}
		if err := convert.Unmarshal(entry.GetRaw(), req.Body); err != nil {
			return nil, malformed(err)
		}
		_, err := s.ingest.NotifyListener(ctx, req)
		return nil, err
	}
	return nil, status.Error(codes.FailedPrecondition, fmt.Sprintf("entry of provider %v cannot be redriven", entry.GetProvider()))
}

func (s *Service) deleteMsg(ctx context.Context, seq uint64) error {
	st, err := s.log.JetStream().Stream(ctx, eventlog.QuarantineStream)
	if err != nil {
		return err
	}
	return st.DeleteMsg(ctx, seq)
}
