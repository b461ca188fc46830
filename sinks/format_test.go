package sinks

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestFormatGolden(t *testing.T) {
	full := testDelivery()
	noTimes := testDelivery()
	noTimes.IssuedAt, noTimes.ExpiresAt = time.Time{}, time.Time{}
	odd := testDelivery()
	odd.Secret = providers.NewSecret(`a"b\c<&>é`)
	tests := []struct {
		name, format, envVar string
		d                    Delivery
	}{
		{"raw", "raw", "", full},
		{"raw_default", "", "", full},
		{"json", "json", "", full},
		{"json_null_times", "json", "", noTimes},
		{"json_escaping", "json", "", odd},
		{"env", "env", "", full},
		{"env_var", "env", "BACKUP_API_TOKEN", full},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Format(tt.d, tt.format, tt.envVar)
			if err != nil {
				t.Fatalf("Format() error = %v", err)
			}
			golden := filepath.Join("testdata", "format_"+tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update): %v", err)
			}
			if string(got) != string(want) {
				t.Errorf("Format() = %q, want %q", got, want)
			}
			if tt.format == "json" {
				var m map[string]any
				if err := json.Unmarshal(got, &m); err != nil {
					t.Fatalf("json format does not parse: %v", err)
				}
				if m["token"] != tt.d.Secret.Reveal() {
					t.Errorf("json token = %q, want the secret", m["token"])
				}
			}
		})
	}
}

func TestFormatErrors(t *testing.T) {
	nl := testDelivery()
	nl.Secret = providers.NewSecret(testSecret + "\n" + testSecret)
	tests := []struct {
		name, format, envVar, want string
		d                          Delivery
	}{
		{"unknown format", "yaml", "", `format "yaml"`, testDelivery()},
		{"bad var", "env", "1TOKEN", `var "1TOKEN"`, testDelivery()},
		{"var with equals", "env", "A=B", `var "A=B"`, testDelivery()},
		{"newline in env token", "env", "", "line break", nl},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Format(tt.d, tt.format, tt.envVar)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Format() = %q, %v; want error containing %q", got, err, tt.want)
			}
			noSecret(t, err, testSecret)
		})
	}
}
