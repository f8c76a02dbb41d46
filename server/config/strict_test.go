package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/hookstream/hookstream/server/config"
)

// secret is the value of every secret in the hostile configurations below: no error may hold it.
const secret = "s3cr3t-value-never-printed"

const listenerID = "0b6f7c1e-5a4d-4c3b-9a2e-1f0e9d8c7b6a"

// TestLoadStrict loads configurations a careless operator (or an attacker with write access to
// one source) could produce, and checks that each is refused naming the key at fault, and that
// the error holds no secret.
func TestLoadStrict(t *testing.T) {
	t.Parallel()
	l := "listeners:\n  " + listenerID + ":\n"
	tests := []struct {
		name    string
		yaml    string
		env     map[string]string
		wantKey string
	}{
		{name: "unknown_top_key", yaml: "grcp:\n  addr: 127.0.0.1:1\n", wantKey: "grcp"},
		{name: "misspelt_listeners", yaml: "listner:\n  " + listenerID + ":\n    tokens: [" + secret + "]\n", wantKey: "listner"},
		{name: "unknown_provider", yaml: "providers:\n  movment:\n    tokens: [" + secret + "]\n", wantKey: "providers.movment"},
		{name: "unknown_provider_key", yaml: "providers:\n  mvmnt:\n    token: [" + secret + "]\n", wantKey: "providers.mvmnt.token"},
		{name: "unknown_tls_key", yaml: "grpc:\n  tls:\n    cert: c.pem\n", wantKey: "grpc.tls.cert"},
		{name: "unknown_listener_key", yaml: l + "    tokens: [" + secret + "]\n    listner_typo: 1\n", wantKey: "listeners." + listenerID + ".listner_typo"},
		{name: "unknown_listener_hmac_key", yaml: l + "    tokens: [" + secret + "]\n    hmac:\n      secret: [" + secret + "]\n", wantKey: "listeners." + listenerID + ".hmac.secret"},
		{name: "unknown_principal_key", yaml: "auth:\n  principals:\n    billing:\n      token_env: [BILLING_TOKEN]\n      permission: [read]\n", wantKey: "auth.principals.billing.permission"},
		{name: "unknown_env", env: map[string]string{"HOOKSTREAM_PROVIDERS_MOVMENT_TOKENS": secret}, wantKey: "HOOKSTREAM_PROVIDERS_MOVMENT_TOKENS"},
		{name: "unknown_env_empty", env: map[string]string{"HOOKSTREAM_GRPC_ADR": ""}, wantKey: "HOOKSTREAM_GRPC_ADR"},
		{name: "listener_from_env", env: map[string]string{"HOOKSTREAM_LISTENERS_" + listenerID + "_TOKENS": secret}, wantKey: "HOOKSTREAM_LISTENERS_" + listenerID + "_TOKENS"},
		{name: "wrong_type_in_file", yaml: "http:\n  body_limit: " + secret + "\n", wantKey: "http.body_limit"},
		{name: "wrong_type_in_env", env: map[string]string{"HOOKSTREAM_PROVIDERS_MOVEAPI_TOLERANCE": secret}, wantKey: "providers.moveapi.tolerance"},
		{name: "wrong_type_bool", env: map[string]string{"HOOKSTREAM_PROVIDERS_MVMNT_INSECURE": secret}, wantKey: "providers.mvmnt.insecure"},
		{name: "moveapi_insecure_beside_secrets", yaml: "providers:\n  moveapi:\n    insecure: true\n    secrets: [" + secret + "]\n", wantKey: "providers.moveapi.insecure"},
		{name: "movement_insecure_beside_tokens", yaml: "providers:\n  movement:\n    tokens: [" + secret + "]\n", env: map[string]string{"HOOKSTREAM_PROVIDERS_MOVEMENT_INSECURE": "true"}, wantKey: "providers.movement.insecure"},
		{name: "mvmnt_insecure_beside_tokens", env: map[string]string{"HOOKSTREAM_PROVIDERS_MVMNT_INSECURE": "true", "HOOKSTREAM_PROVIDERS_MVMNT_TOKENS": secret}, wantKey: "providers.mvmnt.insecure"},
		{name: "empty_token_entry", env: map[string]string{"HOOKSTREAM_PROVIDERS_MVMNT_TOKENS": secret + ",,"}, wantKey: "providers.mvmnt.tokens"},
		{name: "listener_insecure_beside_tokens", yaml: l + "    insecure: true\n    tokens: [" + secret + "]\n", wantKey: "listeners." + listenerID + ".insecure"},
		{name: "listener_insecure_beside_hmac", yaml: l + "    insecure: true\n    hmac: {header: X-Sig, secrets: [" + secret + "]}\n", wantKey: "listeners." + listenerID + ".insecure"},
		{name: "listener_id_not_uuid", yaml: "listeners:\n  billing:\n    tokens: [" + secret + "]\n", wantKey: "listeners.billing"},
		{name: "listener_id_without_dashes", yaml: "listeners:\n  0b6f7c1e5a4d4c3b9a2e1f0e9d8c7b6a:\n    tokens: [" + secret + "]\n", wantKey: "listeners.0b6f7c1e5a4d4c3b9a2e1f0e9d8c7b6a"},
		{name: "listener_id_urn", yaml: "listeners:\n  urn:uuid:" + listenerID + ":\n    tokens: [" + secret + "]\n", wantKey: "listeners.urn:uuid:" + listenerID},
		{name: "listener_ids_equal_but_for_case", yaml: l + "    tokens: [a]\n  " + strings.ToUpper(listenerID) + ":\n    tokens: [b]\n", wantKey: "listeners." + listenerID},
		{name: "hmac_without_tokens", yaml: l + "    hmac: {header: X-Sig, secrets: [" + secret + "]}\n", wantKey: "listeners." + listenerID + ".hmac.secrets"},
		{name: "hmac_header_without_secrets", yaml: l + "    tokens: [" + secret + "]\n    hmac: {header: X-Sig}\n", wantKey: "listeners." + listenerID + ".hmac.header"},
		{name: "hmac_secrets_without_header", yaml: l + "    tokens: [" + secret + "]\n    hmac: {secrets: [" + secret + "]}\n", wantKey: "listeners." + listenerID + ".hmac.secrets"},
		{name: "hmac_prefix_without_secrets", yaml: l + "    tokens: [" + secret + "]\n    hmac: {prefix: sha256=}\n", wantKey: "listeners." + listenerID + ".hmac.prefix"},
		{name: "hmac_unknown_algorithm", yaml: l + "    tokens: [" + secret + "]\n    hmac: {header: X-Sig, algorithm: md5, secrets: [" + secret + "]}\n", wantKey: "listeners." + listenerID + ".hmac.algorithm"},
		{name: "hmac_unknown_encoding", yaml: l + "    tokens: [" + secret + "]\n    hmac: {header: X-Sig, encoding: base32, secrets: [" + secret + "]}\n", wantKey: "listeners." + listenerID + ".hmac.encoding"},
		{name: "listener_empty_token", yaml: l + "    tokens: [\"\"]\n", wantKey: "listeners." + listenerID + ".tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := load(t, tt.yaml, tt.env)
			if !errors.Is(err, config.ErrInvalid) {
				t.Fatalf("Load: got error %v, want %v", err, config.ErrInvalid)
			}
			// The message must name the key: the one string check the house style allows.
			if !strings.Contains(err.Error(), tt.wantKey) {
				t.Errorf("Load: got error %q, want it to name %s", err, tt.wantKey)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Load: got error %q, want no secret in it", err)
			}
		})
	}
}

