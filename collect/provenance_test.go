package collect

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
)

// TestLoadChartKeyring reads the keyrings operators have: gpg --export
// (binary) and gpg --export --armor; anything else is refused by name.
func TestLoadChartKeyring(t *testing.T) {
	dir := t.TempDir()
	e, err := openpgp.NewEntity("Chart Signer", "", "signer@example.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	var bin bytes.Buffer
	if err := e.Serialize(&bin); err != nil {
		t.Fatal(err)
	}
	var arm bytes.Buffer
	w, err := armor.Encode(&arm, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bin.Bytes())
	w.Close()
	for name, data := range map[string][]byte{"pubring.gpg": bin.Bytes(), "pubring.asc": arm.Bytes()} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, data, 0o644)
		kr, err := LoadChartKeyring(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := kr.fingerprints(); got == "" || len(kr.sig.KeyRing) != 1 {
			t.Errorf("%s: keys %q", name, got)
		}
	}
	for name, data := range map[string][]byte{"empty.gpg": nil, "cosign.pub": []byte("-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n")} {
		path := filepath.Join(dir, name)
		os.WriteFile(path, data, 0o644)
		if _, err := LoadChartKeyring(path); !errors.Is(err, ErrUsage) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
			t.Errorf("%s: got %v, want a usage error naming the file", name, err)
		}
	}
	if _, err := LoadChartKeyring(filepath.Join(dir, "missing.gpg")); !errors.Is(err, ErrUsage) {
		t.Errorf("missing keyring: %v", err)
	}
}
