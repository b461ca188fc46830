package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/tokend/tokend/providers"
)

const sealedPrefix = "v1:"

// Sealer encrypts secrets at rest with AES-256-GCM. The token name is the associated data, so a sealed
// value copied to another token's hash does not open.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("state key: want 32 bytes, have %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts s for token name. The empty secret seals to "".
func (k *Sealer) Seal(name string, s providers.Secret) (string, error) {
	if s.IsZero() {
		return "", nil
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("sealing secret: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, []byte(s.Reveal()), []byte(name))
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(out), nil
}

// ErrUnseal means a sealed value did not open: wrong state key, or a value moved between tokens.
var ErrUnseal = errors.New("secret does not decrypt with this state key")

// Open decrypts a value made by Seal for the same token name.
func (k *Sealer) Open(name, sealed string) (providers.Secret, error) {
	if sealed == "" {
		return providers.Secret{}, nil
	}
	raw, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return providers.Secret{}, ErrUnseal
	}
	b, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(b) < k.aead.NonceSize() {
		return providers.Secret{}, ErrUnseal
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, b[:n], b[n:], []byte(name))
	if err != nil {
		return providers.Secret{}, ErrUnseal
	}
	return providers.NewSecret(string(plain)), nil
}
