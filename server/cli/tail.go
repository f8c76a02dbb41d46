package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/cloudevent"
	"github.com/hookstream/hookstream/server/config"
)

// tailOptions are the flags of `hookstream tail`.
type tailOptions struct {
	providers, types []string
	from, group      string
	count            int
	json, raw        bool
}

// tailCommand is `hookstream tail`: live events through Tail (the read permission) or, with
// --group, through Subscribe with an ack after each event is printed (the consume permission).
func tailCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	var o tailOptions
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print events as they are stored: typed and readable, or one JSON object per line",
		Long: `Print events as they are stored, one readable block per event: the time received, provider,
type, id and source, then the typed payload as compact JSON (--raw: the JSON the provider sent).

Without --group it reads through Tail (the read permission): nothing is acknowledged and every run
sees the events again. With --group it consumes through Subscribe (the consume permission) and
acks each event after printing it, so the next run of the group starts after it; --from then only
says where a new group starts.

It ends after --count events, on Ctrl-C, and when the server drains the stream (shutdown):
it then says so on stderr and exits 0; run it again to continue (a group keeps its position).`,
		Example: `  hookstream tail
  hookstream tail --from all --provider mvmnt --type 'SHIPMENT_*'
  hookstream tail --from 2025-01-02T15:04:05Z --json | jq .type
  hookstream tail --group demo --from all --count 10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTail(cmd, o, stdout, stderr, getenv)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.providers, "provider", nil, "only these providers (moveapi, movement, mvmnt, listener)")
	f.StringSliceVar(&o.types, "type", nil, "only these event type patterns (\"SHIPMENT_*\", \"job.state.*\")")
	f.StringVar(&o.from, "from", "new", "where to start: new, all, a sequence number or an RFC 3339 time")
	f.IntVar(&o.count, "count", 0, "exit after this many events (0: until interrupted)")
	f.StringVar(&o.group, "group", "", "consume as this consumer group, acking each event printed")
	f.BoolVar(&o.json, "json", false, "print each event as one JSON object per line (as events list does)")
	f.BoolVar(&o.raw, "raw", false, "show the JSON the provider sent instead of the typed payload")
	registerClientFlags(f)
	return cmd
}

// runTail checks the flags, connects and streams.
func runTail(cmd *cobra.Command, o tailOptions, stdout, stderr io.Writer, getenv func(string) string) error {
	filter, err := parseFilter(o.providers, o.types)
	if err != nil {
		return err
	}
	start, err := parseStart(o.from)
	if err != nil {
		return err
	}
	if o.json && o.raw {
		return fmt.Errorf("%w: --json prints the whole event (raw included): use --json or --raw", config.ErrInvalid)
	}
	if o.count < 0 {
		return fmt.Errorf("%w: --count must be 0 or more", config.ErrInvalid)
	}
	conn, err := dialClient(cmd, getenv)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := hookstreamv1.NewEventServiceClient(conn)
	show := func(ev *hookstreamv1.Event) {
		switch {
		case o.json:
			printEvent(stdout, ev)
		default:
			printPretty(stdout, ev, o.raw)
		}
	}
	ctx := cmd.Context()
	if o.group != "" {
		err = subscribeGroup(ctx, client, o, filter, start, show, stderr)
	} else {
		err = tail(ctx, client, o.count, filter, start, show, stderr)
	}
	if ctx.Err() != nil && status.Code(err) == codes.Canceled {
		return nil // Ctrl-C
	}
	return err
}

// parseFilter makes the event filter of the --provider and --type flags.
func parseFilter(providers, types []string) (*hookstreamv1.EventFilter, error) {
	filter := &hookstreamv1.EventFilter{Types: types}
	for _, p := range providers {
		v, ok := hookstreamv1.Provider_value["PROVIDER_"+strings.ToUpper(p)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("unknown provider %q (want moveapi, movement, mvmnt or listener)", p)
		}
		filter.Providers = append(filter.Providers, hookstreamv1.Provider(v))
	}
	return filter, nil
}

// parseStart reads --from: new, all, a sequence number or an RFC 3339 time.
func parseStart(from string) (*hookstreamv1.StartPosition, error) {
	switch from {
	case "", "new":
		return &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_NEW}, nil
	case "all":
		return &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_ALL}, nil
	}
	if seq, err := strconv.ParseUint(from, 10, 64); err == nil {
		return &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_SEQUENCE, Sequence: seq}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, from); err == nil {
		return &hookstreamv1.StartPosition{Policy: hookstreamv1.StartPosition_POLICY_TIME, Time: timestamppb.New(t)}, nil
	}
	return nil, fmt.Errorf("%w: --from %q is not new, all, a sequence number or an RFC 3339 time", config.ErrInvalid, from)
}

// tail prints the events of a Tail stream until count events were printed (0: no limit), the
// stream ends or ctx is done.
func tail(ctx context.Context, client hookstreamv1.EventServiceClient, count int, filter *hookstreamv1.EventFilter, start *hookstreamv1.StartPosition, show func(*hookstreamv1.Event), stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream after --count events
	stream, err := client.Tail(ctx, &hookstreamv1.TailRequest{Filter: filter, Start: start})
	if err != nil {
		return err
	}
	for printed := 0; count == 0 || printed < count; {
		resp, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			fmt.Fprintln(stderr, "hookstream tail: the server ended the stream (shutting down); run again to continue")
			return nil
		}
		if err != nil {
			return err
		}
		if ev := resp.GetEvent(); ev != nil {
			show(ev)
			printed++
		}
	}
	return nil
}

// subscribeGroup prints the events of a Subscribe stream of group o.group, acking each after
// printing it, until o.count events were printed (0: no limit), the server drains or ctx is done.
func subscribeGroup(ctx context.Context, client hookstreamv1.EventServiceClient, o tailOptions, filter *hookstreamv1.EventFilter, start *hookstreamv1.StartPosition, show func(*hookstreamv1.Event), stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Subscribe(ctx)
	if err != nil {
		return err
	}
	open := &hookstreamv1.SubscribeRequest_Open{Group: o.group, Filter: filter, Start: start}
	if o.count > 0 {
		// Hold no more than will be printed: an event sent and never acked would use up one of
		// its deliveries.
		open.MaxInFlight = uint32(min(o.count, 100))
	}
	if err := stream.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Open_{Open: open}}); err != nil {
		return recvErr(stream)
	}
	for printed := 0; o.count == 0 || printed < o.count; {
		resp, err := stream.Recv()
		if err != nil {
			return err // io.EOF does not come before draining
		}
		if d := resp.GetDraining(); d != nil {
			fmt.Fprintf(stderr, "hookstream tail: the server is draining the stream (%s); run again to continue from the group's position\n", d.GetReason())
			return nil
		}
		for _, re := range resp.GetEvents().GetEvents() {
			if o.count > 0 && printed == o.count {
				break // not acked: redelivered to the group
			}
			show(re.GetEvent())
			printed++
			settle := &hookstreamv1.SubscribeRequest_Settle{AckIds: []string{re.GetAckId()}}
			if err := stream.Send(&hookstreamv1.SubscribeRequest{Kind: &hookstreamv1.SubscribeRequest_Settle_{Settle: settle}}); err != nil {
				return recvErr(stream)
			}
		}
	}
	// Half-close and wait for the server to end the stream: it has then applied every ack.
	if err := stream.CloseSend(); err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// recvErr is the status a stream ended with, after a Send failed (Send returns io.EOF then).
func recvErr(stream hookstreamv1.EventService_SubscribeClient) error {
	for {
		if _, err := stream.Recv(); err != nil {
			return err
		}
	}
}

// printPretty prints ev as a line of its envelope and an indented line of its payload: typed, or
// the raw JSON the provider sent.
func printPretty(w io.Writer, ev *hookstreamv1.Event, raw bool) {
	fmt.Fprintf(w, "%s  %s  %s  %s  %s\n", ev.GetReceivedAt().AsTime().Format(time.RFC3339Nano),
		strings.ToLower(strings.TrimPrefix(ev.GetProvider().String(), "PROVIDER_")), ev.GetType(), ev.GetId(), ev.GetSource())
	var body []byte
	if raw {
		body = ev.GetRaw()
	} else if m := cloudevent.Data(ev); m != nil {
		body, _ = protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, body); err != nil {
		q, _ := json.Marshal(string(body)) // not JSON: shown as a string
		buf.Reset()
		buf.Write(q)
	}
	fmt.Fprintf(w, "  %s\n", buf.Bytes())
}
