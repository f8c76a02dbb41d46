package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// readTimeout bounds each request read makes when ctx has no earlier deadline: on a cluster a
// request or its answer can be lost (a route reconnecting), and a listing must then fail, not
// hang until the caller gives up.
const readTimeout = 5 * time.Second

// read returns, in sequence order, the messages of stream with a sequence of at least from whose
// subject matches one of subjects (NATS wildcards allowed; none: every subject), at most maxMsgs
// of them and at most maxBytes of data (the sum of len(Data)) in all, but always the first match
// however big. next is the sequence of the first match it did not return, where the next page
// starts, or 0 when no match is left up to last, the stream leader's last sequence when read
// began: messages stored after that are for a later listing. A message stored on several matching
// subjects' filters is returned once.
//
// read creates no consumer and keeps no state between calls. A call costs one stream info
// request (answered by the leader) and batched direct gets, one subject filter each, merged by
// sequence; server-side filtering keeps the cost to the matches, where one covering wildcard
// filtered here would cost the whole range (see BenchmarkRead). Direct gets are answered by any
// replica, and a follower's can lag the leader's: nats-server lets a follower answer once it is
// 90% caught up after a restart, and under load a follower's store trails the leader's by the
// appends in flight. Since a replica applies committed entries in order, its answer is a run of
// the leader's matches, only perhaps cut short: a replica's end (Nats-Num-Pending 0, or no
// message) is believed only when the leader's next match (msg-get API) is past last. Otherwise
// that match is taken and the replicas asked again; when the next answer has not even the
// leader's match (a replica catching up after a restart), the leader answers that filter, one
// message a request, for the rest of the call. A message deleted while read runs may still be
// returned by a lagging replica.
//
// Errors wrap ErrUnavailable when the leader cannot answer (down, no quorum, timeout, ctx done),
// so a listing never ends early in silence. maxMsgs and maxBytes must be positive.
func (l *Log) read(ctx context.Context, stream string, subjects []string, from uint64, maxMsgs, maxBytes int) (msgs []*jetstream.RawStreamMsg, next uint64, err error) {
	if maxMsgs <= 0 || maxBytes <= 0 {
		return nil, 0, fmt.Errorf("read %s: max messages %d and max bytes %d must be positive", stream, maxMsgs, maxBytes)
	}
	last, err := l.leaderLastSeq(ctx, stream)
	if err != nil {
		return nil, 0, err
	}
	from = max(from, 1)
	if from > last {
		return nil, 0, nil
	}
	r := &reader{l: l, stream: stream, last: last}
	for _, s := range coveringSubjects(subjects) {
		r.filters = append(r.filters, &filter{subject: s, cursor: from})
	}
	return r.page(ctx, maxMsgs, maxBytes)
}

// reader is one call of read.
type reader struct {
	l       *Log
	stream  string
	last    uint64 // the leader's last sequence when read began
	filters []*filter
}

// filter is the position of read in the matches of one subject filter.
type filter struct {
	subject string // "" for every subject
	// buf holds matches read ahead, in order; every match from the start of the listing up to
	// cursor-1 is in buf or already listed.
	buf    []*jetstream.RawStreamMsg
	cursor uint64
	// done: no match from cursor up to the reader's last.
	done bool
	// suspect: a replica said no match is left after cursor-1, which the leader must confirm.
	suspect bool
	// behind: the leader had a match the replica answering last did not have.
	behind bool
	// leader: ask the stream leader, one message a request, for the rest of the call: direct gets
	// failed, or came from a replica that stayed behind.
	leader bool
	asked  int // how many matches the last request asked for, without the one more
}

func (r *reader) page(ctx context.Context, maxMsgs, maxBytes int) ([]*jetstream.RawStreamMsg, uint64, error) {
	var msgs []*jetstream.RawStreamMsg
	var size int
	var listed uint64 // the last sequence listed
	for {
		// The next match is the lowest head once every filter has one or is done.
		var head *filter
		for _, f := range r.filters {
			if err := r.ready(ctx, f, listed, maxMsgs-len(msgs), maxBytes-size); err != nil {
				return nil, 0, err
			}
			if len(f.buf) > 0 && (head == nil || f.buf[0].Sequence < head.buf[0].Sequence) {
				head = f
			}
		}
		if head == nil {
			return msgs, 0, nil
		}
		m := head.buf[0]
		if len(msgs) == maxMsgs || len(msgs) > 0 && size+len(m.Data) > maxBytes {
			return msgs, m.Sequence, nil
		}
		head.buf = head.buf[1:]
		msgs = append(msgs, m)
		size += len(m.Data)
		listed = m.Sequence
	}
}

