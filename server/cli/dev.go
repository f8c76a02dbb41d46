package cli

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/google/uuid"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/spf13/pflag"

	"github.com/hookstream/hookstream/server/config"
)

// devCredentialsFile is the file, in the data directory, that keeps the credentials of
// `serve --dev` from one start to the next.
const devCredentialsFile = "dev-credentials.yaml"

// devClientMarker is the first line of the client config files `serve --dev` writes: a file
// without it is the user's, and is never overwritten.
const devClientMarker = "# written by hookstream serve --dev"

// devConfig makes cfg what `serve --dev` serves: loopback only (config.DevListen), with the
// credentials kept in the data directory (generated on the first start) for the routes that
// have none. Its errors wrap config.ErrInvalid when the configuration cannot be used.
func devConfig(cfg config.Config) (config.Config, config.DevCredentials, error) {
	cfg, err := config.DevListen(cfg)
	if err != nil {
		return cfg, config.DevCredentials{}, err
	}
	d, err := devCredentials(filepath.Join(cfg.DataDir, devCredentialsFile))
	if err != nil {
		return cfg, d, err
	}
	cfg, err = config.WithDev(cfg, d)
	return cfg, d, err
}

// devCredentials reads the credentials kept at path, or generates them and writes them there
// (mode 0600) when there is no file. Errors never quote the file's content.
func devCredentials(path string) (config.DevCredentials, error) {
	d, err := readDevCredentials(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newDevCredentials(path)
	}
	return d, err
}

// readDevCredentials reads the credentials kept at path by `serve --dev`. Errors wrap
// fs.ErrNotExist when there is no file, config.ErrInvalid when it is not one of serve --dev's,
// and never quote the file's content.
func readDevCredentials(path string) (config.DevCredentials, error) {
	var d config.DevCredentials
	b, err := os.ReadFile(path)
	if err != nil {
		return d, err
	}
	invalid := fmt.Errorf("%w: %s is not a credentials file of serve --dev: remove it to generate new credentials", config.ErrInvalid, path)
	m, err := yaml.Parser().Unmarshal(b)
	if err != nil {
		return d, invalid
	}
	dec, err := mapstructure.NewDecoder(strictDecoder(&d))
	if err != nil {
		return d, err
	}
	if err := dec.Decode(m); err != nil || d.MoveAPISecret == "" || d.MovementToken == "" || d.MVMNTToken == "" || d.ListenerID == "" || d.ListenerToken == "" {
		return d, invalid
	}
	return d, nil
}

// newDevCredentials generates credentials and writes them to path, which must not exist.
func newDevCredentials(path string) (config.DevCredentials, error) {
	d := config.DevCredentials{
		MoveAPISecret: "whsec_" + base64.StdEncoding.EncodeToString(random(24)),
		MovementToken: "dev_movement_" + hex.EncodeToString(random(16)),
		MVMNTToken:    "dev_mvmnt_" + hex.EncodeToString(random(16)),
		ListenerID:    uuid.NewString(),
		ListenerToken: "dev_listener_" + hex.EncodeToString(random(16)),
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return d, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return d, err
	}
	_, err = fmt.Fprintf(f, "# hookstream serve --dev: generated credentials, reused by the next --dev start. Remove this file for new ones.\n"+
		"moveapi_secret: %s\nmovement_token: %s\nmvmnt_token: %s\nlistener_id: %s\nlistener_token: %s\n",
		d.MoveAPISecret, d.MovementToken, d.MVMNTToken, d.ListenerID, d.ListenerToken)
	return d, errors.Join(err, f.Close())
}

