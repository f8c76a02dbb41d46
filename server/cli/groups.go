package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	hookstreamv1 "github.com/hookstream/hookstream/gen/hookstream/v1"
	"github.com/hookstream/hookstream/server/config"
)

// groupsCommand is `hookstream groups`: the durable consumer groups, through the internal API
// with the client credentials (the admin permission).
func groupsCommand(stdout io.Writer, getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "groups",
		Short:   "List, show, reset, pause, resume and delete consumer groups (needs the admin permission)",
		Example: "  hookstream groups list\n  hookstream groups show billing\n  hookstream groups reset billing --to 2025-01-02T15:04:05Z",
	}
	for _, c := range []*cobra.Command{
		groupsList(stdout, getenv), groupsShow(stdout, getenv), groupsReset(stdout, getenv),
		groupsPause(stdout, getenv), groupsResume(stdout, getenv), groupsDelete(stdout, getenv),
	} {
		registerClientFlags(c.Flags())
		cmd.AddCommand(c)
	}
	return cmd
}

// exactName is cobra.ExactArgs(1) as a usage error (exit 2).
func exactName(_ *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%w: want one group name, got %d arguments", config.ErrInvalid, len(args))
	}
	return nil
}

// noArgs is cobra.NoArgs as a usage error (exit 2).
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) != 0 {
		return fmt.Errorf("%w: want no arguments, got %d", config.ErrInvalid, len(args))
	}
	return nil
}

// nameCommand is a subcommand of groups taking one group name: it dials the internal API and
// calls call.
func nameCommand(use, example, short string, getenv func(string) string, call func(cmd *cobra.Command, client hookstreamv1.EventServiceClient, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:     use + " NAME",
		Example: example,
		Short:   short,
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			client, done, err := serviceClient(cmd, getenv, hookstreamv1.NewEventServiceClient)
			if err != nil {
				return err
			}
			defer done()
			return call(cmd, client, args[0])
		},
	}
}

func groupsList(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:     "list",
		Example: "  hookstream groups list\n  hookstream groups list --json | jq .pending_events",
		Short:   "Print the consumer groups by name, one a line: pending (lag), in flight, redelivered, dead letters, paused",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, done, err := serviceClient(cmd, getenv, hookstreamv1.NewEventServiceClient)
			if err != nil {
				return err
			}
			defer done()
			req := &hookstreamv1.ListGroupsRequest{PageSize: 100}
			for {
				resp, err := client.ListGroups(cmd.Context(), req)
				if err != nil {
					return err
				}
				for _, g := range resp.GetGroups() {
					if asJSON {
						printJSON(stdout, g)
					} else {
						fmt.Fprintln(stdout, groupLine(g))
					}
				}
				if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
					return nil
				}
			}
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print each group as one protojson line")
	return c
}

// printJSON prints g as one protojson line with the names of the HTTP mapping.
func printJSON(w io.Writer, g *hookstreamv1.Group) {
	b, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(g)
	fmt.Fprintf(w, "%s\n", b)
}

// groupLine is the one-line summary of g that list prints, tab-separated.
func groupLine(g *hookstreamv1.Group) string {
	return strings.Join([]string{
		g.GetName(),
		fmt.Sprintf("pending=%d", g.GetPendingEvents()),
		fmt.Sprintf("in_flight=%d", g.GetUnacknowledgedEvents()),
		fmt.Sprintf("redelivered=%d", g.GetRedeliveredEvents()),
		fmt.Sprintf("dead_letters=%d", g.GetDeadLetters()),
		"paused=" + pausedText(g),
	}, "\t")
}

// pausedText says whether and until when g is paused.
func pausedText(g *hookstreamv1.Group) string {
	switch {
	case !g.GetPaused():
		return "no"
	case g.GetPausedUntil() == nil:
		return "until resumed"
	}
	return "until " + g.GetPausedUntil().AsTime().UTC().Format(time.RFC3339)
}

