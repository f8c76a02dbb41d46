package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/spf13/pflag"

	"github.com/hookstream/hookstream/server/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "hookstream.yaml")
	yaml := "http:\n  addr: 127.0.0.1:7000\ngrpc:\n  addr: 127.0.0.1:7001\ndata_dir: /var/lib/hookstream\n" +
		"listeners:\n  0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a:\n    default_type: itsm.event\n"
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	principals := filepath.Join(dir, "principals.yaml")
	if err := os.WriteFile(principals, []byte("auth:\n  principals:\n    billing:\n      tokens: [\"sha256:"+strings.Repeat("ab", 32)+"\"]\n      permissions: [consume]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("http: [1, 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withDefaults := func(f func(*config.Config)) config.Config {
		c := config.Default()
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config.Config
		wantErr error
	}{
		{name: "defaults", want: config.Default()},
		{
			name: "file",
			args: []string{"--config", file},
			want: withDefaults(func(c *config.Config) {
				c.HTTP.Addr, c.GRPC.Addr, c.DataDir = "127.0.0.1:7000", "127.0.0.1:7001", "/var/lib/hookstream"
				c.Listeners = map[string]config.Listener{"0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a": {DefaultType: "itsm.event", HMAC: config.ListenerHMAC{Algorithm: "sha256", Encoding: "hex"}}}
			}),
		},
		{
			name: "eventlog_flags_and_env",
			args: []string{"--nats-url", "nats://10.0.0.1:4222", "--replicas", "3"},
			env:  map[string]string{"HOOKSTREAM_EVENTLOG_DURABILITY": "os", "HOOKSTREAM_EVENTLOG_MAX_AGE": "1h"},
			want: withDefaults(func(c *config.Config) {
				c.EventLog.NATSURL, c.EventLog.Replicas, c.EventLog.Durability, c.EventLog.MaxAge = "nats://10.0.0.1:4222", 3, "os", time.Hour
			}),
		},
		{
			name: "provider_secrets_from_env",
			env:  map[string]string{"HOOKSTREAM_PROVIDERS_MVMNT_TOKENS": "new,old", "HOOKSTREAM_PROVIDERS_MOVEAPI_SECRETS": "whsec_a", "HOOKSTREAM_PROVIDERS_MOVEMENT_INSECURE": "true"},
			want: withDefaults(func(c *config.Config) {
				c.Providers.MVMNT.Tokens = []string{"new", "old"}
				c.Providers.MoveAPI.Secrets = []string{"whsec_a"}
				c.Providers.Movement.Insecure = true
			}),
		},
		{
			name: "http_limits_from_env",
			env:  map[string]string{"HOOKSTREAM_HTTP_MAX_IN_FLIGHT": "100", "HOOKSTREAM_HTTP_BODY_LIMIT": "4096"},
			want: withDefaults(func(c *config.Config) { c.HTTP.MaxInFlight, c.HTTP.BodyLimit = 100, 4096 }),
		},
		{name: "zero_max_in_flight", env: map[string]string{"HOOKSTREAM_HTTP_MAX_IN_FLIGHT": "0"}, wantErr: config.ErrInvalid},
		{name: "negative_body_limit", env: map[string]string{"HOOKSTREAM_HTTP_BODY_LIMIT": "-1"}, wantErr: config.ErrInvalid},
		{
			name: "slow_client_limits_from_env",
			env:  map[string]string{"HOOKSTREAM_HTTP_MAX_UNVERIFIED_IN_FLIGHT": "32", "HOOKSTREAM_HTTP_BODY_READ_TIMEOUT": "2s"},
			want: withDefaults(func(c *config.Config) { c.HTTP.MaxUnverifiedInFlight, c.HTTP.BodyReadTimeout = 32, 2*time.Second }),
		},
		{name: "zero_max_unverified_in_flight", env: map[string]string{"HOOKSTREAM_HTTP_MAX_UNVERIFIED_IN_FLIGHT": "0"}, wantErr: config.ErrInvalid},
		{name: "zero_body_read_timeout", env: map[string]string{"HOOKSTREAM_HTTP_BODY_READ_TIMEOUT": "0s"}, wantErr: config.ErrInvalid},
		{name: "negative_body_read_timeout", env: map[string]string{"HOOKSTREAM_HTTP_BODY_READ_TIMEOUT": "-1s"}, wantErr: config.ErrInvalid},
		{
			name: "limits_from_env",
			env:  map[string]string{"HOOKSTREAM_LIMITS_MAX_STREAMS": "10", "HOOKSTREAM_LIMITS_MAX_STREAMS_PER_PRINCIPAL": "2", "HOOKSTREAM_LIMITS_MAX_GROUPS": "3", "HOOKSTREAM_LIMITS_GROUP_IDLE_EXPIRY": "0"},
			want: withDefaults(func(c *config.Config) {
				c.Limits = config.Limits{MaxStreams: 10, MaxStreamsPerPrincipal: 2, MaxGroups: 3}
			}),
		},
		{name: "zero_max_streams", env: map[string]string{"HOOKSTREAM_LIMITS_MAX_STREAMS": "0"}, wantErr: config.ErrInvalid},
		{name: "zero_max_streams_per_principal", env: map[string]string{"HOOKSTREAM_LIMITS_MAX_STREAMS_PER_PRINCIPAL": "0"}, wantErr: config.ErrInvalid},
		{name: "groups_and_streams_beyond_nats_consumers", env: map[string]string{"HOOKSTREAM_LIMITS_MAX_GROUPS": "500", "HOOKSTREAM_LIMITS_MAX_STREAMS": "500"}, wantErr: config.ErrInvalid},
		{name: "zero_max_groups", env: map[string]string{"HOOKSTREAM_LIMITS_MAX_GROUPS": "0"}, wantErr: config.ErrInvalid},
		{name: "negative_group_idle_expiry", env: map[string]string{"HOOKSTREAM_LIMITS_GROUP_IDLE_EXPIRY": "-1h"}, wantErr: config.ErrInvalid},
		{name: "log_level_from_env", env: map[string]string{"HOOKSTREAM_LOG_LEVEL": "debug"}, want: withDefaults(func(c *config.Config) { c.Log.Level = "debug" })},
		{name: "log_level_from_flag", args: []string{"--log-level", "error"}, want: withDefaults(func(c *config.Config) { c.Log.Level = "error" })},
		{name: "bad_log_level", args: []string{"--log-level", "verbose"}, wantErr: config.ErrInvalid},
		{name: "bad_durability", args: []string{"--durability", "sometimes"}, wantErr: config.ErrInvalid},
		{name: "bad_replicas", args: []string{"--replicas", "0"}, wantErr: config.ErrInvalid},
		{
			name: "file_from_env",
			env:  map[string]string{"HOOKSTREAM_CONFIG": file},
			want: withDefaults(func(c *config.Config) {
				c.HTTP.Addr, c.GRPC.Addr, c.DataDir = "127.0.0.1:7000", "127.0.0.1:7001", "/var/lib/hookstream"
				c.Listeners = map[string]config.Listener{"0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a": {DefaultType: "itsm.event", HMAC: config.ListenerHMAC{Algorithm: "sha256", Encoding: "hex"}}}
			}),
		},
		{
			name: "env_over_file",
			args: []string{"--config", file},
			env:  map[string]string{"HOOKSTREAM_GRPC_ADDR": "127.0.0.2:9999", "HOOKSTREAM_SHUTDOWN_TIMEOUT": "3s", "HOOKSTREAM_DATA_DIR": "/tmp/x"},
			want: withDefaults(func(c *config.Config) {
				c.HTTP.Addr, c.GRPC.Addr, c.DataDir, c.ShutdownTimeout = "127.0.0.1:7000", "127.0.0.2:9999", "/tmp/x", 3*time.Second
				c.Listeners = map[string]config.Listener{"0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a": {DefaultType: "itsm.event", HMAC: config.ListenerHMAC{Algorithm: "sha256", Encoding: "hex"}}}
			}),
		},
		{
			name: "flags_over_env_and_file",
			args: []string{"--config", file, "--grpc-addr", "127.0.0.1:1", "--data-dir", "d"},
			env:  map[string]string{"HOOKSTREAM_GRPC_ADDR": "127.0.0.2:9999"},
			want: withDefaults(func(c *config.Config) {
				c.HTTP.Addr, c.GRPC.Addr, c.DataDir = "127.0.0.1:7000", "127.0.0.1:1", "d"
				c.Listeners = map[string]config.Listener{"0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a": {DefaultType: "itsm.event", HMAC: config.ListenerHMAC{Algorithm: "sha256", Encoding: "hex"}}}
			}),
		},
		{name: "other_env_ignored", env: map[string]string{"HOME": "/root", "HOOKSTREAMX": "1"}, want: config.Default()},
		{name: "bad_addr", args: []string{"--http-addr", "8080"}, wantErr: config.ErrInvalid},
		{name: "bad_duration_env", env: map[string]string{"HOOKSTREAM_SHUTDOWN_TIMEOUT": "soon"}, wantErr: config.ErrInvalid},
		{name: "zero_timeout", args: []string{"--shutdown-timeout", "0s"}, wantErr: config.ErrInvalid},
		{name: "lame_duck_flag", args: []string{"--shutdown-lame-duck", "5s"}, want: withDefaults(func(c *config.Config) { c.ShutdownLameDuck = 5 * time.Second })},
		{name: "lame_duck_env", env: map[string]string{"HOOKSTREAM_SHUTDOWN_LAME_DUCK": "3s"}, want: withDefaults(func(c *config.Config) { c.ShutdownLameDuck = 3 * time.Second })},
		{name: "negative_lame_duck", args: []string{"--shutdown-lame-duck", "-1s"}, wantErr: config.ErrInvalid},
		{name: "empty_data_dir", args: []string{"--data-dir", ""}, wantErr: config.ErrInvalid},
		{name: "missing_file", args: []string{"--config", filepath.Join(dir, "none.yaml")}, wantErr: config.ErrInvalid},
		{name: "bad_yaml", args: []string{"--config", bad}, wantErr: config.ErrInvalid},
		{name: "grpc_beyond_loopback_without_principals", args: []string{"--grpc-addr", "0.0.0.0:9090"}, wantErr: config.ErrInvalid},
		{name: "grpc_all_interfaces_without_principals", args: []string{"--grpc-addr", ":9090"}, wantErr: config.ErrInvalid},
		{name: "api_beyond_loopback_without_principals", env: map[string]string{"HOOKSTREAM_API_ADDR": "10.0.0.5:9091"}, wantErr: config.ErrInvalid},
		{name: "grpc_beyond_loopback_in_plaintext", args: []string{"--config", principals, "--grpc-addr", "0.0.0.0:9090"}, wantErr: config.ErrInvalid},
		{name: "api_beyond_loopback_in_plaintext", args: []string{"--config", principals, "--api-addr", "10.0.0.5:9091"}, wantErr: config.ErrInvalid},
		{
			name: "grpc_beyond_loopback_with_principals_and_tls",
			args: []string{"--config", principals, "--grpc-addr", "0.0.0.0:9090"},
			env:  map[string]string{"HOOKSTREAM_GRPC_TLS_CERT_FILE": "c.pem", "HOOKSTREAM_GRPC_TLS_KEY_FILE": "k.pem"},
			want: withDefaults(func(c *config.Config) {
				c.GRPC.Addr, c.GRPC.TLS = "0.0.0.0:9090", config.TLS{CertFile: "c.pem", KeyFile: "k.pem"}
				c.Auth.Principals = map[string]config.Principal{"billing": {Tokens: []string{"sha256:" + strings.Repeat("ab", 32)}, Permissions: []string{"consume"}}}
			}),
		},
		{name: "nats_listen_without_token", args: []string{"--nats-listen", "127.0.0.1:4222"}, wantErr: config.ErrInvalid},
		{name: "tls_cert_without_key", env: map[string]string{"HOOKSTREAM_GRPC_TLS_CERT_FILE": "c.pem"}, wantErr: config.ErrInvalid},
		{name: "client_ca_without_tls", env: map[string]string{"HOOKSTREAM_AUTH_CLIENT_CA_FILE": "ca.pem"}, wantErr: config.ErrInvalid},
		{
			name: "nats_listen_with_token",
			args: []string{"--nats-listen", "127.0.0.1:4222"},
			env:  map[string]string{"HOOKSTREAM_EVENTLOG_NATS_LISTEN_TOKEN": "t"},
			want: withDefaults(func(c *config.Config) { c.EventLog.NATSListen, c.EventLog.NATSListenToken = "127.0.0.1:4222", "t" }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			config.RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := config.Load(fs, environ(tt.env))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load: got error %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("config differs (-want +got):\n%s", diff)
			}
		})
	}
}

// environ is env as os.Environ lists it.
func environ(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}
