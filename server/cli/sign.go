package cli

import (
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/hookstream/hookstream/server/config"
	"github.com/hookstream/hookstream/server/verify"
)

// moveAPISecretsEnv holds the Move API's Svix secrets (comma-separated), for serve and for sign.
const moveAPISecretsEnv = config.EnvPrefix + "PROVIDERS_MOVEAPI_SECRETS"

// signOptions are the flags of `hookstream sign`.
type signOptions struct {
	scheme, secret, secretEnv, file, id string
	hmacOptions
}

// hmacOptions are a listener's hmac settings, as in its configuration (listeners.<uuid>.hmac):
// the flags of `sign --scheme hmac` and of `send listener --hmac-header`.
type hmacOptions struct {
	header, algorithm, prefix, encoding string
}

// register adds the hmac settings to fs as flags named prefix+"header" and so on.
func (o *hmacOptions) register(fs *pflag.FlagSet, prefix string) {
	fs.StringVar(&o.header, prefix+"header", "", "hmac: the header carrying the signature (hmac.header), e.g. X-Hub-Signature-256")
	fs.StringVar(&o.algorithm, prefix+"algorithm", config.DefaultHMACAlgorithm, "hmac: sha256 or sha512 (hmac.algorithm)")
	fs.StringVar(&o.prefix, prefix+"prefix", "", "hmac: the text before the digest (hmac.prefix), e.g. sha256=")
	fs.StringVar(&o.encoding, prefix+"encoding", config.DefaultHMACEncoding, "hmac: hex or base64 (hmac.encoding)")
}

// sign returns the value of the signature header of body.
func (o *hmacOptions) sign(secret string, body []byte) (string, error) {
	sig, err := verify.SignHMAC(o.algorithm, o.prefix, o.encoding, secret, body)
	if err != nil {
		// Not verify's error, which quotes the value: it may be a secret given to the wrong flag.
		return "", fmt.Errorf("%w: hmac: want algorithm sha256 or sha512 and encoding hex or base64", config.ErrInvalid)
	}
	return sig, nil
}

// signExample is the help's example of sign.
const signExample = `  # Move API (Svix): the secret from HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS
  eval curl localhost:8080/webhooks/moveapi --data-binary @body.json $(hookstream sign --file body.json)
  # A listener's HMAC, the body from stdin, the secret from a variable you name
  hookstream sign --scheme hmac --header X-Hub-Signature-256 --prefix sha256= --secret-env LISTENER_HMAC_SECRET < body.json`

// signCommand is `hookstream sign`: the signature headers of a body, to send a Move API webhook
// (Svix) or a listener notification (HMAC) by hand. The secret is read from the environment when
// the command runs, never as a flag's default: help would print it.
func signCommand(stdout io.Writer, getenv func(string) string) *cobra.Command {
	var o signOptions
	cmd := &cobra.Command{
		Use:     "sign",
		Short:   "Print the signature headers of a body as curl -H flags: Svix (Move API) or a listener's HMAC",
		Example: signExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := o.secretValue(getenv)
			if err != nil {
				return err
			}
			body, err := o.body(cmd.InOrStdin())
			if err != nil {
				return err
			}
			switch o.scheme {
			case "svix":
				return signSvix(stdout, secret, o.id, body)
			default: // "hmac", checked by secretValue
				sig, err := o.sign(secret, body)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "-H '%s: %s'\n", o.header, sig)
				return nil
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.scheme, "scheme", "svix", "svix (Move API) or hmac (a listener's hmac settings)")
	f.StringVar(&o.secretEnv, "secret-env", "", "the environment variable holding the secret (the first of a comma-separated list); default for svix: "+moveAPISecretsEnv)
	f.StringVar(&o.secret, "secret", "", "the secret itself (shows in ps and shell history: prefer --secret-env)")
	f.StringVar(&o.file, "file", "-", "the body to sign, exactly as it will be sent; - for stdin")
	f.StringVar(&o.id, "id", "", "svix: the message id (default: a new one)")
	o.register(f, "")
	return cmd
}

// secretValue checks the scheme's flags and returns the secret: --secret, else the first entry of
// the variable --secret-env names (for svix, of moveAPISecretsEnv by default). Its errors wrap
// config.ErrInvalid and name variables, never values.
func (o *signOptions) secretValue(getenv func(string) string) (string, error) {
	name := o.secretEnv
	switch o.scheme {
	case "svix":
		if name == "" {
			name = moveAPISecretsEnv
		}
	case "hmac":
		if o.header == "" {
			return "", fmt.Errorf("%w: sign --scheme hmac needs --header, the listener's hmac.header", config.ErrInvalid)
		}
	default:
		// The value is not quoted: it may be a secret given to the wrong flag.
		return "", fmt.Errorf("%w: sign --scheme: want svix or hmac", config.ErrInvalid)
	}
	if o.secret != "" {
		return o.secret, nil
	}
	if name == "" {
		return "", fmt.Errorf("%w: sign --scheme hmac needs --secret-env NAME, the variable holding the listener's hmac secret", config.ErrInvalid)
	}
	// The first of the configured secrets: the current one while rotating.
	secret, _, _ := strings.Cut(getenv(name), ",")
	if secret == "" {
		return "", fmt.Errorf("%w: sign needs a secret in %s (or --secret-env NAME)", config.ErrInvalid, name)
	}
	return secret, nil
}

// body reads the body from --file, or from stdin for "-".
func (o *signOptions) body(stdin io.Reader) ([]byte, error) {
	if o.file == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(o.file)
}

// signSvix prints the three Svix headers of body, signed now with secret.
func signSvix(stdout io.Writer, secret, id string, body []byte) error {
	if id == "" {
		id = newSvixID()
	}
	h, err := svixHeaders(secret, id, time.Now(), body)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "-H 'svix-id: %s' -H 'svix-timestamp: %s' -H 'svix-signature: %s'\n", h.Get("svix-id"), h.Get("svix-timestamp"), h.Get("svix-signature"))
	return nil
}

// svixHeaders returns the Svix headers of message id with body, signed at now with secret.
func svixHeaders(secret, id string, now time.Time, body []byte) (http.Header, error) {
	sig, err := verify.Sign(secret, id, now, body)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("svix-id", id)
	h.Set("svix-timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("svix-signature", sig)
	return h, nil
}

// newSvixID returns a new Svix message id, "msg_" and 24 random hex digits.
func newSvixID() string { return "msg_" + hex.EncodeToString(random(12)) }