// showGroup writes g as the aligned lines of show.
func showGroup(w io.Writer, g *hookstreamv1.Group) {
	when := func(ts *timestamppb.Timestamp) string {
		if ts == nil {
			return "never"
		}
		return ts.AsTime().UTC().Format(time.RFC3339)
	}
	expiry := "never"
	if d := g.GetIdleExpiry(); d != nil {
		expiry = "after " + d.AsDuration().String() + " unread"
	}
	for _, l := range [][2]string{
		{"group", g.GetName()},
		{"pending (lag)", fmt.Sprint(g.GetPendingEvents())},
		{"in flight", fmt.Sprint(g.GetUnacknowledgedEvents())},
		{"redeliveries", fmt.Sprint(g.GetRedeliveredEvents())},
		{"dead letters", fmt.Sprint(g.GetDeadLetters())},
		{"paused", pausedText(g)},
		{"delivered up to", fmt.Sprintf("sequence %d", g.GetDeliveredSequence())},
		{"acked up to", fmt.Sprintf("sequence %d", g.GetAckFloorSequence())},
		{"ack deadline", g.GetAckDeadline().AsDuration().String()},
		{"max deliveries", fmt.Sprint(g.GetMaxDeliveries())},
		{"created", when(g.GetCreatedAt())},
		{"last delivered", when(g.GetLastDeliveredAt())},
		{"expires", expiry},
	} {
		fmt.Fprintf(w, "%-16s%s\n", l[0]+":", l[1])
	}
}

func groupsShow(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var asJSON bool
	c := nameCommand("show", "  hookstream groups show billing\n  hookstream groups show billing --json",
		"Print a group's pending events (its lag), in flight, redeliveries, dead letters, pause and position", getenv,
		func(cmd *cobra.Command, client hookstreamv1.EventServiceClient, name string) error {
			resp, err := client.GetGroup(cmd.Context(), &hookstreamv1.GetGroupRequest{Name: name})
			if err != nil {
				return err
			}
			if asJSON {
				printJSON(stdout, resp.GetGroup())
			} else {
				showGroup(stdout, resp.GetGroup())
			}
			return nil
		})
	c.Flags().BoolVar(&asJSON, "json", false, "print the group as one protojson line")
	return c
}

func groupsReset(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var to string
	c := nameCommand("reset", `  hookstream groups reset billing --to 2025-01-02T15:04:05Z
  hookstream groups reset billing --to 42
  hookstream groups reset billing --to all
  hookstream groups reset billing --to new`,
		"Move a group to a time, a sequence, every retained event (all) or new events only (new); its open streams end and must subscribe again", getenv,
		func(cmd *cobra.Command, client hookstreamv1.EventServiceClient, name string) error {
			pos, err := parseStart(to)
			if err != nil || to == "" {
				return fmt.Errorf("%w: --to %q is not an RFC 3339 time, a sequence number, all or new", config.ErrInvalid, to)
			}
			resp, err := client.ResetGroup(cmd.Context(), &hookstreamv1.ResetGroupRequest{Name: name, Position: pos})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "reset %s to %s: %d pending\n", name, to, resp.GetGroup().GetPendingEvents())
			return nil
		})
	c.Flags().StringVar(&to, "to", "", "where the group reads from: an RFC 3339 time, a sequence number, all or new (required)")
	return c
}

func groupsPause(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var until string
	c := nameCommand("pause", "  hookstream groups pause billing\n  hookstream groups pause billing --until 2025-01-02T15:04:05Z",
		"Stop deliveries to a group until resumed (or --until a time); events stored meanwhile wait in the group", getenv,
		func(cmd *cobra.Command, client hookstreamv1.EventServiceClient, name string) error {
			req := &hookstreamv1.PauseGroupRequest{Name: name}
			if until != "" {
				t, err := time.Parse(time.RFC3339Nano, until)
				if err != nil {
					return fmt.Errorf("%w: --until %q is not an RFC 3339 time", config.ErrInvalid, until)
				}
				req.Until = timestamppb.New(t)
			}
			resp, err := client.PauseGroup(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "paused %s %s\n", name, pausedText(resp.GetGroup()))
			return nil
		})
	c.Flags().StringVar(&until, "until", "", "end the pause by itself at this RFC 3339 time (default: until resumed)")
	return c
}

func groupsResume(stdout io.Writer, getenv func(string) string) *cobra.Command {
	return nameCommand("resume", "  hookstream groups resume billing", "End a group's pause: deliveries start again", getenv,
		func(cmd *cobra.Command, client hookstreamv1.EventServiceClient, name string) error {
			resp, err := client.ResumeGroup(cmd.Context(), &hookstreamv1.ResumeGroupRequest{Name: name})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "resumed %s: %d pending\n", name, resp.GetGroup().GetPendingEvents())
			return nil
		})
}

func groupsDelete(stdout io.Writer, getenv func(string) string) *cobra.Command {
	return nameCommand("delete", "  hookstream groups delete billing",
		"Delete a group and its position at once (no question asked); its open streams end, and subscribing again creates it anew", getenv,
		func(cmd *cobra.Command, client hookstreamv1.EventServiceClient, name string) error {
			if _, err := client.DeleteGroup(cmd.Context(), &hookstreamv1.DeleteGroupRequest{Name: name}); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "deleted %s\n", name)
			return nil
		})
}