// TestLoadStrictAccepts checks that strictness refuses nothing it should take: every kind of
// credential beside its settings, an upper-case UUID, and a principal's token in a HOOKSTREAM_*
// variable it names.
func TestLoadStrictAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string
		env  map[string]string
	}{
		{name: "listener_with_hmac", yaml: "listeners:\n  " + listenerID + ":\n    tokens: [t]\n    dedup_header: X-Event-Id\n    hmac: {header: X-Sig, algorithm: SHA512, prefix: sha512=, encoding: base64, secrets: [s]}\n"},
		{name: "upper_case_listener_id", yaml: "listeners:\n  " + strings.ToUpper(listenerID) + ":\n    tokens: [t]\n"},
		{name: "insecure_listener", yaml: "listeners:\n  " + listenerID + ":\n    insecure: true\n"},
		{name: "insecure_providers", env: map[string]string{"HOOKSTREAM_PROVIDERS_MOVEAPI_INSECURE": "true", "HOOKSTREAM_PROVIDERS_MOVEMENT_INSECURE": "1", "HOOKSTREAM_PROVIDERS_MVMNT_INSECURE": "true"}},
		{name: "insecure_false_beside_tokens", yaml: "providers:\n  mvmnt:\n    insecure: false\n    tokens: [a, b]\n"},
		{
			name: "principal_token_env_named_like_hookstream",
			yaml: "auth:\n  principals:\n    billing:\n      token_env: [HOOKSTREAM_BILLING_TOKEN]\n      permissions: [consume]\n",
			env:  map[string]string{"HOOKSTREAM_BILLING_TOKEN": secret},
		},
		{name: "empty_known_env", env: map[string]string{"HOOKSTREAM_GRPC_ADDR": ""}},
		{name: "config_env", env: map[string]string{"HOOKSTREAM_CONFIG": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := load(t, tt.yaml, tt.env); err != nil {
				t.Fatalf("Load: got error %v, want none", err)
			}
		})
	}
}

// load loads the configuration of yaml (none if empty) and env, as `hookstream serve` would.
func load(t *testing.T, yaml string, env map[string]string) (config.Config, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	config.RegisterFlags(fs)
	var args []string
	if yaml != "" {
		file := filepath.Join(t.TempDir(), "hookstream.yaml")
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = []string{"--config", file}
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return config.Load(fs, environ(env))
}