// ready drops from f's buffer what is listed already (a message matching another filter too) and
// reads until f has a match after listed or is done. n and bytes are what the page still has room
// for; the server stops once it has sent bytes, counting subjects and headers too, so it sends
// about what the page can take or less, which another request makes up.
func (r *reader) ready(ctx context.Context, f *filter, listed uint64, n, bytes int) error {
	for {
		for len(f.buf) > 0 && f.buf[0].Sequence <= listed {
			f.buf = f.buf[1:]
		}
		if len(f.buf) > 0 || f.done {
			return nil
		}
		if err := r.fill(ctx, f, f.want(n, len(r.filters)), max(bytes, 1)); err != nil {
			return err
		}
	}
}

// want is how many matches to ask for when f's buffer is empty and the page has room for n more:
// with several filters, first an equal share of n, then twice as many each time the page has
// taken all of them (a filter holding most matches), so the page reads little it does not list,
// in few requests. One more than that, so that the page's next is usually known without another
// request.
func (f *filter) want(n, filters int) int {
	if f.asked == 0 {
		f.asked = (n + filters - 1) / filters
	} else {
		f.asked *= 2
	}
	f.asked = min(f.asked, n)
	return f.asked + 1
}

// fill reads at least one match of f into its buffer, or marks it done.
func (r *reader) fill(ctx context.Context, f *filter, n, bytes int) error {
	if !f.leader && !f.suspect {
		msgs, pending, err := r.direct(ctx, f, n, bytes)
		for _, m := range msgs {
			if m.Sequence > r.last {
				// A replica's store is a prefix of the leader's (it applies committed entries in
				// order), so one past last means it held every match up to last.
				f.done = true
				return nil
			}
			f.buf = append(f.buf, m)
			f.cursor = m.Sequence + 1
		}
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("%w: read %s: %w", ErrUnavailable, r.stream, ctx.Err())
			}
			// No replica serves direct gets (right after a restart) or the answer broke off.
			f.leader = true
		case len(msgs) == 0 && f.behind:
			// The replica has not even the match the leader gave: it is catching up (after a
			// restart), and would answer the same again, since a client's direct gets go to the
			// replica on its own server first.
			f.leader = true
		case len(msgs) == 0 || pending == 0:
			// "No more" from a replica may be a lagging one's, or a batch cut off by a timeout.
			f.suspect = true
		}
		f.behind = false
		if len(f.buf) > 0 {
			return nil
		}
	}
	m, err := r.leaderNext(ctx, f)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		f.done = true
		return nil
	case err != nil:
		return fmt.Errorf("%w: read %s: %w", ErrUnavailable, r.stream, err)
	case m.Sequence > r.last:
		f.done = true
		return nil
	}
	// Unless the leader answers f anyway, the replica that ended short was behind. Under load a
	// follower's store trails the leader's by the appends in flight, so it may well have the rest
	// by the next request: the replicas are asked again first.
	f.buf = append(f.buf, m)
	f.cursor = m.Sequence + 1
	f.behind, f.suspect = !f.leader, false
	return nil
}

