package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/samples"
)

// Environment variables of `hookstream send` (beside the providers' own, which serve reads too).
const (
	// webhookURLEnv is the public door send posts to.
	webhookURLEnv = "HOOKSTREAM_WEBHOOK_URL"
	// devCredentialsEnv is the credentials file of serve --dev.
	devCredentialsEnv = "HOOKSTREAM_DEV_CREDENTIALS"
)

// defaultWebhookURL is the public door of a hookstream serving on this machine (serve --dev).
const defaultWebhookURL = "http://" + config.DevHTTPAddr

// errNotStored is wrapped by send's error when a delivery was not stored (nor a duplicate).
var errNotStored = errors.New("deliveries were not stored")

// sendOptions are the flags of `hookstream send`.
type sendOptions struct {
	list, dup, bearer             bool
	count                         int
	rate                          float64
	file, url, listener           string
	secretEnv, secretFile         string
	hmacSecretEnv, hmacSecretFile string
	timeout                       time.Duration
	hmac                          hmacOptions
}

// sendExample is the help's example of send.
const sendExample = `  # After hookstream serve --dev (its client config names the door and the credentials):
  hookstream send mvmnt                     # one of each of MVMNT's 73 event types
  hookstream send mvmnt SHIPMENT_DELIVERED  # one event type
  hookstream send movement call.finished --count 100 --rate 20
  hookstream send moveapi job.state.completed --dup   # sent twice: stored, then duplicate
  hookstream send --list mvmnt
  # Your own body, to a hookstream elsewhere, the token from a variable you name:
  hookstream send mvmnt --file delivery.json --url https://hooks.example.com --secret-env MVMNT_TOKEN`

