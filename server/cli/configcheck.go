package cli

import (
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/daemon"
)

// configCommand is `hookstream config`, whose `check` validates a configuration without
// starting and prints what each door will accept.
func configCommand(stdout io.Writer, environ []string) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		Example: "  hookstream config check --config hookstream.yaml",
		Short:   "Work with hookstream's configuration",
		Args:    cobra.NoArgs,
	}
	check := &cobra.Command{
		Use:     "check",
		Example: "  hookstream config check --config hookstream.yaml",
		Short:   "Validate the configuration (file, environment, flags) as serve would, and print what each door will accept; exit 2 if it is invalid",
		Long: "check loads the configuration exactly as serve does (defaults, --config or HOOKSTREAM_CONFIG, " +
			"HOOKSTREAM_* variables, flags), reads the principals' token files and variables, the TLS files and " +
			"the providers' secrets, and prints what each door will accept, without opening the event log or " +
			"binding any address. It never prints a secret, a token or a token digest: only their kinds and counts.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags(), serverEnviron(environ))
			if err != nil {
				return err
			}
			if err := daemon.Check(cfg, lookup(environ)); err != nil {
				return err
			}
			describe(stdout, cfg)
			return nil
		},
	}
	config.RegisterFlags(check.Flags())
	cmd.AddCommand(check)
	return cmd
}

// describe writes what each door of cfg accepts: addresses, TLS, and the kinds and counts of
// credentials, never a credential itself.
func describe(w io.Writer, cfg config.Config) {
	fmt.Fprintln(w, "configuration is valid")
	fmt.Fprintf(w, "public http: %s (%s), %s\n", cfg.HTTP.Addr, reach(cfg.HTTP.Addr), tlsOf(cfg.HTTP.TLS, ""))
	p := cfg.Providers
	fmt.Fprintf(w, "  /webhooks/moveapi: %s\n", accepts(p.MoveAPI.Insecure, count(len(p.MoveAPI.Secrets), "Svix secret")))
	fmt.Fprintf(w, "  /webhooks/movement: %s\n", accepts(p.Movement.Insecure, count(len(p.Movement.Tokens), "token")))
	fmt.Fprintf(w, "  /webhooks/mvmnt: %s\n", accepts(p.MVMNT.Insecure, count(len(p.MVMNT.Tokens), "x-api-key token")))
	ids := sortedKeys(cfg.Listeners)
	if len(ids) == 0 {
		fmt.Fprintln(w, "  /webhooks/v1/listeners/{id}/notify: no listener (404)")
	}
	for _, id := range ids {
		fmt.Fprintf(w, "  /webhooks/v1/listeners/%s/notify: %s\n", strings.ToLower(id), listenerAccepts(cfg.Listeners[id]))
	}
	open := len(cfg.Auth.Principals) == 0
	fmt.Fprintf(w, "internal grpc: %s (%s), %s, reflection %s\n", cfg.GRPC.Addr, reach(cfg.GRPC.Addr),
		tlsOf(cfg.GRPC.TLS, cfg.Auth.ClientCAFile), reflection(cfg.GRPC.OpenReflection, open))
	fmt.Fprintf(w, "internal api: %s (%s), %s\n", cfg.API.Addr, reach(cfg.API.Addr), tlsOf(cfg.API.TLS, cfg.Auth.ClientCAFile))
	if j := cfg.Auth.JWT; j.JWKSFile != "" {
		fmt.Fprintf(w, "jwt: tokens of issuer %s for audience %s, keys in %s\n", j.Issuer, j.Audience, j.JWKSFile)
	}
	describePrincipals(w, cfg.Auth.Principals)
	fmt.Fprintf(w, "event log: %s\n", eventLog(cfg.EventLog))
}

// describePrincipals writes each principal's credential kinds and counts and what it may do.
func describePrincipals(w io.Writer, ps map[string]config.Principal) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "principals: none: every internal call is let through, so the internal doors listen on loopback only")
		return
	}
	fmt.Fprintf(w, "principals: %d, every internal call but health needs one\n", len(ps))
	for _, name := range sortedKeys(ps) {
		p := ps[name]
		creds := []string{
			count(len(p.Tokens), "token digest"),
			count(len(p.TokenFiles), "token file"),
			count(len(p.TokenEnv), "token variable"),
			count(len(p.Certificates), "certificate"),
			count(len(p.JWTSubjects), "JWT subject"),
		}
		fmt.Fprintf(w, "  %s: %s; permissions %s; groups %s; providers %s\n", name, strings.Join(creds, ", "),
			listOr(p.Permissions, "none"), listOr(p.Groups, "any"), listOr(p.Providers, "every"))
	}
}

// accepts says what a provider's route accepts.
func accepts(insecure bool, creds string) string {
	switch {
	case insecure:
		return "INSECURE: every request, unchecked"
	case strings.HasPrefix(creds, "0 "):
		return "nothing (401: no credentials configured)"
	default:
		return creds
	}
}

// listenerAccepts says what a listener's route accepts.
func listenerAccepts(l config.Listener) string {
	if l.Insecure {
		return "INSECURE: every request, unchecked"
	}
	if len(l.Tokens) == 0 {
		return "nothing (401: no tokens configured)"
	}
	s := count(len(l.Tokens), "Bearer token")
	if len(l.HMAC.Secrets) > 0 {
		s += fmt.Sprintf(" and an HMAC-%s (%s) in %s, %s", l.HMAC.Algorithm, l.HMAC.Encoding, l.HMAC.Header, count(len(l.HMAC.Secrets), "secret"))
	}
	return s
}

// reach says who can reach a listen address.
func reach(addr string) string {
	if config.Loopback(addr) {
		return "loopback only"
	}
	return "beyond loopback"
}

// tlsOf describes a listener's TLS and, for internal ones, its client CA.
func tlsOf(t config.TLS, clientCA string) string {
	s := "plain (no TLS)"
	if t.CertFile != "" {
		s = "TLS " + t.CertFile
		if clientCA != "" {
			s += ", client certificates verified against " + clientCA
		}
	}
	return s
}

// reflection says who may use gRPC server reflection.
func reflection(openReflection, openAPI bool) string {
	if openReflection || openAPI {
		return "for anyone"
	}
	return "for principals"
}

// eventLog describes where events are stored and who else can reach the embedded NATS. A NATS
// URL is printed without its user information, which may be a token or a password.
func eventLog(e config.EventLog) string {
	if e.NATSURL != "" {
		var hosts []string
		for _, raw := range strings.Split(e.NATSURL, ",") {
			u, err := url.Parse(strings.TrimSpace(raw))
			if err != nil || u.Host == "" {
				hosts = append(hosts, "(an address that does not parse, not shown)")
				continue
			}
			hosts = append(hosts, u.Scheme+"://"+u.Host)
		}
		return fmt.Sprintf("external NATS %s (credentials in the URL not shown), %s", strings.Join(hosts, ","), count(e.Replicas, "replica"))
	}
	if e.NATSListen != "" {
		return fmt.Sprintf("embedded NATS, durability %s; NATS clients on %s (%s) with a token", e.Durability, e.NATSListen, reach(e.NATSListen))
	}
	return fmt.Sprintf("embedded NATS, durability %s, in-process only", e.Durability)
}

// count is "1 token" or "3 tokens".
func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// listOr joins l, or is none when l is empty.
func listOr(l []string, none string) string {
	if len(l) == 0 {
		return none
	}
	return strings.Join(l, ", ")
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
