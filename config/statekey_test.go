package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadStateKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xA5}, 32)
	key[31] = '\n' // a raw key may end in a newline byte; exactly 32 bytes are taken as they are
	b64 := base64.StdEncoding.EncodeToString(key)
	dir := t.TempDir()
	write := func(name, content string) SecretRef {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return SecretRef(p)
	}
	t.Setenv("TOKEND_TEST_KEY_B64", b64)
	t.Setenv("TOKEND_TEST_KEY_SHORT", "c2hvcnQ=")
	t.Setenv("TOKEND_TEST_KEY_EMPTY", "")

	tests := []struct {
		name    string
		ref     SecretRef
		want    []byte
		wantErr string
	}{
		{"raw", write("raw", string(key)), key, ""},
		{"raw with newline", write("raw-nl", string(key)+"\n"), key, ""},
		{"base64", write("b64", b64), key, ""},
		{"base64 with newline", write("b64-nl", b64+"\n"), key, ""},
		{"base64 with crlf", write("b64-crlf", b64+"\r\n"), key, ""},
		{"env base64", "env:TOKEND_TEST_KEY_B64", key, ""},
		{"env too short", "env:TOKEND_TEST_KEY_SHORT", nil, "environment variable TOKEND_TEST_KEY_SHORT holds 8 bytes; want 32 raw bytes"},
		{"env empty", "env:TOKEND_TEST_KEY_EMPTY", nil, "environment variable TOKEND_TEST_KEY_EMPTY is empty"},
		{"env unset", "env:TOKEND_TEST_KEY_UNSET", nil, "environment variable TOKEND_TEST_KEY_UNSET is not set"},
		{"31 bytes", write("short", string(key[:31])), nil, "holds 31 bytes; want 32 raw bytes or their standard base64 (44 characters)"},
		{"33 bytes", write("long", string(key)+"x"), nil, "holds 33 bytes"},
		{"hex", write("hex", strings.Repeat("ab", 32)), nil, "holds 64 bytes"},
		{"44 chars not base64", write("bad64", strings.Repeat("!", 44)), nil, "holds 44 characters that are not the standard base64 of 32 bytes"},
		{"url base64", write("url64", base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xFB}, 32))), nil, "not the standard base64"},
		{"base64 of 33 bytes", write("b64-33", base64.StdEncoding.EncodeToString(make([]byte, 33))), nil, "holds 44 characters that are not"},
		{"empty file", write("empty", ""), nil, "is empty"},
		{"huge file", write("huge", strings.Repeat("k", 5000)), nil, "is larger than 1024 bytes"},
		{"missing", SecretRef(filepath.Join(dir, "missing")), nil, "no such file"},
		{"unset", "", nil, "state_key_file is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadStateKey(tt.ref)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadStateKey() error = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "k"+"kkkkkkk") || strings.Contains(err.Error(), "abababab") || strings.Contains(err.Error(), "!!!!") {
					t.Errorf("ReadStateKey() error holds the content: %v", err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.want) {
				t.Errorf("ReadStateKey() = %x, %v; want %x", got, err, tt.want)
			}
		})
	}
}

func TestSecretRefRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	crlf := filepath.Join(dir, "pw-crlf")
	if err := os.WriteFile(crlf, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(dir, "pw-inner")
	if err := os.WriteFile(inner, []byte("line1\nline2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOKEND_TEST_PW", "from-env\n")

	tests := []struct {
		ref  SecretRef
		want string
	}{
		{SecretRef(p), "s3cret"},
		{SecretRef(crlf), "s3cret"},
		{SecretRef(inner), "line1\nline2"},
		{"env:TOKEND_TEST_PW", "from-env\n"}, // the environment is taken as it is
	}
	for _, tt := range tests {
		s, err := tt.ref.Read()
		if err != nil || s.Reveal() != tt.want {
			t.Errorf("SecretRef(%s).Read() = %q, %v; want %q", tt.ref, s.Reveal(), err, tt.want)
		}
		if strings.Contains(s.String(), tt.want) {
			t.Errorf("Secret.String() = %q reveals the value", s.String())
		}
	}
	if _, err := SecretRef("env:TOKEND_TEST_PW_UNSET").Read(); err == nil || !strings.Contains(err.Error(), "TOKEND_TEST_PW_UNSET is not set") {
		t.Errorf("Read(unset env) error = %v, want 'is not set'", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := SecretRef(empty).Read(); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("Read(newline only) error = %v, want 'is empty'", err)
	}
}
