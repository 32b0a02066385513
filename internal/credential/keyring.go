package credential

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
)

// Keyring encrypts secrets at rest with AES-256-GCM. Every ciphertext
// carries the id of its key, so keys can be rotated: new ciphertexts use
// the current key, old ones open with the key they name. A Keyring is
// immutable and safe for concurrent use.
type Keyring struct {
	current string
	keys    map[string][]byte
}

// KeysEnv is the environment variable that can hold the keys instead of
// a key file: "id1:base64key1,id2:base64key2", the first one current.
const KeysEnv = "OUTREACH_CONNECTOR_KEYS"

const sealVersion = 1

// NewKeyring builds a keyring from 32-byte keys by id; current names the
// key new ciphertexts use.
func NewKeyring(current string, keys map[string][]byte) (*Keyring, error) {
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("credential: keyring has no key %q", current)
	}
	k := &Keyring{current: current, keys: map[string][]byte{}}
	for id, key := range keys {
		if len(key) != 32 {
			return nil, fmt.Errorf("credential: key %q is %d bytes; AES-256 needs 32", id, len(key))
		}
		if !validKeyID(id) {
			return nil, fmt.Errorf("credential: key id %q must be 1-64 printable ASCII characters without ':', ',' or spaces", id)
		}
		k.keys[id] = bytes.Clone(key)
	}
	return k, nil
}

// ParseKeys reads "id:base64key[,id:base64key...]"; the first is current.
func ParseKeys(s string) (*Keyring, error) {
	keys := map[string][]byte{}
	current := ""
	for _, part := range strings.Split(strings.TrimSpace(s), ",") {
		id, enc, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, errors.New("credential: keys must look like id:base64key[,id:base64key]")
		}
		key, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("credential: key %q is not base64", id)
		}
		if current == "" {
			current = id
		}
		keys[id] = key
	}
	return NewKeyring(current, keys)
}

// Export writes the keyring in ParseKeys form, current key first. It is a
// secret: write it only to a key file or a secret store.
func (k *Keyring) Export() string {
	parts := []string{k.current + ":" + base64.StdEncoding.EncodeToString(k.keys[k.current])}
	for _, id := range k.ids() {
		if id != k.current {
			parts = append(parts, id+":"+base64.StdEncoding.EncodeToString(k.keys[id]))
		}
	}
	return strings.Join(parts, ",")
}

func (k *Keyring) ids() []string {
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// String describes the keyring without its keys: the key ids only. Every
// way of printing a keyring (fmt verbs, slog, JSON) goes through it.
func (k Keyring) String() string {
	return fmt.Sprintf("credential.Keyring{current: %s, keys: %s (redacted)}", k.current, strings.Join((&k).ids(), ","))
}

// GoString is String, for %#v.
func (k Keyring) GoString() string { return k.String() }

// Format prints String for every verb, so %v, %+v, %#v, %s, %q and %x
// never reach the key bytes.
func (k Keyring) Format(f fmt.State, verb rune) { io.WriteString(f, k.String()) }

// LogValue keeps the keys out of structured logs.
func (k Keyring) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON keeps the keys out of JSON.
func (k Keyring) MarshalJSON() ([]byte, error) { return json.Marshal(k.String()) }

// ErrKeyFileMissing is the error of LoadKeyringFor when the key file
// does not exist while secrets sealed with it do.
var ErrKeyFileMissing = errors.New("credential: the key file is missing")

// LoadKeyring returns the keyring from the environment variable KeysEnv
// when set (getenv may be nil), else from the key file at path, creating
// the file with a new random key and mode 0600 when it does not exist.
func LoadKeyring(path string, getenv func(string) string) (*Keyring, error) {
	return LoadKeyringFor(path, getenv, nil)
}

// LoadKeyringFor is LoadKeyring for a database holding secrets sealed
// with the keys sealedWith (their ids, as KeyIDOf names them): when the
// key file does not exist and sealedWith is not empty, it refuses with
// ErrKeyFileMissing instead of creating a new key, which could never
// open those secrets.
func LoadKeyringFor(path string, getenv func(string) string, sealedWith []string) (*Keyring, error) {
	if getenv != nil {
		if v := getenv(KeysEnv); v != "" {
			return ParseKeys(v)
		}
	}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if info, statErr := os.Stat(path); statErr == nil && info.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("credential: key file %s is readable by others (mode %04o); run chmod 600 %s", path, info.Mode().Perm(), path)
		}
		return ParseKeys(string(raw))
	case errors.Is(err, os.ErrNotExist) && len(sealedWith) > 0:
		return nil, fmt.Errorf("%w: %s does not exist, but the database holds secrets sealed with key %s; "+
			"restore that file, or name it with --key-file (or put its contents in %s). "+
			"No new key is made: it could never open those secrets",
			ErrKeyFileMissing, path, strings.Join(sealedWith, ", "), KeysEnv)
	case errors.Is(err, os.ErrNotExist):
		k, err := GenerateKeyring()
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("credential: create key file: %w", err)
		}
		if _, err := f.WriteString(k.Export() + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("credential: write key file: %w", err)
		}
		return k, f.Close()
	default:
		return nil, fmt.Errorf("credential: read key file: %w", err)
	}
}