// direct reads up to n matches of f from its cursor with one batched direct get, answered by any
// replica. pending is the replica's count of matches after the last one returned (the
// Nats-Num-Pending header). The messages returned before an error are valid.
func (r *reader) direct(ctx context.Context, f *filter, n, bytes int) (msgs []*jetstream.RawStreamMsg, pending uint64, err error) {
	opts := []jetstreamext.GetBatchOpt{jetstreamext.GetBatchSeq(f.cursor), jetstreamext.GetBatchMaxBytes(bytes)}
	if f.subject != "" {
		opts = append(opts, jetstreamext.GetBatchSubject(f.subject))
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	batch, err := jetstreamext.GetBatch(ctx, r.l.js, r.stream, n, opts...)
	if err != nil {
		return nil, 0, err
	}
	// GetBatch ends without an error when its request times out (natsext.RequestMany), so an
	// answer cut short looks like a complete one: the caller's suspect handles both.
	for m, err := range batch {
		if errors.Is(err, jetstreamext.ErrNoMessages) {
			break
		}
		if err != nil {
			return msgs, 0, err
		}
		msgs = append(msgs, m)
	}
	if len(msgs) > 0 {
		// Unparsable counts as 0: the leader is asked then, which is only slower.
		pending, _ = strconv.ParseUint(msgs[len(msgs)-1].Header.Get("Nats-Num-Pending"), 10, 64)
	}
	return msgs, pending, nil
}

// leaderNext returns the first match of f from its cursor, as the stream leader stores it, or
// jetstream.ErrMsgNotFound. It uses the msg-get API, which only the leader answers: jetstream's
// Stream.GetMsg would use a direct get on a stream allowing them.
func (r *reader) leaderNext(ctx context.Context, f *filter) (*jetstream.RawStreamMsg, error) {
	subject := f.subject
	if subject == "" {
		subject = ">"
	}
	req, err := json.Marshal(struct {
		Seq     uint64 `json:"seq"`
		NextFor string `json:"next_by_subj"`
	}{f.cursor, subject})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	reply, err := r.l.nc.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"STREAM.MSG.GET."+r.stream, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Error   *jetstream.APIError `json:"error"`
		Message *struct {
			Subject  string    `json:"subject"`
			Sequence uint64    `json:"seq"`
			Header   []byte    `json:"hdrs"`
			Data     []byte    `json:"data"`
			Time     time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return nil, fmt.Errorf("msg get response: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, jetstream.ErrMsgNotFound
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, errors.New("msg get response without a message")
	}
	m := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Sequence, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("msg get response headers: %w", err)
		}
	}
	return m, nil
}

// leaderLastSeq returns the last sequence of stream as its leader has it.
func (l *Log) leaderLastSeq(ctx context.Context, stream string) (uint64, error) {
	info, err := l.leaderInfo(ctx, stream)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// leaderInfo returns the info of stream as its leader has it. Stream info is answered by the
// leader, but also by every replica while the stream has no leader (and by a node whose view of
// the cluster is stale), so an answer whose cluster info does not show its sender as leader is
// refused. Errors wrap ErrUnavailable.
func (l *Log) leaderInfo(ctx context.Context, stream string) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	s, err := l.js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("%w: stream info %s: %w", ErrUnavailable, stream, err)
	}
	info := s.CachedInfo()
	if ci := info.Cluster; ci != nil {
		// The sender leaves itself out of Replicas; the embedded server names itself leader.
		follower := slices.ContainsFunc(ci.Replicas, func(p *jetstream.PeerInfo) bool { return p.Name == ci.Leader })
		if ci.Leader == "" || follower {
			return nil, fmt.Errorf("%w: stream %s has no leader", ErrUnavailable, stream)
		}
	}
	return info, nil
}

// coveringSubjects returns subjects without those another one covers, so no range of the stream
// is read twice; "" (every subject) alone when subjects is empty or holds ">".
func coveringSubjects(subjects []string) []string {
	if len(subjects) == 0 || slices.Contains(subjects, ">") {
		return []string{""}
	}
	var out []string
	for i, s := range subjects {
		covered := false
		for j, t := range subjects {
			// Of two equal subjects, the first one stays.
			if i != j && covers(t, s) && (s != t || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	return out
}

// covers reports whether every subject matching pattern p also matches pattern q.
func covers(q, p string) bool {
	qt, pt := strings.Split(q, "."), strings.Split(p, ".")
	for i, t := range qt {
		switch {
		case t == ">":
			return len(pt) > i
		case i >= len(pt), pt[i] == ">":
			return false
		case t != "*" && t != pt[i]:
			return false
		}
	}
	return len(qt) == len(pt)
}
