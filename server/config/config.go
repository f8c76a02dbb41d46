// Package config loads hookstream's configuration from, in increasing precedence, built-in
// defaults, a YAML file, environment variables and command-line flags.
//
// Every key has the same name everywhere: the YAML path `grpc.addr` is the flag `--grpc-addr`
// and the environment variable `HOOKSTREAM_GRPC_ADDR`. Loading is done with koanf.
package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/google/uuid"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/providers/structs"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"

	"github.com/hookstream/hookstream/server/logs"
)

// EnvPrefix starts the name of every environment variable hookstream reads.
const EnvPrefix = "HOOKSTREAM_"

// ErrInvalid is wrapped by every error Load returns for a value that cannot be used.
var ErrInvalid = errors.New("invalid configuration")

// Config is hookstream's whole configuration. The zero value is not usable: start from Default.
type Config struct {
	// HTTP is the public listener: webhooks, /healthz and /readyz.
	HTTP HTTP `koanf:"http"`
	// GRPC is the internal listener for the gRPC services, gRPC health and reflection.
	GRPC GRPC `koanf:"grpc"`
	// API is the internal listener for the HTTP mapping of EventService and QuarantineService,
	// and /metrics.
	API API `koanf:"api"`
	// Auth says who may call the internal API (gRPC and API) and what each may do.
	Auth Auth `koanf:"auth"`
	// DataDir holds everything hookstream stores on disk (the embedded event log).
	DataDir string `koanf:"data_dir"`
	// ShutdownTimeout bounds how long a graceful shutdown waits for in-flight requests and
	// streams before closing them.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// ShutdownLameDuck is how long, on shutdown, hookstream keeps serving while /readyz and gRPC
	// health already say it is not ready, so that a load balancer stops sending it traffic
	// before it stops accepting. Default 0 (nothing to tell); a few seconds behind a load
	// balancer. ShutdownTimeout counts after it.
	ShutdownLameDuck time.Duration `koanf:"shutdown_lame_duck"`
	// EventLog configures the event log (NATS JetStream).
	EventLog EventLog `koanf:"eventlog"`
	// Providers holds the credentials of each provider's route.
	Providers Providers `koanf:"providers"`
	// Listeners are the Moveworks-style webhook listeners, by id (a UUID).
	Listeners map[string]Listener `koanf:"listeners"`
	// Limits caps what internal callers can hold of the shared resources.
	Limits Limits `koanf:"limits"`
	// Log configures hookstream's own log.
	Log Log `koanf:"log"`
}

// Log configures hookstream's own log: JSON lines on standard error.
type Log struct {
	// Level is the least level written: "debug", "info", "warn" or "error". Default "info".
	Level string `koanf:"level"`
}

// Limits caps what internal callers can hold: a call over a limit is answered
// RESOURCE_EXHAUSTED (HTTP 429) and logged.
type Limits struct {
	// MaxStreamsPerPrincipal is how many Tail and Subscribe streams one principal may hold open
	// at once (all callers count as one principal when none is configured). Default 64.
	MaxStreamsPerPrincipal int `koanf:"max_streams_per_principal"`
	// MaxStreams is how many Tail and Subscribe streams may be open at once, in all. Default 512.
	MaxStreams int `koanf:"max_streams"`
	// MaxGroups is how many durable consumer groups may exist; subscribing to a new one beyond
	// it fails until an admin deletes one (DeleteGroup) or one expires. Default 256.
	MaxGroups int `koanf:"max_groups"`
	// GroupIdleExpiry deletes a consumer group no stream has read for this long, with its
	// position. Default 720 h (30 days); 0 keeps groups until deleted.
	GroupIdleExpiry time.Duration `koanf:"group_idle_expiry"`
}

// Providers holds the credentials of each provider's route. A provider with none accepts nothing
// (401) unless it is marked insecure.
type Providers struct {
	// MoveAPI: Svix signing secrets ("whsec_…"), several while rotating.
	MoveAPI MoveAPI `koanf:"moveapi"`
	// Movement: shared secrets accepted as ?token=, Bearer or Basic password.
	Movement Tokens `koanf:"movement"`
	// MVMNT: x-api-key tokens (current and previous).
	MVMNT Tokens `koanf:"mvmnt"`
}

