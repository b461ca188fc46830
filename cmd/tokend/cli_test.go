package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckReportsEveryMistakeAndExits2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", "--config", filepath.Join("testdata", "ten-mistakes.yaml")}, &stdout, &stderr)
	if code != exitUsage {
		t.Fatalf("check exit code = %d, want %d", code, exitUsage)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 10 {
		t.Fatalf("check printed %d lines, want 10:\n%s", len(lines), stderr.String())
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "tokens[") && !strings.HasPrefix(l, "providers[") && !strings.Contains(l, ":") {
			t.Errorf("line without a key path: %q", l)
		}
	}
}

func TestCheckExampleConfig(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"check", "--config", filepath.Join("..", "..", "configs", "tokend.example.yaml")}, &stdout, &stderr); code != exitOK {
		t.Fatalf("check of the example config = %d, want 0:\n%s", code, stderr.String())
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{{}, {"frobnicate"}, {"rotate"}, {"status", "--bogus"}}
	for _, args := range tests {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("tokend %v = %d, want %d", args, code, exitUsage)
		}
	}
}
