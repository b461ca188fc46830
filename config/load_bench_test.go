package config

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// bigConfig is a config of n tokens over 16 providers, each token with one file sink and one policy
// override: the shape of a large instance (DESIGN.md section 9 sizes one at 100,000 tokens).
func bigConfig(n int) []byte {
	var b strings.Builder
	b.WriteString("state_key_file: env:TOKEND_STATE_KEY\nproviders:\n")
	for p := range 16 {
		fmt.Fprintf(&b, "  - {name: vendor-%02d, type: vcd, url: \"https://vcd%02d.example.com\", username: u, password_file: /run/pw, org: System}\n", p, p)
	}
	b.WriteString("tokens:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: token-%06d\n    provider: vendor-%02d\n    kind: access_token\n    renew_before: 2h\n    deliver:\n      - file: {path: /run/tokend/token-%06d.env}\n", i, i%16, i)
	}
	return []byte(b.String())
}

// BenchmarkParse is the first step of a start: Parse of a config of n tokens. It runs before a single token
// is loaded, so its time adds to "restart to every token scheduled".
func BenchmarkParse(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			data := bigConfig(n)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				c, err := Parse(data, "/etc/tokend/config.yaml")
				if err != nil {
					b.Fatalf("Parse() of %d tokens: %.300v", n, err)
				}
				if len(c.Tokens) != n {
					b.Fatalf("Parse() gave %d tokens, want %d", len(c.Tokens), n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		})
	}
}

// BenchmarkValidateResolve is the rest of the config's part of a start: Validate, then Resolve of every
// token (daemon/world.go build does one per token).
func BenchmarkValidateResolve(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			c := manyTokens(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if err := c.Validate(acceptAll); err != nil {
					b.Fatalf("Validate() = %.300v", err)
				}
				for _, t := range c.Tokens {
					_ = c.Resolve(t)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/token")
		})
	}
}

// manyTokens is a parsed config of n tokens. Parse cannot read more than about 22,000 of them (see
// BenchmarkParse), so a larger one is a parsed 10,000 with its tokens repeated under new names.
func manyTokens(b *testing.B, n int) *Config {
	b.Helper()
	c, err := Parse(bigConfig(min(n, 10_000)), "/etc/tokend/config.yaml")
	if err != nil {
		b.Fatalf("Parse(): %.300v", err)
	}
	base := c.Tokens
	for i := len(base); i < n; i++ {
		t := base[i%len(base)]
		t.Name, t.Index = fmt.Sprintf("token-%06d", i), i
		t.Deliver = []Sink{{File: &FileSink{Path: fmt.Sprintf("/run/tokend/token-%06d.env", i)}}}
		c.Tokens = append(c.Tokens, t)
	}
	return c
}