// random returns n bytes from crypto/rand (which never fails).
func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// writeDevClientConfig writes, at the user's client config path, a client config naming the
// internal gRPC address grpcAddr, the public webhook address httpAddr and the credentials file
// credsPath (for `hookstream send`), unless a file there was not written by `serve --dev`. It
// returns what it did, as a line for the user.
func writeDevClientConfig(getenv func(string) string, grpcAddr, httpAddr, credsPath string) (string, error) {
	path := clientConfigPath(getenv)
	if path == "" {
		return "client config: not written (neither HOME nor XDG_CONFIG_HOME is set): pass --server " + grpcAddr, nil
	}
	if f, err := os.Open(path); err == nil {
		first, _ := bufio.NewReader(f).ReadString('\n')
		f.Close()
		if strings.TrimSpace(first) != devClientMarker {
			return "client config: left " + path + " alone (not written by serve --dev): pass --server " + grpcAddr + " to the commands below", nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	credsPath = absPath(credsPath) // the file is read from wherever hookstream send runs
	content := devClientMarker + ": the internal API is open on loopback, no credentials needed.\nserver: " + grpcAddr + "\n" +
		"# hookstream send: the public door, and the webhook credentials serve --dev generated.\nwebhook_url: http://" + httpAddr + "\ndev_credentials: " + credsPath + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return "", err
	}
	return "client config: wrote " + path + " (server " + grpcAddr + ")", nil
}

// printDevUsage tells the developer who asked for --dev how to send each provider a webhook with
// the credentials in use, and how to watch the events. This is the one place where hookstream
// prints secrets, on purpose: they are dev mode's own, on loopback. A route whose credentials
// were configured (and so are not d's) is named without a command.
func printDevUsage(w io.Writer, cfg config.Config, d config.DevCredentials, httpAddr, clientNote string) {
	base := "http://" + httpAddr
	fmt.Fprintf(w, "\nhookstream serve --dev: loopback only; credentials in %s (reused by the next --dev start)\n%s\n\n",
		filepath.Join(cfg.DataDir, devCredentialsFile), clientNote)
	fmt.Fprintf(w, "Send sample webhooks from another shell (from the clone's root), signed with these credentials:\n"+
		"go run ./cmd/hookstream send mvmnt        # one of each MVMNT event type; also moveapi, movement, listener\n"+
		"go run ./cmd/hookstream send --list       # every provider's event types\n"+
		"# (without the client config: HOOKSTREAM_DEV_CREDENTIALS=%s HOOKSTREAM_WEBHOOK_URL=%s go run ./cmd/hookstream send mvmnt)\n\n",
		absPath(filepath.Join(cfg.DataDir, devCredentialsFile)), base)
	fmt.Fprintln(w, "Or by hand, with curl:")
	configured := func(name string) { fmt.Fprintf(w, "# %s: configured credentials are in use, not dev mode's\n", name) }
	if slices.Contains(cfg.Providers.MVMNT.Tokens, d.MVMNTToken) {
		fmt.Fprintf(w, "# MVMNT\ncurl -i %s/webhooks/mvmnt -H 'x-api-key: %s' -H 'content-type: application/json' \\\n  -d '%s'\n", base, d.MVMNTToken, devMVMNTBody)
	} else {
		configured("MVMNT")
	}
	if slices.Contains(cfg.Providers.Movement.Tokens, d.MovementToken) {
		fmt.Fprintf(w, "# Movement\ncurl -i '%s/webhooks/movement?token=%s' -H 'content-type: application/json' \\\n  -d @server/convert/testdata/movement/call_finished.json\n", base, d.MovementToken)
	} else {
		configured("Movement")
	}
	if slices.Contains(cfg.Providers.MoveAPI.Secrets, d.MoveAPISecret) {
		fmt.Fprintf(w, "# Move API (Svix): hookstream sign prints the signature headers\nbody=server/convert/testdata/moveapi/job_state_completed.json\n"+
			"eval curl -i %s/webhooks/moveapi -H \"'content-type: application/json'\" --data-binary @$body \\\n  $(MOVEAPI_SECRET='%s' go run ./cmd/hookstream sign --secret-env MOVEAPI_SECRET --file $body)\n", base, d.MoveAPISecret)
	} else {
		configured("Move API")
	}
	if slices.Contains(cfg.Listeners[d.ListenerID].Tokens, d.ListenerToken) {
		fmt.Fprintf(w, "# Listener\ncurl -i %s/webhooks/v1/listeners/%s/notify -H 'Authorization: Bearer %s' -H 'content-type: application/json' \\\n  -d '%s'\n", base, d.ListenerID, d.ListenerToken, devListenerBody)
	} else {
		configured("Listener")
	}
	fmt.Fprintln(w, "\nWatch them arrive, typed:\ngo run ./cmd/hookstream tail --from all")
}

// The sample bodies of the printed commands: documented payloads (../shared/providers/).
const (
	devMVMNTBody    = `{"sentAt":"2025-01-15T14:30:00Z","events":[{"event":"SHIPMENT_DELIVERED","timestamp":"2025-01-15T14:30:00Z","data":{"id":"660e8400-e29b-41d4-a716-446655440000","friendlyId":"SHP-12345","key":"ERP-SHIP-789"},"diff":null}]}`
	devListenerBody = `{"event_type":"incident.created","data":{"incident_id":"INC0123456","priority":"High"}}`
)

// absPath is p made absolute, or p when it cannot be.
func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// registerDevFlag adds --dev to fs (config.Load ignores it: it names no key).
func registerDevFlag(fs *pflag.FlagSet) {
	fs.Bool("dev", false, "development mode: loopback only (http.addr defaults to "+config.DevHTTPAddr+"), credentials generated for every provider and a listener and kept in the data dir, a client config written, usage printed")
}
