package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
)

// eventsCommand is `hookstream events`: stored events, read through the internal API with the
// client credentials (the read permission).
func eventsCommand(stdout io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "events",
		Short:   "Read stored events through the internal API (needs the read permission)",
		Example: "  hookstream events list --limit 10\n  hookstream events get ID",
	}
	var providers, types []string
	var limit int
	list := &cobra.Command{
		Use:     "list",
		Example: "  hookstream events list --provider mvmnt --type 'SHIPMENT_*' --limit 10",
		Short:   "Print stored events, oldest first, one JSON object per line",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, err := parseFilter(providers, types)
			if err != nil {
				return err
			}
			conn, err := dialClient(cmd, getenv)
			if err != nil {
				return err
			}
			defer conn.Close()
			client, token := hookstreamv1.NewEventServiceClient(conn), ""
			for printed := 0; limit <= 0 || printed < limit; {
				size := 100
				if limit > 0 {
					size = min(size, limit-printed)
				}
				resp, err := client.ListEvents(cmd.Context(), &hookstreamv1.ListEventsRequest{Filter: filter, PageSize: int32(size), PageToken: token})
				if err != nil {
					return err
				}
				for _, ev := range resp.GetEvents() {
					printEvent(stdout, ev)
				}
				printed += len(resp.GetEvents())
				if token = resp.GetNextPageToken(); token == "" {
					break
				}
			}
			return nil
		},
	}
	list.Flags().StringSliceVar(&providers, "provider", nil, "only these providers (moveapi, movement, mvmnt, listener)")
	list.Flags().StringSliceVar(&types, "type", nil, "only these event type patterns (\"SHIPMENT_CREATED\", \"job.state.*\")")
	list.Flags().IntVar(&limit, "limit", 0, "print at most this many events (0: all)")
	get := &cobra.Command{
		Use:     "get ID",
		Example: "  hookstream events get 0195f3a2-7c1e-7b4d-9a2e-1f0e9d8c7b6a",
		Short:   "Print one stored event as JSON",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := dialClient(cmd, getenv)
			if err != nil {
				return err
			}
			defer conn.Close()
			resp, err := hookstreamv1.NewEventServiceClient(conn).GetEvent(cmd.Context(), &hookstreamv1.GetEventRequest{Id: args[0]})
			if err != nil {
				return err
			}
			printEvent(stdout, resp.GetEvent())
			return nil
		},
	}
	for _, c := range []*cobra.Command{list, get} {
		registerClientFlags(c.Flags())
		cmd.AddCommand(c)
	}
	return cmd
}

func printEvent(w io.Writer, ev *hookstreamv1.Event) {
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(ev) // the names of the HTTP mapping
	fmt.Fprintf(w, "%s\n", b)
}