// sendCommand is `hookstream send`: signed (or tokened) sample webhooks to a running
// hookstream's public door, as the Stripe CLI's `trigger` does. Secrets come from the
// environment, files or serve --dev's credentials file, never from a flag's value.
func sendCommand(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var o sendOptions
	cmd := &cobra.Command{
		Use:   "send PROVIDER [TYPE]",
		Short: "Send sample webhooks (or your own body) to a running hookstream, signed as the provider signs them",
		Long: `Send posts webhooks to hookstream's public door, authenticated as the provider does it: Move API
signed by Svix (svix-id, svix-timestamp, svix-signature), Movement with ?token= (or --bearer),
MVMNT with x-api-key, a listener with its Bearer token (and an HMAC header with --hmac-header).
PROVIDER is moveapi, movement, mvmnt or listener. Without TYPE it sends one sample of every
event type of the provider; --list names them. Every sample gets new ids and times, so that no
send is a duplicate of another, unless --dup, which sends each delivery a second time with the
same dedup key. One line per delivery: the HTTP status and what became of each event (stored,
duplicate, quarantined); the exit status is 1 when any was not stored.

Credentials, first found: --secret-env NAME or --secret-file FILE; the variable serve reads
(HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS, _MOVEMENT_TOKENS, _MVMNT_TOKENS, the first of the list);
the credentials file of serve --dev named by the client config (dev_credentials) or by
HOOKSTREAM_DEV_CREDENTIALS. The door: --url, HOOKSTREAM_WEBHOOK_URL, the client config's
webhook_url, else ` + defaultWebhookURL + `.`,
		Example: sendExample,
		Args:    cobra.RangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.list {
				return listSamples(stdout, args)
			}
			return o.run(cmd, stdout, getenv, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.list, "list", false, "list the event types with a sample (of PROVIDER, or of every provider)")
	f.IntVar(&o.count, "count", 1, "deliveries of each event type")
	f.Float64Var(&o.rate, "rate", 0, "at most this many deliveries per second (0: as fast as answered)")
	f.BoolVar(&o.dup, "dup", false, "send each delivery twice, with the same dedup key: the second is answered as a duplicate")
	f.StringVar(&o.file, "file", "", "send this body instead of a sample, exactly as it is (- for stdin); not with TYPE")
	f.StringVar(&o.url, "url", "", "the public door of hookstream (env "+webhookURLEnv+"; default: the client config's webhook_url, else "+defaultWebhookURL+")")
	f.StringVar(&o.secretEnv, "secret-env", "", "the variable holding the provider's secret or token (the first of a comma-separated list)")
	f.StringVar(&o.secretFile, "secret-file", "", "the file holding the provider's secret or token")
	f.StringVar(&o.listener, "listener", "", "listener: the listener's id (default: serve --dev's listener)")
	f.BoolVar(&o.bearer, "bearer", false, "movement: send the token as Authorization: Bearer instead of ?token=")
	f.StringVar(&o.hmacSecretEnv, "hmac-secret-env", "", "listener: the variable holding the hmac secret (with --hmac-header)")
	f.StringVar(&o.hmacSecretFile, "hmac-secret-file", "", "listener: the file holding the hmac secret (with --hmac-header)")
	o.hmac.register(f, "hmac-")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long to wait for each answer")
	f.String("client-config", "", "client config file (default $HOOKSTREAM_CLIENT_CONFIG, else ~/.config/hookstream/client.yaml when it exists)")
	return cmd
}

// listSamples prints the event types with a sample: of the provider in args, or of all.
func listSamples(stdout io.Writer, args []string) error {
	providers := samples.Providers()
	if len(args) > 0 {
		providers = args[:1]
	}
	for _, p := range providers {
		types, err := samples.Types(p)
		if err != nil {
			return fmt.Errorf("%w: send --list: %w", config.ErrInvalid, err)
		}
		for _, t := range types {
			fmt.Fprintf(stdout, "%s %s\n", p, t)
		}
	}
	return nil
}

// outgoing is one delivery to send: its body, and the label its line starts with.
type outgoing struct {
	label string
	body  []byte
}

// run sends what args and the flags ask for and prints one line per delivery.
func (o *sendOptions) run(cmd *cobra.Command, stdout io.Writer, getenv func(string) string, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: send needs a PROVIDER: one of %s (send --list names the event types)", config.ErrInvalid, strings.Join(samples.Providers(), ", "))
	}
	if o.count < 1 || o.rate < 0 {
		return fmt.Errorf("%w: send: --count must be at least 1 and --rate not negative", config.ErrInvalid)
	}
	out, err := o.outgoing(cmd.InOrStdin(), args)
	if err != nil {
		return err
	}
	s, err := loadClientSettings(cmd.Flags(), getenv)
	if err != nil {
		return err
	}
	d, err := o.door(args[0], s, getenv)
	if err != nil {
		return err
	}
	limit := rate.NewLimiter(rate.Inf, 1)
	if o.rate > 0 {
		limit = rate.NewLimiter(rate.Limit(o.rate), 1)
	}
	c := &http.Client{Timeout: o.timeout}
	sent, failed := 0, 0
	for _, m := range out {
		id := newSvixID() // a Svix retry keeps its message id
		for range 1 + btoi(o.dup) {
			if err := limit.Wait(cmd.Context()); err != nil {
				return err
			}
			line, ok, err := d.send(cmd.Context(), c, m.body, id)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s %s\n", m.label, line)
			sent++
			if !ok {
				failed++
			}
		}
	}
	if failed > 0 {
		return fmt.Errorf("send: %d of %d %w", failed, sent, errNotStored)
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// outgoing returns the deliveries to send: --count bodies of the sample of each type asked for
// (every type of the provider without one), or --count times the body of --file.
func (o *sendOptions) outgoing(stdin io.Reader, args []string) ([]outgoing, error) {
	provider := args[0]
	types, err := samples.Types(provider)
	if err != nil {
		return nil, fmt.Errorf("%w: send: %w", config.ErrInvalid, err)
	}
	var out []outgoing
	if o.file != "" {
		if len(args) > 1 {
			return nil, fmt.Errorf("%w: send: --file sends its own body: give no TYPE", config.ErrInvalid)
		}
		body, err := readBody(stdin, o.file)
		if err != nil {
			return nil, err
		}
		for range o.count {
			out = append(out, outgoing{label: provider + " " + o.file, body: body})
		}
		return out, nil
	}
	if len(args) > 1 {
		types = args[1:]
	}
	for _, t := range types {
		s, err := samples.Get(provider, t)
		if err != nil {
			return nil, fmt.Errorf("%w: send: %w", config.ErrInvalid, err)
		}
		for range o.count {
			out = append(out, outgoing{label: provider + " " + s.Type, body: s.Body(time.Now())})
		}
	}
	return out, nil
}

// readBody reads the body from file, or from stdin for "-".
func readBody(stdin io.Reader, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(file)
}

// door is a provider's route on the public door, with its credentials.
type door struct {
	provider, url, secret string
	bearer                bool
	hmac                  hmacOptions
	hmacSecret            string
}

// send posts body (Move API: as Svix message id) and returns its line: the status and the
// receipts; ok is false unless every event was stored or a duplicate. Errors are those of the
// request itself (the door cannot be reached).
func (d door) send(ctx context.Context, c *http.Client, body []byte, id string) (line string, ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return "", false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if err := d.authenticate(req, body, id); err != nil {
		return "", false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		// Not the url.Error: its text holds the URL, which carries a Movement token.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return "", false, fmt.Errorf("send: %s: %w", redacted(d.url), err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", false, fmt.Errorf("send: read the answer: %w", err)
	}
	line, ok = answerLine(d.provider, resp, answer)
	return line, ok, nil
}

// authenticate adds the provider's credentials to req.
func (d door) authenticate(req *http.Request, body []byte, id string) error {
	switch d.provider {
	case samples.MoveAPI:
		h, err := svixHeaders(d.secret, id, time.Now(), body)
		if err != nil {
			return fmt.Errorf("%w: send: the Move API secret is not a Svix secret (whsec_<base64>)", config.ErrInvalid)
		}
		for k := range h {
			req.Header.Set(k, h.Get(k))
		}
	case samples.Movement:
		if d.bearer {
			req.Header.Set("Authorization", "Bearer "+d.secret)
		} else {
			q := req.URL.Query()
			q.Set("token", d.secret)
			req.URL.RawQuery = q.Encode()
		}
	case samples.MVMNT:
		req.Header.Set("x-api-key", d.secret)
	case samples.Listener:
		req.Header.Set("Authorization", "Bearer "+d.secret)
		if d.hmac.header != "" {
			sig, err := d.hmac.sign(d.hmacSecret, body)
			if err != nil {
				return err
			}
			req.Header.Set(d.hmac.header, sig)
		}
	}
	return nil
}

// redacted is u without its query (a Movement token travels in it).
func redacted(u string) string {
	base, _, _ := strings.Cut(u, "?")
	return base
}

// providerSecretEnv is the variable serve reads a provider's secrets or tokens from.
var providerSecretEnv = map[string]string{
	samples.MoveAPI:  moveAPISecretsEnv,
	samples.Movement: config.EnvPrefix + "PROVIDERS_MOVEMENT_TOKENS",
	samples.MVMNT:    config.EnvPrefix + "PROVIDERS_MVMNT_TOKENS",
}

// door returns the route of provider on the public door and its credentials. Its errors wrap
// config.ErrInvalid and name variables and files, never values.
func (o *sendOptions) door(provider string, s clientSettings, getenv func(string) string) (door, error) {
	base := firstOf(o.url, getenv(webhookURLEnv), s.WebhookURL, defaultWebhookURL)
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return door{}, fmt.Errorf("%w: send: the webhook URL must be http(s)://host[:port]", config.ErrInvalid)
	}
	devPath := firstOf(getenv(devCredentialsEnv), s.DevCredentials)
	secret, err := o.secretValue(provider, getenv)
	if err != nil {
		return door{}, err
	}
	d := door{provider: provider, bearer: o.bearer, hmac: o.hmac, secret: secret}
	route := "/webhooks/" + provider
	if provider == samples.Listener {
		listener, token, err := o.listenerCredentials(devPath)
		if err != nil {
			return door{}, err
		}
		route = "/webhooks/v1/listeners/" + url.PathEscape(listener) + "/notify"
		if d.secret == "" {
			d.secret = token
		}
		if d.hmac.header != "" {
			if d.hmacSecret, err = secretFrom("--hmac-secret", o.hmacSecretEnv, o.hmacSecretFile, getenv); err != nil {
				return door{}, err
			}
			if d.hmacSecret == "" {
				return door{}, fmt.Errorf("%w: send listener --hmac-header needs --hmac-secret-env NAME or --hmac-secret-file FILE", config.ErrInvalid)
			}
		}
	}
	if d.secret == "" && devPath != "" {
		creds, err := readDevCredentials(devPath)
		if err != nil {
			return door{}, fmt.Errorf("%w: send: the credentials of serve --dev (%s): %w", config.ErrInvalid, devPath, err)
		}
		d.secret = map[string]string{samples.MoveAPI: creds.MoveAPISecret, samples.Movement: creds.MovementToken, samples.MVMNT: creds.MVMNTToken}[provider]
	}
	if d.secret == "" {
		return door{}, fmt.Errorf("%w: send %s: no credentials: set %s, --secret-env NAME or --secret-file FILE, or start hookstream serve --dev", config.ErrInvalid, provider, firstOf(providerSecretEnv[provider], "--secret-env"))
	}
	d.url = strings.TrimSuffix(u.String(), "/") + route
	return d, nil
}

// secretValue returns the secret of provider from --secret-env, --secret-file or the variable
// serve reads; "" when none is set.
func (o *sendOptions) secretValue(provider string, getenv func(string) string) (string, error) {
	secret, err := secretFrom("--secret", o.secretEnv, o.secretFile, getenv)
	if err != nil || secret != "" {
		return secret, err
	}
	if name := providerSecretEnv[provider]; name != "" {
		// The first of the configured secrets: the current one while rotating.
		secret, _, _ = strings.Cut(getenv(name), ",")
	}
	return secret, nil
}

// secretFrom reads a secret from the variable env names or from file (flags named after
// flag); "" when neither is given. The first of a comma-separated list in a variable is taken.
func secretFrom(flag, env, file string, getenv func(string) string) (string, error) {
	switch {
	case env != "" && file != "":
		return "", fmt.Errorf("%w: send: give %s-env or %s-file, not both", config.ErrInvalid, flag, flag)
	case env != "":
		secret, _, _ := strings.Cut(getenv(env), ",")
		if secret == "" {
			return "", fmt.Errorf("%w: send: %s is empty", config.ErrInvalid, env)
		}
		return secret, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%w: send: %s-file: %w", config.ErrInvalid, flag, err)
		}
		if secret := strings.TrimSpace(string(b)); secret != "" {
			return secret, nil
		}
		return "", fmt.Errorf("%w: send: %s is empty", config.ErrInvalid, file)
	}
	return "", nil
}

// listenerCredentials returns the listener to notify, and serve --dev's token for it when it is
// serve --dev's listener ("" otherwise).
func (o *sendOptions) listenerCredentials(devPath string) (id, token string, err error) {
	if devPath == "" {
		if o.listener == "" {
			return "", "", fmt.Errorf("%w: send listener needs --listener ID (or the client config of serve --dev)", config.ErrInvalid)
		}
		return o.listener, "", nil
	}
	creds, err := readDevCredentials(devPath)
	if err != nil {
		if o.listener != "" {
			return o.listener, "", nil
		}
		return "", "", fmt.Errorf("%w: send: the credentials of serve --dev (%s): %w", config.ErrInvalid, devPath, err)
	}
	if o.listener == "" || strings.EqualFold(o.listener, creds.ListenerID) {
		return creds.ListenerID, creds.ListenerToken, nil
	}
	return o.listener, "", nil
}

// firstOf returns the first of vs that is not empty.
func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
