package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hookstream/hookstream/server/config"
)

// maxAnswerBytes is the largest answer a client command accepts: two entry budgets at
// nats-server's largest max_payload (64 MiB), with room for the rest of the message.
const maxAnswerBytes = 2*64<<20 + 1<<20

// errClient is wrapped by the errors of client settings that cannot be used.
var errClient = errors.New("client settings")

// clientSettings say how a client command reaches the internal gRPC API and who it is. Each
// comes from, in increasing precedence, the client config file, the environment and a flag.
type clientSettings struct {
	// Server is the internal gRPC address (default 127.0.0.1:9090).
	Server string `koanf:"server"`
	// Token is a bearer token (environment or client config file only: a flag would show it in
	// the process list).
	Token string `koanf:"token"`
	// TokenFile holds a bearer token.
	TokenFile string `koanf:"token_file"`
	// CAFile verifies the server's certificate; setting it turns TLS on.
	CAFile string `koanf:"ca_file"`
	// CertFile and KeyFile are a client certificate (mTLS).
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
	// TLS turns TLS on with the system's roots (without a CA file).
	TLS bool `koanf:"tls"`
	// WebhookURL is the public door `hookstream send` posts to, e.g. "http://127.0.0.1:8080".
	WebhookURL string `koanf:"webhook_url"`
	// DevCredentials is the credentials file of `serve --dev` (data_dir/dev-credentials.yaml),
	// where `hookstream send` finds the webhook credentials no variable gives.
	DevCredentials string `koanf:"dev_credentials"`
}

// clientFlags are the flags and environment variables of clientSettings.
var clientFlags = []struct{ flag, env, key, usage string }{
	{"server", "HOOKSTREAM_SERVER", "server", "internal gRPC address of hookstream"},
	{"token-file", "HOOKSTREAM_TOKEN_FILE", "token_file", "file holding a bearer token (or env HOOKSTREAM_TOKEN)"},
	{"ca-file", "HOOKSTREAM_CA_FILE", "ca_file", "CA (PEM) of the server's certificate; turns TLS on"},
	{"cert-file", "HOOKSTREAM_CERT_FILE", "cert_file", "client certificate (PEM), for mTLS"},
	{"key-file", "HOOKSTREAM_KEY_FILE", "key_file", "client certificate's key (PEM)"},
}

// registerClientFlags adds the client flags to fs. No flag takes a secret's value.
func registerClientFlags(fs *pflag.FlagSet) {
	fs.String("client-config", "", "client config file (default $HOOKSTREAM_CLIENT_CONFIG, else ~/.config/hookstream/client.yaml when it exists)")
	for _, f := range clientFlags {
		fs.String(f.flag, "", f.usage+" (env "+f.env+")")
	}
	fs.Bool("tls", false, "use TLS with the system's roots (env HOOKSTREAM_TLS=true)")
}

// defaultClientConfig is where the client config file is looked for by default: "" when
// there is none.
func defaultClientConfig(getenv func(string) string) string {
	if p := getenv("HOOKSTREAM_CLIENT_CONFIG"); p != "" {
		return p
	}
	p := clientConfigPath(getenv)
	if _, err := os.Stat(p); p == "" || err != nil {
		return ""
	}
	return p
}

// clientConfigPath is the client config file of this user, whether it exists or not:
// $HOOKSTREAM_CLIENT_CONFIG, else $XDG_CONFIG_HOME/hookstream/client.yaml, else
// ~/.config/hookstream/client.yaml; "" when HOME is not set either.
func clientConfigPath(getenv func(string) string) string {
	if p := getenv("HOOKSTREAM_CLIENT_CONFIG"); p != "" {
		return p
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return ""
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "hookstream", "client.yaml")
}

