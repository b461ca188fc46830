package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse, Validate and Resolve never panic, whatever the input. The seeds are the
// files of testdata/ and the example config.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	seeds = append(seeds, filepath.Join("..", "configs", "tokend.example.yaml"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("tokens: &t [*t]\n"))
	f.Add([]byte("defaults: {poll: \"TZ=\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		_ = c.Validate(acceptAll)
		for _, tok := range c.Tokens {
			c.Resolve(tok)
		}
		for _, p := range c.Providers {
			c.ResolveProvider(p)
			c.TokensOf(p)
		}
	})
}