// GenerateKeyring returns a keyring with one new random key.
func GenerateKeyring() (*Keyring, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	id := newKeyID()
	return NewKeyring(id, map[string][]byte{id: key})
}

// Rotated returns a keyring with a new random current key and every key
// of k, so old ciphertexts still open.
func (k *Keyring) Rotated() (*Keyring, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	keys := map[string][]byte{}
	for id, v := range k.keys {
		keys[id] = v
	}
	id := newKeyID()
	keys[id] = key
	return NewKeyring(id, keys)
}

// Current returns the id of the key new ciphertexts use.
func (k *Keyring) Current() string { return k.current }

func newKeyID() string { return "k" + randomID()[:10] }

// Seal encrypts plaintext. aad binds the ciphertext to its place (the
// credential id and the field), so it cannot be moved to another row.
// Format: version, key id length, key id, 12-byte nonce, ciphertext+tag.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	gcm, err := k.aead(k.current)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, gcm.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	out := []byte{sealVersion, byte(len(k.current))}
	out = append(out, k.current...)
	out = append(out, nonce...)
	return gcm.Seal(out, nonce, plaintext, aad), nil
}

// Open decrypts a ciphertext from Seal.
func (k *Keyring) Open(blob, aad []byte) ([]byte, error) {
	id, ok := KeyIDOf(blob)
	if !ok {
		return nil, errors.New("credential: ciphertext is malformed")
	}
	gcm, err := k.aead(id)
	if err != nil {
		return nil, err
	}
	rest := blob[2+len(id):]
	if len(rest) < gcm.NonceSize()+gcm.Overhead() {
		return nil, errors.New("credential: ciphertext is too short")
	}
	plain, err := gcm.Open(nil, rest[:gcm.NonceSize()], rest[gcm.NonceSize():], aad)
	if err != nil {
		return nil, errors.New("credential: ciphertext does not decrypt (wrong key or tampered)")
	}
	return plain, nil
}

// KeyIDOf returns the id of the key that sealed blob; false when blob is
// not a ciphertext of Seal.
func KeyIDOf(blob []byte) (string, bool) {
	if len(blob) < 2 || blob[0] != sealVersion || len(blob) < 2+int(blob[1]) {
		return "", false
	}
	id := string(blob[2 : 2+int(blob[1])])
	return id, validKeyID(id)
}

// validKeyID reports whether id can name a key: 1-64 printable ASCII
// characters without ':', ',' or spaces.
func validKeyID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if c <= ' ' || c > '~' || c == ':' || c == ',' {
			return false
		}
	}
	return true
}

func (k *Keyring) aead(id string) (cipher.AEAD, error) {
	key, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("credential: no key %q in the keyring (was the key file replaced?)", id)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