// loadClientSettings reads the settings of a client command. Unknown keys in the file are an
// error; errors never contain a token.
func loadClientSettings(fs *pflag.FlagSet, getenv func(string) string) (clientSettings, error) {
	s := clientSettings{Server: "127.0.0.1:9090"}
	path, _ := fs.GetString("client-config")
	if path == "" {
		path = defaultClientConfig(getenv)
	}
	if path != "" {
		k := koanf.New(".")
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return s, fmt.Errorf("%w: %s: %w", errClient, path, err)
		}
		if err := k.UnmarshalWithConf("", &s, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: strictDecoder(&s)}); err != nil {
			return s, fmt.Errorf("%w: %s: %w", errClient, path, err)
		}
	}
	set := map[string]*string{"server": &s.Server, "token_file": &s.TokenFile, "ca_file": &s.CAFile, "cert_file": &s.CertFile, "key_file": &s.KeyFile}
	for _, f := range clientFlags {
		if v, _ := fs.GetString(f.flag); v != "" {
			*set[f.key] = v
		} else if v := getenv(f.env); v != "" {
			*set[f.key] = v
		}
	}
	if tok := getenv("HOOKSTREAM_TOKEN"); tok != "" {
		s.Token = tok
	}
	if v, _ := fs.GetBool("tls"); v || getenv("HOOKSTREAM_TLS") == "true" {
		s.TLS = true
	}
	return s, nil
}

// token returns the bearer token of s, "" for none.
func (s clientSettings) token() (string, error) {
	if s.TokenFile != "" {
		b, err := os.ReadFile(s.TokenFile)
		if err != nil {
			return "", fmt.Errorf("%w: token file: %w", errClient, err)
		}
		if tok := strings.TrimSpace(string(b)); tok != "" {
			return tok, nil
		}
		return "", fmt.Errorf("%w: token file %s is empty", errClient, s.TokenFile)
	}
	return s.Token, nil
}

// transport returns the transport credentials of s: TLS with a CA file, a client certificate or
// the tls setting; plaintext otherwise, which only a loopback address may use.
func (s clientSettings) transport() (credentials.TransportCredentials, error) {
	if s.CAFile == "" && s.CertFile == "" && !s.TLS {
		if !config.Loopback(s.Server) {
			return nil, fmt.Errorf("%w: %s is not a loopback address: set --ca-file or --tls, credentials never travel in plaintext", errClient, s.Server)
		}
		return insecure.NewCredentials(), nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errClient, err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: %s holds no PEM certificate", errClient, s.CAFile)
		}
	}
	if s.CertFile != "" || s.KeyFile != "" {
		pair, err := tls.LoadX509KeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %w", errClient, err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return credentials.NewTLS(tc), nil
}

// bearer is a per-call bearer token.
type bearer string

func (b bearer) GetRequestMetadata(_ context.Context, _ ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity allows a token in plaintext only to loopback (transport refuses
// plaintext elsewhere).
func (bearer) RequireTransportSecurity() bool { return false }

// serviceClient dials the internal API (dialClient) and returns newClient's client of it, with
// the function that closes the connection.
func serviceClient[C any](cmd *cobra.Command, getenv func(string) string, newClient func(grpc.ClientConnInterface) C) (C, func(), error) {
	conn, err := dialClient(cmd, getenv)
	if err != nil {
		var none C
		return none, nil, err
	}
	return newClient(conn), func() { conn.Close() }, nil
}

// dialClient connects a client command to the internal gRPC API.
func dialClient(cmd *cobra.Command, getenv func(string) string) (*grpc.ClientConn, error) {
	s, err := loadClientSettings(cmd.Flags(), getenv)
	if err != nil {
		return nil, err
	}
	creds, err := s.transport()
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		// gRPC's default of 4 MiB is less than one answer can hold: a quarantine entry or dead
		// letter of a body at the largest limit (eventlog.MaxBodyLimit) with its event, twice
		// in a RedriveEntry answer. The server bounds its answers; this only has to admit them.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxAnswerBytes)),
	}
	tok, err := s.token()
	if err != nil {
		return nil, err
	}
	if tok != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(tok)))
	}
	return grpc.NewClient(s.Server, opts...)
}

// strictDecoder decodes into out, refusing keys out has no field for.
func strictDecoder(out any) *mapstructure.DecoderConfig {
	return &mapstructure.DecoderConfig{ErrorUnused: true, WeaklyTypedInput: true, Result: out, TagName: "koanf"}
}