// MoveAPI configures the Move API route.
type MoveAPI struct {
	// Secrets are the Svix endpoint secrets; env HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS, comma-separated.
	Secrets []string `koanf:"secrets"`
	// Tolerance is the accepted clock skew of svix-timestamp, both ways. Default 5 min.
	Tolerance time.Duration `koanf:"tolerance"`
	// Insecure accepts requests without checking them. Never in production.
	Insecure bool `koanf:"insecure"`
}

// Tokens configures a route authenticated by shared tokens.
type Tokens struct {
	// Tokens accepted; env HOOKSTREAM_PROVIDERS_<NAME>_TOKENS, comma-separated.
	Tokens []string `koanf:"tokens"`
	// Insecure accepts requests without checking them. Never in production.
	Insecure bool `koanf:"insecure"`
}

// EventLog configures the event log.
type EventLog struct {
	// NATSURL is an external NATS server or cluster (comma-separated URLs). Empty (the default):
	// a nats-server embedded in the process, storing under DataDir.
	NATSURL string `koanf:"nats_url"`
	// NATSListen makes the embedded server accept NATS clients on host:port. Empty (the
	// default): in-process only. It needs NATSListenToken.
	NATSListen string `koanf:"nats_listen"`
	// NATSListenToken is the token NATS clients of the embedded server must present (env
	// HOOKSTREAM_EVENTLOG_NATS_LISTEN_TOKEN); required with NATSListen.
	NATSListenToken string `koanf:"nats_listen_token"`
	// Durability is "always" (default: fsync before acknowledging) or "os" (acknowledge once
	// written to the OS). Embedded server only.
	Durability string `koanf:"durability"`
	// Replicas of the streams on a cluster. Default 1.
	Replicas int `koanf:"replicas"`
	// MaxAge is how long events are kept. Default 7 days; 0 keeps them until MaxBytes.
	MaxAge time.Duration `koanf:"max_age"`
	// MaxBytes caps the events stream; the oldest go first. Default 0: no cap.
	MaxBytes int64 `koanf:"max_bytes"`
	// DuplicateWindow is how long a dedup key is remembered. Default 48 h, longer than Svix's
	// ~28 h retry horizon.
	DuplicateWindow time.Duration `koanf:"duplicate_window"`
	// QuarantineMaxAge is how long quarantine entries (rejected payloads, dead letters) are
	// kept. Default 30 days.
	QuarantineMaxAge time.Duration `koanf:"quarantine_max_age"`
	// CommitWorkers is how many group commits may run at once. Default 2.
	CommitWorkers int `koanf:"commit_workers"`
	// StartTimeout is how long start-up keeps retrying, with backoff, an external NATS server or
	// cluster that cannot be reached or does not answer yet (a cluster still electing its
	// leaders). Default 60 s.
	StartTimeout time.Duration `koanf:"start_timeout"`
}

// Listener configures one webhook listener.
type Listener struct {
	// DefaultType is the event type of notifications without "event_type". Default
	// "notification".
	DefaultType string `koanf:"default_type"`
	// Tokens are the Bearer tokens accepted (opaque strings).
	Tokens []string `koanf:"tokens"`
	// HMAC, when its secrets are set, also requires an HMAC of the raw body in a header.
	HMAC ListenerHMAC `koanf:"hmac"`
	// DedupHeader names a request header carrying the notification's unique id. Empty: the
	// dedup key is a hash of the body.
	DedupHeader string `koanf:"dedup_header"`
	// Insecure accepts requests without checking them. Never in production.
	Insecure bool `koanf:"insecure"`
}

// ListenerHMAC configures a listener's body signature.
type ListenerHMAC struct {
	// Header carrying the signature, e.g. "X-Hub-Signature-256".
	Header string `koanf:"header"`
	// Algorithm: "sha256" (default) or "sha512".
	Algorithm string `koanf:"algorithm"`
	// Prefix before the digest, e.g. "sha256=". May be empty.
	Prefix string `koanf:"prefix"`
	// Encoding of the digest: "hex" (default) or "base64".
	Encoding string `koanf:"encoding"`
	// Secrets, several while rotating.
	Secrets []string `koanf:"secrets"`
}

