package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// StateKeySize is the length of the key that encrypts the secrets kept in Redis.
const StateKeySize = 32

// maxStateKeyFile bounds what ReadStateKey reads: a key file is 32 or 44 bytes and a newline.
const maxStateKeyFile = 1024

// ReadStateKey reads the state key that ref names: exactly 32 raw bytes, or the 44-character standard base64
// of 32 bytes. A trailing newline ("\n" or "\r\n") is ignored unless the content is exactly 32 bytes, which
// are taken as they are. Errors say what is wrong (missing, wrong length, bad base64), never the content.
func ReadStateKey(ref SecretRef) ([]byte, error) {
	if !ref.IsSet() {
		return nil, errors.New("reading state key: state_key_file is not set")
	}
	var b []byte
	var where string
	if name, ok := strings.CutPrefix(string(ref), "env:"); ok {
		where = "environment variable " + name
		v, ok := os.LookupEnv(name)
		if !ok {
			return nil, fmt.Errorf("reading state key: %s is not set", where)
		}
		b = []byte(v)
	} else {
		where = string(ref)
		f, err := os.Open(where)
		if err != nil {
			return nil, fmt.Errorf("reading state key: %w", err)
		}
		defer f.Close()
		b, err = io.ReadAll(io.LimitReader(f, maxStateKeyFile+1))
		if err != nil {
			return nil, fmt.Errorf("reading state key: %w", err)
		}
		if len(b) > maxStateKeyFile {
			return nil, fmt.Errorf("reading state key: %s is larger than %d bytes; want 32 raw bytes or their base64", where, maxStateKeyFile)
		}
	}
	return parseStateKey(b, where)
}

func parseStateKey(b []byte, where string) ([]byte, error) {
	if len(b) == StateKeySize {
		return b, nil
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	switch len(b) {
	case StateKeySize:
		return b, nil
	case base64.StdEncoding.EncodedLen(StateKeySize):
		k := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
		n, err := base64.StdEncoding.Decode(k, b)
		if err != nil || n != StateKeySize {
			return nil, fmt.Errorf("reading state key: %s holds 44 characters that are not the standard base64 of 32 bytes", where)
		}
		return k[:n], nil
	case 0:
		return nil, fmt.Errorf("reading state key: %s is empty; want 32 raw bytes or their standard base64 (44 characters)", where)
	default:
		return nil, fmt.Errorf("reading state key: %s holds %d bytes; want 32 raw bytes or their standard base64 (44 characters)", where, len(b))
	}
}
