package credential_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outreach-connector/outreach-connector/internal/credential"
)

func TestKeyringSealOpen(t *testing.T) {
	k, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("s3cret+/=&%")
	blob, err := k.Seal(secret, []byte("id1|client_secret"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(blob, secret) {
		t.Fatal("ciphertext contains the plaintext")
	}
	if id, ok := credential.KeyIDOf(blob); !ok || id != k.Current() {
		t.Errorf("KeyIDOf = %q, %v; want %q", id, ok, k.Current())
	}
	rotated, err := k.Rotated()
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Clone(blob)
	tampered[len(tampered)-1] ^= 1
	other, _ := credential.GenerateKeyring()
	tests := []struct {
		name    string
		keys    *credential.Keyring
		blob    []byte
		aad     string
		wantErr string
	}{
		{"round trip", k, blob, "id1|client_secret", ""},
		{"old ciphertext after rotation", rotated, blob, "id1|client_secret", ""},
		{"moved to another row", k, blob, "id2|client_secret", "does not decrypt"},
		{"tampered", k, tampered, "id1|client_secret", "does not decrypt"},
		{"unknown key", other, blob, "id1|client_secret", "no key"},
		{"garbage", k, []byte{9, 9, 9}, "x", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.keys.Open(tt.blob, []byte(tt.aad))
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(got, secret) {
					t.Errorf("Open = %q, %v", got, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Open error = %v, want %q", err, tt.wantErr)
			}
		})
	}
	newBlob, _ := rotated.Seal(secret, nil)
	if id, _ := credential.KeyIDOf(newBlob); id != rotated.Current() || id == k.Current() {
		t.Errorf("a rotated keyring seals with %q, want its new key", id)
	}
}

func TestLoadKeyring(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "outreach.key")
	first, err := credential.LoadKeyring(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v; want 0600", info.Mode().Perm(), err)
	}
	second, err := credential.LoadKeyring(path, nil)
	if err != nil || second.Current() != first.Current() {
		t.Errorf("reload: %v, key %q vs %q", err, second.Current(), first.Current())
	}
	fromEnv, err := credential.LoadKeyring(path, func(k string) string {
		if k == credential.KeysEnv {
			return first.Export()
		}
		return ""
	})
	if err != nil || fromEnv.Current() != first.Current() {
		t.Errorf("from the environment: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := credential.LoadKeyring(path, nil); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable key file: %v, want an error telling to chmod 600", err)
	}
	for _, bad := range []string{"nokey", "k1:notbase64!", "k1:" + strings.Repeat("A", 8)} {
		if _, err := credential.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) succeeded", bad)
		}
	}
}

// A key file that is missing while a database holds secrets sealed with
// it is refused, naming the file and the key, and no new key file is
// made: a new key could never open those secrets.
func TestLoadKeyringForRefusesAMissingKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outreach.key")
	_, err := credential.LoadKeyringFor(path, nil, []string{"k0123456789"})
	if !errors.Is(err, credential.ErrKeyFileMissing) || !strings.Contains(err.Error(), path) ||
		!strings.Contains(err.Error(), "k0123456789") || !strings.Contains(err.Error(), "--key-file") {
		t.Fatalf("LoadKeyringFor with sealed secrets and no key file: %v; want ErrKeyFileMissing naming the file, the key and --key-file", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a key file was made: %v", err)
	}
	k, err := credential.LoadKeyringFor(path, nil, nil)
	if err != nil {
		t.Fatalf("no sealed secrets: %v; want a new key file", err)
	}
	again, err := credential.LoadKeyringFor(path, nil, []string{k.Current()})
	if err != nil || again.Current() != k.Current() {
		t.Fatalf("the key file that sealed them: %v", err)
	}
}

// TestKeyringNeverPrintsItsKeys prints a keyring every way a program
// might (fmt verbs on the value and the pointer, slog, JSON) and checks
// that no key, in any encoding, comes out, while Export still round-trips.
func TestKeyringNeverPrintsItsKeys(t *testing.T) {
	k, err := credential.GenerateKeyring()
	if err != nil {
		t.Fatal(err)
	}
	k, err = k.Rotated()
	if err != nil {
		t.Fatal(err)
	}
	exported := k.Export()
	var secrets []string
	for _, part := range strings.Split(exported, ",") {
		_, enc, _ := strings.Cut(part, ":")
		raw, _ := base64.StdEncoding.DecodeString(enc)
		secrets = append(secrets, enc, hex.EncodeToString(raw), fmt.Sprint(raw), fmt.Sprintf("%q", raw), string(raw))
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("loaded", "keys", k, "value", *k)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("loaded", "keys", k)
	js, _ := json.Marshal(map[string]any{"k": k})
	printed := []string{k.String(), fmt.Sprint(k), fmt.Sprint(*k), fmt.Sprintf("%v %+v %#v %s %q %x %X", k, k, k, k, k, k, k),
		fmt.Sprintf("%v %+v %#v %s %x", *k, *k, *k, *k, *k), fmt.Sprintf("%v", []*credential.Keyring{k}),
		fmt.Sprintf("%+v", struct{ K *credential.Keyring }{k}), logs.String(), string(js)}
	for _, p := range printed {
		for _, s := range secrets {
			if strings.Contains(p, s) {
				t.Fatalf("a printed keyring holds key material: %q", p)
			}
		}
	}
	if !strings.Contains(k.String(), k.Current()) || !strings.Contains(k.String(), "redacted") {
		t.Errorf("String() = %q; want the key ids and a note that keys are redacted", k.String())
	}
	back, err := credential.ParseKeys(exported)
	if err != nil || back.Export() != exported {
		t.Errorf("Export does not round-trip: %v", err)
	}
}
