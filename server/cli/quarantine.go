package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
)

// quarantineFilter holds the --provider, --reason and --before flags of list and purge.
type quarantineFilter struct {
	provider, reason, before string
}

// parse returns the provider and reason of f; an unknown value is a usage error (exit 2).
func (f quarantineFilter) parse() (hookstreamv1.Provider, hookstreamv1.QuarantineEntry_Reason, error) {
	var p hookstreamv1.Provider
	if f.provider != "" {
		v, ok := hookstreamv1.Provider_value["PROVIDER_"+strings.ToUpper(f.provider)]
		if !ok || v == 0 {
			return 0, 0, fmt.Errorf("%w: --provider %q is not moveapi, movement, mvmnt or listener", config.ErrInvalid, f.provider)
		}
		p = hookstreamv1.Provider(v)
	}
	var r hookstreamv1.QuarantineEntry_Reason
	if f.reason != "" {
		name := strings.ToUpper(strings.ReplaceAll(f.reason, "-", "_"))
		v, ok := hookstreamv1.QuarantineEntry_Reason_value["REASON_"+name]
		if !ok || v == 0 {
			return 0, 0, fmt.Errorf("%w: --reason %q is not malformed, invalid or dead_letter", config.ErrInvalid, f.reason)
		}
		r = hookstreamv1.QuarantineEntry_Reason(v)
	}
	return p, r, nil
}

// quarantineCommand is `hookstream quarantine`: what hookstream kept aside, through the internal
// API with the client credentials (the admin permission).
func quarantineCommand(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "quarantine",
		Short:   "List, show, redrive, delete and purge quarantined payloads and dead letters (needs the admin permission)",
		Example: "  hookstream quarantine list --provider mvmnt\n  hookstream quarantine show ID\n  hookstream quarantine redrive ID",
	}
	for _, c := range []*cobra.Command{
		quarantineList(stdout, getenv), quarantineShow(stdout, getenv), quarantineRedrive(stdout, stderr, getenv),
		quarantineDelete(stdout, getenv), quarantinePurge(stdout, getenv),
	} {
		registerClientFlags(c.Flags())
		cmd.AddCommand(c)
	}
	return cmd
}

// exactID is cobra.ExactArgs(1) as a usage error (exit 2).
func exactID(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: want one entry id, got %d arguments", config.ErrInvalid, len(args))
	}
	return nil
}

func quarantineList(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var f quarantineFilter
	var asJSON bool
	c := &cobra.Command{
		Use:     "list",
		Example: "  hookstream quarantine list\n  hookstream quarantine list --provider movement --reason malformed --json",
		Short:   "Print quarantined entries, oldest first: id, quarantined at, provider, reason, first violation or error, size",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			provider, reason, err := f.parse()
			if err != nil {
				return err
			}
			client, done, err := serviceClient(cmd, getenv, hookstreamv1.NewQuarantineServiceClient)
			if err != nil {
				return err
			}
			defer done()
			// The filters are the RPC's own: the server selects, and pages hold only matches.
			req := &hookstreamv1.ListEntriesRequest{Provider: provider, Reason: reason, PageSize: 100}
			for {
				resp, err := client.ListEntries(cmd.Context(), req)
				if err != nil {
					return err
				}
				for _, e := range resp.GetEntries() {
					if asJSON {
						b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e) // the names of the HTTP mapping
						fmt.Fprintf(stdout, "%s\n", b)
					} else {
						fmt.Fprintln(stdout, entryLine(e))
					}
				}
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					return nil
				}
			}
		},
	}
	c.Flags().StringVar(&f.provider, "provider", "", "only this provider (moveapi, movement, mvmnt, listener)")
	c.Flags().StringVar(&f.reason, "reason", "", "only this reason (malformed, invalid, dead_letter)")
	c.Flags().BoolVar(&asJSON, "json", false, "print each entry as one protojson line (raw base64-encoded)")
	return c
}

// entryLine is the one-line summary of e that list prints, tab-separated.
func entryLine(e *hookstreamv1.QuarantineEntry) string {
	what := e.GetDetail()
	if vs := e.GetViolations(); len(vs) > 0 {
		what = vs[0].GetField() + ": " + vs[0].GetRule() + ": " + vs[0].GetMessage()
	}
	if e.GetReason() == hookstreamv1.QuarantineEntry_REASON_DEAD_LETTER && what == "" {
		what = fmt.Sprintf("group %s, %d deliveries", e.GetConsumerGroup(), e.GetDeliveryAttempts())
	}
	size := len(e.GetRaw())
	if size == 0 {
		size = len(e.GetEvent().GetRaw()) // a dead letter keeps its raw JSON in the event
	}
	provider := strings.ToLower(strings.TrimPrefix(e.GetProvider().String(), "PROVIDER_"))
	reason := strings.ToLower(strings.TrimPrefix(e.GetReason().String(), "REASON_"))
	return strings.Join([]string{
		e.GetId(), e.GetQuarantinedAt().AsTime().UTC().Format(time.RFC3339), provider, reason,
		strings.Join(strings.Fields(what), " "), fmt.Sprintf("%dB", size),
	}, "\t")
}