// HTTP configures the HTTP listener.
type HTTP struct {
	// Addr is the address to listen on, host:port. Default ":8080".
	Addr string `koanf:"addr"`
	// BodyLimit is the largest webhook body accepted, in bytes. Default 1 MiB.
	BodyLimit int64 `koanf:"body_limit"`
	// MaxInFlight is how many webhook requests are handled at once; more are answered 429 with
	// Retry-After. Default 2048.
	MaxInFlight int `koanf:"max_in_flight"`
	// MaxUnverifiedInFlight is how many webhook requests whose headers prove nothing yet (the
	// Move API's Svix signature is over the body) are read and checked at once, apart from
	// MaxInFlight; more are answered 429 with Retry-After. Default 256.
	MaxUnverifiedInFlight int `koanf:"max_unverified_in_flight"`
	// BodyReadTimeout bounds the reading of a webhook body; a body still arriving then is
	// answered 408. Default 10 s.
	BodyReadTimeout time.Duration `koanf:"body_read_timeout"`
	// TLS serves the webhooks over HTTPS. Default: plain HTTP (behind a TLS-terminating proxy).
	TLS TLS `koanf:"tls"`
}

// TLS is a listener's certificate and key (PEM files), reloaded when they change. Both empty:
// no TLS.
type TLS struct {
	CertFile string `koanf:"cert_file"`
	KeyFile  string `koanf:"key_file"`
}

// API configures the internal HTTP listener.
type API struct {
	// Addr is the address to listen on, host:port. Default "127.0.0.1:9091": loopback, like the
	// gRPC listener.
	Addr string `koanf:"addr"`
	// TLS serves the API over HTTPS; with auth.client_ca_file, clients may present
	// certificates.
	TLS TLS `koanf:"tls"`
}

// Auth configures the authentication of internal callers. With no principal, the internal API
// is open and must listen on loopback only: hookstream refuses to start otherwise.
type Auth struct {
	// ClientCAFile is the CA (PEM) client certificates are verified against, on the internal
	// listeners with TLS. Empty: no client certificates.
	ClientCAFile string `koanf:"client_ca_file"`
	// JWT accepts JWT bearer tokens of one issuer, verified against its keys; a token's subject
	// names its principal (principals.<name>.jwt_subjects). Off unless jwks_file is set.
	JWT JWT `koanf:"jwt"`
	// Principals by name: the callers of the internal API and their permissions.
	Principals map[string]Principal `koanf:"principals"`
}

// JWT configures the verification of JWT bearer tokens.
type JWT struct {
	// JWKSFile is the issuer's JSON Web Key Set (public keys; RSA, ECDSA or Ed25519), read again
	// when it changes.
	JWKSFile string `koanf:"jwks_file"`
	// Issuer is the "iss" claim every token must carry; required with jwks_file.
	Issuer string `koanf:"issuer"`
	// Audience must be one of a token's "aud" values; required with jwks_file.
	Audience string `koanf:"audience"`
}

// Principal is one caller of the internal API.
type Principal struct {
	// Tokens are the SHA-256 digests of its bearer tokens, "sha256:<64 hex digits>" (printf %s
	// "$TOKEN" | sha256sum): configurations hold no token itself.
	Tokens []string `koanf:"tokens"`
	// TokenFiles name files each holding one bearer token (surrounding whitespace ignored).
	TokenFiles []string `koanf:"token_files"`
	// TokenEnv names environment variables each holding one bearer token.
	TokenEnv []string `koanf:"token_env"`
	// JWTSubjects are the subjects ("sub" claim) of the JWTs that are this principal (needs
	// auth.jwt).
	JWTSubjects []string `koanf:"jwt_subjects"`
	// Certificates are the client certificate identities that are this principal: "CN=name",
	// "DNS:host", "URI:uri" or "EMAIL:address".
	Certificates []string `koanf:"certificates"`
	// Permissions: "consume" (Subscribe), "read" (Tail, GetEvent, ListEvents), "admin"
	// (QuarantineService, consumer groups), "produce" (WebhookService over gRPC).
	Permissions []string `koanf:"permissions"`
	// Groups it may consume, as patterns ("billing-*"). Empty: any group.
	Groups []string `koanf:"groups"`
	// Providers it may consume and produce ("moveapi", "movement", "mvmnt", "listener"). Empty:
	// every provider.
	Providers []string `koanf:"providers"`
}