// idCommand is a subcommand taking one entry id: it dials the internal API and calls call.
func idCommand(use, example, short string, getenv func(string) string, call func(cmd *cobra.Command, client hookstreamv1.QuarantineServiceClient, id string) error) *cobra.Command {
	return &cobra.Command{
		Use:     use + " ID",
		Example: "  hookstream quarantine " + use + " " + example,
		Short:   short,
		Args:    exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, done, err := serviceClient(cmd, getenv, hookstreamv1.NewQuarantineServiceClient)
			if err != nil {
				return err
			}
			defer done()
			return call(cmd, client, args[0])
		},
	}
}

// exampleID is the entry id of the examples.
const exampleID = "0195f3a2-7c1e-7b4d-9a2e-1f0e9d8c7b6a"

func quarantineShow(stdout io.Writer, getenv func(string) string) *cobra.Command {
	return idCommand("show", exampleID, "Print one entry as indented JSON, its raw body decoded when it is JSON", getenv,
		func(cmd *cobra.Command, client hookstreamv1.QuarantineServiceClient, id string) error {
			resp, err := client.GetEntry(cmd.Context(), &hookstreamv1.GetEntryRequest{Id: id})
			if err != nil {
				return err
			}
			b, err := showEntry(resp.GetEntry())
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
			return nil
		})
}

// showEntry is e as indented JSON with proto names, "raw" being the body itself when it is JSON
// (base64 otherwise, as protojson has it).
func showEntry(e *hookstreamv1.QuarantineEntry) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	if raw := bytes.TrimSpace(e.GetRaw()); len(raw) > 0 && json.Valid(raw) {
		fields["raw"] = raw
	}
	return json.MarshalIndent(fields, "", "  ")
}

func quarantineRedrive(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	return idCommand("redrive", exampleID, "Ingest an entry again and print the receipts; a payload still rejected prints its violations and stays", getenv,
		func(cmd *cobra.Command, client hookstreamv1.QuarantineServiceClient, id string) error {
			resp, err := client.RedriveEntry(cmd.Context(), &hookstreamv1.RedriveEntryRequest{Id: id})
			if err != nil {
				printViolations(stderr, err)
				return err
			}
			for _, r := range resp.GetReceipts() {
				b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(r)
				fmt.Fprintf(stdout, "%s\n", b)
			}
			return nil
		})
}

// printViolations writes the field violations an INVALID_ARGUMENT carries, one a line.
func printViolations(w io.Writer, err error) {
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		return
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				fmt.Fprintf(w, "violation: %s: %s\n", v.GetField(), v.GetDescription())
			}
		}
	}
}

func quarantineDelete(stdout io.Writer, getenv func(string) string) *cobra.Command {
	return idCommand("delete", exampleID, "Remove one entry without redriving it", getenv,
		func(cmd *cobra.Command, client hookstreamv1.QuarantineServiceClient, id string) error {
			if _, err := client.DeleteEntry(cmd.Context(), &hookstreamv1.DeleteEntryRequest{Id: id}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s\n", id)
			return nil
		})
}

func quarantinePurge(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var f quarantineFilter
	var all bool
	c := &cobra.Command{
		Use:     "purge",
		Example: "  hookstream quarantine purge --provider mvmnt --reason invalid\n  hookstream quarantine purge --before 2025-01-01T00:00:00Z\n  hookstream quarantine purge --all",
		Short:   "Remove every entry matching all the filters given (--all for every entry) and print how many",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.purgeRequest(all)
			if err != nil {
				return err
			}
			client, done, err := serviceClient(cmd, getenv, hookstreamv1.NewQuarantineServiceClient)
			if err != nil {
				return err
			}
			defer done()
			resp, err := client.PurgeEntries(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "purged %d entries\n", resp.GetPurged())
			return nil
		},
	}
	c.Flags().StringVar(&f.provider, "provider", "", "only this provider (moveapi, movement, mvmnt, listener)")
	c.Flags().StringVar(&f.reason, "reason", "", "only this reason (malformed, invalid, dead_letter)")
	c.Flags().StringVar(&f.before, "before", "", "only entries quarantined before this RFC 3339 time")
	c.Flags().BoolVar(&all, "all", false, "remove every entry (instead of filters)")
	return c
}

// purgeRequest is the request of purge. The RPC removes everything when no filter is set, so
// an unfiltered purge needs --all, and --all with a filter is refused as ambiguous.
func (f quarantineFilter) purgeRequest(all bool) (*hookstreamv1.PurgeEntriesRequest, error) {
	provider, reason, err := f.parse()
	if err != nil {
		return nil, err
	}
	req := &hookstreamv1.PurgeEntriesRequest{Provider: provider, Reason: reason}
	if f.before != "" {
		t, err := time.Parse(time.RFC3339Nano, f.before)
		if err != nil {
			return nil, fmt.Errorf("%w: --before %q is not an RFC 3339 time", config.ErrInvalid, f.before)
		}
		req.QuarantinedBefore = timestamppb.New(t)
	}
	filtered := f.provider != "" || f.reason != "" || f.before != ""
	switch {
	case !filtered && !all:
		return nil, fmt.Errorf("%w: purge without a filter removes every entry: give --provider, --reason or --before, or --all", config.ErrInvalid)
	case filtered && all:
		return nil, fmt.Errorf("%w: --all removes every entry: give it without --provider, --reason or --before", config.ErrInvalid)
	}
	return req, nil
}