// GRPC configures the gRPC listener.
type GRPC struct {
	// Addr is the address to listen on, host:port. Default "127.0.0.1:9090": loopback, because
	// no principal is configured by default.
	Addr string `koanf:"addr"`
	// TLS serves gRPC over TLS; with auth.client_ca_file, clients may present certificates.
	TLS TLS `koanf:"tls"`
	// OpenReflection serves gRPC server reflection to unauthenticated callers too. Default
	// false: reflection is for authenticated principals.
	OpenReflection bool `koanf:"open_reflection"`
	// MaxResponseBytes bounds each message of a Subscribe or Tail stream and each page of
	// ListEvents, in bytes; an event larger than that goes out alone. Default 1 MiB.
	MaxResponseBytes int `koanf:"max_response_bytes"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		HTTP:            HTTP{Addr: ":8080", BodyLimit: 1 << 20, MaxInFlight: 2048, MaxUnverifiedInFlight: 256, BodyReadTimeout: 10 * time.Second},
		Providers:       Providers{MoveAPI: MoveAPI{Tolerance: 5 * time.Minute}},
		GRPC:            GRPC{Addr: "127.0.0.1:9090", MaxResponseBytes: 1 << 20},
		API:             API{Addr: "127.0.0.1:9091"},
		DataDir:         "data",
		ShutdownTimeout: 15 * time.Second,
		EventLog: EventLog{
			Durability:       "always",
			Replicas:         1,
			MaxAge:           7 * 24 * time.Hour,
			DuplicateWindow:  48 * time.Hour,
			QuarantineMaxAge: 30 * 24 * time.Hour,
			CommitWorkers:    2,
			StartTimeout:     time.Minute,
		},
		Limits: Limits{
			MaxStreamsPerPrincipal: 64,
			MaxStreams:             512,
			MaxGroups:              256,
			GroupIdleExpiry:        30 * 24 * time.Hour,
		},
		Log: Log{Level: "info"},
	}
}

// RegisterFlags defines one flag per key on fs, plus --config, with the defaults as their
// default values.
func RegisterFlags(fs *pflag.FlagSet) {
	d := Default()
	fs.String("config", "", "YAML configuration file (also "+EnvPrefix+"CONFIG)")
	fs.String("http-addr", d.HTTP.Addr, "public HTTP listen address: webhooks, /healthz, /readyz")
	fs.String("grpc-addr", d.GRPC.Addr, "internal gRPC listen address")
	fs.String("api-addr", d.API.Addr, "internal HTTP listen address (the HTTP mapping of the events and quarantine APIs)")
	fs.String("data-dir", d.DataDir, "directory for the embedded event log")
	fs.Duration("shutdown-timeout", d.ShutdownTimeout, "how long a graceful shutdown may take")
	fs.Duration("shutdown-lame-duck", d.ShutdownLameDuck, "how long to keep serving, not ready, before shutting down (a few seconds behind a load balancer)")
	fs.String("log-level", d.Log.Level, "least level logged: debug, info, warn or error")
	fs.String("nats-url", d.EventLog.NATSURL, "external NATS server or cluster (default: embedded)")
	fs.String("nats-listen", d.EventLog.NATSListen, "let NATS clients reach the embedded server at host:port")
	fs.String("durability", d.EventLog.Durability, `"always" (fsync before acknowledging) or "os"`)
	fs.Int("replicas", d.EventLog.Replicas, "stream replicas on a NATS cluster")
}

// Load builds the configuration from the defaults, the YAML file named by --config or
// HOOKSTREAM_CONFIG (if any), the environment and the flags set on fs, and checks it. environ
// is os.Environ() in production ("NAME=value" entries). Errors wrap ErrInvalid when a value is
// unusable, and name its key: a key nothing reads (in the file at any depth, or a HOOKSTREAM_*
// variable) is an error, never silently ignored. No error holds a secret.
func Load(fs *pflag.FlagSet, environ []string) (Config, error) {
	k := koanf.New(".")
	if err := k.Load(structs.Provider(Default(), "koanf"), nil); err != nil {
		return Config{}, fmt.Errorf("load defaults: %w", err)
	}
	known := make(map[string]string) // "grpc_addr" -> "grpc.addr"
	for _, key := range k.Keys() {
		known[strings.ReplaceAll(key, ".", "_")] = key
	}
	vars := envVars(environ)

	path := vars["CONFIG"]
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
			return Config{}, fmt.Errorf("%w: read %s: %w", ErrInvalid, path, err)
		}
	}

	err := k.Load(env.Provider(".", env.Opt{
		Prefix:      EnvPrefix,
		EnvironFunc: func() []string { return knownEnv(vars, known) },
		TransformFunc: func(name, value string) (string, any) {
			return known[strings.ToLower(strings.TrimPrefix(name, EnvPrefix))], value
		},
	}), nil)
	if err != nil {
		return Config{}, fmt.Errorf("load environment: %w", err)
	}

	// Only flags set on the command line override: their defaults are already in place.
	err = k.Load(posflag.ProviderWithFlag(fs, ".", k, func(f *pflag.Flag) (string, any) {
		if !f.Changed || f.Name == "config" {
			return "", nil
		}
		return flagKey(known, f.Name), posflag.FlagVal(fs, f)
	}), nil)
	if err != nil {
		return Config{}, fmt.Errorf("load flags: %w", err)
	}

	c, err := decode(k)
	if err != nil {
		return Config{}, err
	}
	if err := checkEnv(vars, known, c); err != nil {
		return Config{}, err
	}
	c.Listeners = withListenerDefaults(c.Listeners)
	return c, c.check()
}

// defaultListenerType is a configured listener's default_type: a map's entries have no place in
// Default.
const defaultListenerType = "notification"

// Defaults of each configured listener's hmac, exported for `hookstream sign`, which must sign as
// a listener left at its defaults checks.
const (
	// DefaultHMACAlgorithm is a listener's hmac.algorithm when unset.
	DefaultHMACAlgorithm = "sha256"
	// DefaultHMACEncoding is a listener's hmac.encoding when unset.
	DefaultHMACEncoding = "hex"
)

// withListenerDefaults fills the unset keys of each listener with their defaults.
func withListenerDefaults(ls map[string]Listener) map[string]Listener {
	for id, l := range ls {
		if l.DefaultType == "" {
			l.DefaultType = defaultListenerType
		}
		if l.HMAC.Algorithm == "" {
			l.HMAC.Algorithm = DefaultHMACAlgorithm
		}
		if l.HMAC.Encoding == "" {
			l.HMAC.Encoding = DefaultHMACEncoding
		}
		ls[id] = l
	}
	return ls
}

// envVars returns the HOOKSTREAM_* variables of environ by name without the prefix
// ("GRPC_ADDR"). A later entry wins, as in os/exec.
func envVars(environ []string) map[string]string {
	vars := make(map[string]string)
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if rest, ok := strings.CutPrefix(name, EnvPrefix); ok {
			vars[rest] = value
		}
	}
	return vars
}

// knownEnv lists, as NAME=value, the variables of vars that name a known key and are not empty
// (an empty variable is as good as unset).
func knownEnv(vars map[string]string, known map[string]string) []string {
	var out []string
	for name, v := range vars {
		if _, ok := known[strings.ToLower(name)]; ok && v != "" {
			out = append(out, EnvPrefix+name+"="+v)
		}
	}
	return out
}

// checkEnv refuses a HOOKSTREAM_* variable that names no key: a misspelt variable would
// otherwise leave its setting at the default. HOOKSTREAM_CONFIG and the variables named by
// auth.principals.*.token_env are read too.
func checkEnv(vars map[string]string, known map[string]string, c Config) error {
	read := map[string]bool{EnvPrefix + "CONFIG": true}
	for _, p := range c.Auth.Principals {
		for _, v := range p.TokenEnv {
			read[v] = true
		}
	}
	var unknown []string
	for name := range vars {
		_, ok := known[strings.ToLower(name)]
		if !ok && !read[EnvPrefix+name] {
			unknown = append(unknown, EnvPrefix+name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%w: unknown environment variable %s", ErrInvalid, strings.Join(unknown, ", "))
	}
	return nil
}

// decode unmarshals k into a Config. A key of k that no field reads is an error naming it, at
// any depth (`providers.movment`, `listeners.<id>.listner`); so is a value of the wrong type,
// named by its key but never quoted (it may be a secret put under the wrong key).
func decode(k *koanf.Koanf) (Config, error) {
	var c Config
	var md mapstructure.Metadata
	dc := &mapstructure.DecoderConfig{
		// Lists come from the environment as comma-separated values ("new,old").
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			mapstructure.StringToSliceHookFunc(","),
		),
		WeaklyTypedInput: true,
		Metadata:         &md,
	}
	err := k.UnmarshalWithConf("", &c, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: dc})
	if len(md.Unused) > 0 {
		keys := make([]string, len(md.Unused))
		for i, u := range md.Unused {
			keys[i] = keyName(u)
		}
		sort.Strings(keys)
		return Config{}, fmt.Errorf("%w: unknown key %s", ErrInvalid, strings.Join(keys, ", "))
	}
	if de := (*mapstructure.DecodeError)(nil); errors.As(err, &de) {
		return Config{}, fmt.Errorf("%w: %s: %w", ErrInvalid, keyName(de.Name()), de.Unwrap())
	}
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return c, nil
}

// keyName writes mapstructure's field name of a map entry ("listeners[id].tokens") as the key
// of the configuration ("listeners.id.tokens").
func keyName(field string) string {
	return strings.NewReplacer("[", ".", "]", "").Replace(field)
}

// flagKey maps a flag name to its key: "grpc-addr" is "grpc.addr", and flags of the event log
// drop their section ("nats-url" is "eventlog.nats_url").
func flagKey(known map[string]string, name string) string {
	flat := strings.ReplaceAll(name, "-", "_")
	if k, ok := known[flat]; ok {
		return k
	}
	return known["eventlog_"+flat]
}

func (c Config) check() error {
	if d := c.EventLog.Durability; d != "always" && d != "os" {
		return fmt.Errorf("%w: eventlog.durability %q: want \"always\" or \"os\"", ErrInvalid, d)
	}
	if c.EventLog.Replicas < 1 || c.EventLog.Replicas > 5 {
		return fmt.Errorf("%w: eventlog.replicas %d: want 1 to 5", ErrInvalid, c.EventLog.Replicas)
	}
	if c.EventLog.StartTimeout <= 0 {
		return fmt.Errorf("%w: eventlog.start_timeout %v: want a positive duration", ErrInvalid, c.EventLog.StartTimeout)
	}
	for name, addr := range map[string]string{"http.addr": c.HTTP.Addr, "grpc.addr": c.GRPC.Addr, "api.addr": c.API.Addr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("%w: %s %q: %w", ErrInvalid, name, addr, err)
		}
	}
	if err := c.checkDoors(); err != nil {
		return err
	}
	if _, err := logs.ParseLevel(c.Log.Level); err != nil {
		return fmt.Errorf("%w: log.level: %w", ErrInvalid, err)
	}
	if err := c.Limits.check(); err != nil {
		return err
	}
	if err := c.Providers.check(); err != nil {
		return err
	}
	if err := checkListeners(c.Listeners); err != nil {
		return err
	}
	if c.HTTP.BodyLimit < 1 {
		return fmt.Errorf("%w: http.body_limit must be positive", ErrInvalid)
	}
	if c.GRPC.MaxResponseBytes < 1 {
		return fmt.Errorf("%w: grpc.max_response_bytes must be positive", ErrInvalid)
	}
	if c.HTTP.MaxInFlight < 1 {
		return fmt.Errorf("%w: http.max_in_flight must be positive", ErrInvalid)
	}
	if c.HTTP.MaxUnverifiedInFlight < 1 {
		return fmt.Errorf("%w: http.max_unverified_in_flight must be positive", ErrInvalid)
	}
	if c.HTTP.BodyReadTimeout <= 0 {
		return fmt.Errorf("%w: http.body_read_timeout must be positive", ErrInvalid)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: data_dir is empty", ErrInvalid)
	}
	if c.ShutdownTimeout <= 0 {
		return fmt.Errorf("%w: shutdown_timeout must be positive", ErrInvalid)
	}
	if c.ShutdownLameDuck < 0 {
		return fmt.Errorf("%w: shutdown_lame_duck must not be negative", ErrInvalid)
	}
	return nil
}

func (l Limits) check() error {
	switch {
	case l.MaxStreamsPerPrincipal < 1:
		return fmt.Errorf("%w: limits.max_streams_per_principal must be positive", ErrInvalid)
	case l.MaxStreams < 1:
		return fmt.Errorf("%w: limits.max_streams must be positive", ErrInvalid)
	case l.MaxGroups < 1:
		return fmt.Errorf("%w: limits.max_groups must be positive", ErrInvalid)
	case l.GroupIdleExpiry < 0:
		return fmt.Errorf("%w: limits.group_idle_expiry must not be negative (0 keeps groups)", ErrInvalid)
	case l.MaxGroups+l.MaxStreams >= maxStreamConsumers:
		// Each group and each open stream is a consumer of the events stream: beyond nats-server's
		// cap, calls within the limits would fail anyway, and the limits would protect nothing.
		return fmt.Errorf("%w: limits.max_groups + limits.max_streams must stay below %d, the consumers nats-server keeps per stream", ErrInvalid, maxStreamConsumers)
	}
	return nil
}

// check refuses credentials that cannot be what the operator meant: insecure beside
// credentials (insecure would win, silently), and empty entries in a list of secrets.
func (p Providers) check() error {
	routes := []struct {
		name, kind string
		creds      []string
		insecure   bool
	}{
		{"moveapi", "secrets", p.MoveAPI.Secrets, p.MoveAPI.Insecure},
		{"movement", "tokens", p.Movement.Tokens, p.Movement.Insecure},
		{"mvmnt", "tokens", p.MVMNT.Tokens, p.MVMNT.Insecure},
	}
	for _, r := range routes {
		key := "providers." + r.name
		if err := checkSecrets(key+"."+r.kind, r.creds); err != nil {
			return err
		}
		if r.insecure && len(r.creds) > 0 {
			return fmt.Errorf("%w: %s.insecure is set beside %s.%s: it would accept every request unchecked; remove one", ErrInvalid, key, key, r.kind)
		}
	}
	return nil
}

// maxStreamConsumers is how many consumers nats-server keeps per stream by default.
const maxStreamConsumers = 1000

// checkSecrets refuses an empty secret or token in a list (a stray comma in an environment
// variable makes one). The values themselves never appear in the error.
func checkSecrets(key string, secrets []string) error {
	for i, s := range secrets {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("%w: %s: entry %d is empty", ErrInvalid, key, i+1)
		}
	}
	return nil
}

// checkListeners refuses listener ids that are not UUIDs or that equal another but for case
// (the route matches ids in lower case), and the settings of each listener that would not do
// what they say.
func checkListeners(ls map[string]Listener) error {
	ids := make([]string, 0, len(ls))
	for id := range ls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	seen := make(map[string]string, len(ids))
	for _, id := range ids {
		key := "listeners." + id
		if u, err := uuid.Parse(id); err != nil || len(id) != len(u.String()) {
			return fmt.Errorf("%w: %s: a listener id is a UUID (8-4-4-4-12 hex digits)", ErrInvalid, key)
		}
		lower := strings.ToLower(id)
		if other, ok := seen[lower]; ok {
			return fmt.Errorf("%w: %s: the same id as listeners.%s but for case", ErrInvalid, key, other)
		}
		seen[lower] = id
		if err := ls[id].check(key); err != nil {
			return err
		}
	}
	return nil
}

// check refuses insecure beside credentials, and HMAC settings that would not be checked (no
// tokens: the HMAC is only ever checked beside a Bearer token) or could not be (a header without
// secrets, secrets without a header).
func (l Listener) check(key string) error {
	if err := checkSecrets(key+".tokens", l.Tokens); err != nil {
		return err
	}
	if err := checkSecrets(key+".hmac.secrets", l.HMAC.Secrets); err != nil {
		return err
	}
	h := l.HMAC
	switch {
	case l.Insecure && len(l.Tokens) > 0:
		return fmt.Errorf("%w: %s.insecure is set beside %s.tokens: it would accept every request unchecked; remove one", ErrInvalid, key, key)
	case l.Insecure && len(h.Secrets) > 0:
		return fmt.Errorf("%w: %s.insecure is set beside %s.hmac.secrets: it would accept every request unchecked; remove one", ErrInvalid, key, key)
	case len(h.Secrets) > 0 && len(l.Tokens) == 0:
		return fmt.Errorf("%w: %s.hmac.secrets need %s.tokens: the signature is checked beside a Bearer token, never instead of one", ErrInvalid, key, key)
	case len(h.Secrets) > 0 && h.Header == "":
		return fmt.Errorf("%w: %s.hmac.secrets need %s.hmac.header, the header carrying the signature", ErrInvalid, key, key)
	case h.Header != "" && len(h.Secrets) == 0:
		return fmt.Errorf("%w: %s.hmac.header needs %s.hmac.secrets: without them no signature is checked", ErrInvalid, key, key)
	case h.Prefix != "" && len(h.Secrets) == 0:
		return fmt.Errorf("%w: %s.hmac.prefix needs %s.hmac.secrets: without them no signature is checked", ErrInvalid, key, key)
	}
	if a := strings.ToLower(h.Algorithm); a != "sha256" && a != "sha512" {
		return fmt.Errorf("%w: %s.hmac.algorithm %q: want sha256 or sha512", ErrInvalid, key, h.Algorithm)
	}
	if e := strings.ToLower(h.Encoding); e != "hex" && e != "base64" {
		return fmt.Errorf("%w: %s.hmac.encoding %q: want hex or base64", ErrInvalid, key, h.Encoding)
	}
	return nil
}

// Getenv is os.Getenv, for callers of Load.
func Getenv(name string) string { return os.Getenv(name) }

// checkDoors refuses configurations that open the internal doors to anyone: an internal listener
// beyond loopback with no principal to authenticate, the embedded NATS listening without a
// token, TLS files given by halves.
func (c Config) checkDoors() error {
	for _, l := range []struct {
		name, addr string
		tls        TLS
	}{{"grpc", c.GRPC.Addr, c.GRPC.TLS}, {"api", c.API.Addr, c.API.TLS}} {
		switch {
		case Loopback(l.addr):
		case len(c.Auth.Principals) == 0:
			return fmt.Errorf("%w: %s.addr %q is beyond loopback but no auth.principals are configured: anyone could read every event (configure principals, or listen on 127.0.0.1)", ErrInvalid, l.name, l.addr)
		case l.tls.CertFile == "":
			return fmt.Errorf("%w: %s.addr %q is beyond loopback without %s.tls: credentials and events would cross the network in plaintext", ErrInvalid, l.name, l.addr, l.name)
		}
	}
	if c.EventLog.NATSListen != "" && c.EventLog.NATSListenToken == "" {
		return fmt.Errorf("%w: eventlog.nats_listen needs eventlog.nats_listen_token: NATS clients could otherwise publish forged events", ErrInvalid)
	}
	for name, t := range map[string]TLS{"http.tls": c.HTTP.TLS, "grpc.tls": c.GRPC.TLS, "api.tls": c.API.TLS} {
		if (t.CertFile == "") != (t.KeyFile == "") {
			return fmt.Errorf("%w: %s needs both cert_file and key_file", ErrInvalid, name)
		}
	}
	if c.Auth.ClientCAFile != "" && c.GRPC.TLS.CertFile == "" && c.API.TLS.CertFile == "" {
		return fmt.Errorf("%w: auth.client_ca_file needs TLS on grpc or api (grpc.tls, api.tls)", ErrInvalid)
	}
	return nil
}

// Loopback reports whether a listen address binds loopback only.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
