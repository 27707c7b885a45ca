package verify

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// maxKeyFileSize caps what is read from a key file. A PEM key is a few
// kilobytes; anything near this size is the wrong file and not worth holding.
const maxKeyFileSize = 1 << 20

// encryptedCosignPEMType is the block type older cosign releases wrote for
// encrypted keys; cryptoutils reads it but does not export the name.
const encryptedCosignPEMType = "ENCRYPTED COSIGN PRIVATE KEY"

// GenerateKey returns a new ECDSA P-256 key pair as PEM: the public key as
// PKIX ("PUBLIC KEY"), the private key as PKCS#8 ("PRIVATE KEY") when the
// passphrase is empty. With a passphrase the PKCS#8 DER is encrypted the way
// cosign encrypts its own keys (scrypt and NaCl secretbox, block type
// "ENCRYPTED SIGSTORE PRIVATE KEY"), so `cosign sign-blob --key` accepts the
// same file.
func GenerateKey(passphrase []byte) (privPEM, pubPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate ECDSA P-256 key: %w", err)
	}
	pubPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	if len(passphrase) == 0 {
		privPEM, err = cryptoutils.MarshalPrivateKeyToPEM(priv)
		if err != nil {
			return nil, nil, fmt.Errorf("encode private key: %w", err)
		}
		return privPEM, pubPEM, nil
	}
	der, err := cryptoutils.MarshalPrivateKeyToEncryptedDER(priv, cryptoutils.StaticPasswordFunc(passphrase))
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	return cryptoutils.PEMEncode(cryptoutils.EncryptedSigstorePrivateKeyPEMType, der), pubPEM, nil
}

// WriteKeyPair generates a key pair with GenerateKey and writes the private
// key to privPath (mode 0600) and the public key to pubPath (mode 0644). It
// never replaces an existing file: if either path exists it returns an error
// wrapping ErrExists and writes nothing.
func WriteKeyPair(privPath, pubPath string, passphrase []byte) error {
	if filepath.Clean(privPath) == filepath.Clean(pubPath) {
		return fmt.Errorf("private and public key paths are both %s", privPath)
	}
	// Checking both first keeps a clash on the second path from leaving a
	// fresh private key behind.
	for _, p := range []string{privPath, pubPath} {
		if err := refuseExisting(p); err != nil {
			return err
		}
	}
	privPEM, pubPEM, err := GenerateKey(passphrase)
	if err != nil {
		return err
	}
	if err := writeNewFile(privPath, privPEM, 0o600); err != nil {
		return err
	}
	if err := writeNewFile(pubPath, pubPEM, 0o644); err != nil {
		// A private key whose public half was never written cannot be used
		// to check anything, and left in place it would block the retry.
		_ = os.Remove(privPath)
		return err
	}
	return nil
}

// LoadPrivateKey reads a PEM private key: PKCS#8, PKCS#1 RSA or SEC 1 EC,
// plain or encrypted (cosign's format, PKCS#8 "ENCRYPTED PRIVATE KEY" or a
// legacy encrypted PEM block). The passphrase is only used for an encrypted
// key. Errors name the file.
func LoadPrivateKey(path string, passphrase []byte) (crypto.PrivateKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePrivateKey(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return key, nil
}

// ParsePrivateKey is LoadPrivateKey for PEM bytes already in memory. An
// encrypted key with an empty passphrase gives ErrPassphraseRequired; one that
// does not decrypt gives ErrBadPassphrase.
func ParsePrivateKey(pemBytes, passphrase []byte) (crypto.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block found", ErrMalformedKey)
	}
	encrypted := isEncryptedPEM(block)
	if encrypted && len(passphrase) == 0 {
		// cryptoutils would parse the ciphertext as a key and report a
		// confusing ASN.1 error; say what is actually missing.
		return nil, ErrPassphraseRequired
	}
	var pf cryptoutils.PassFunc
	if encrypted {
		pf = cryptoutils.StaticPasswordFunc(passphrase)
	}
	key, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, pf)
	if err != nil {
		if encrypted {
			// The ciphers used do not tell a wrong passphrase from damaged
			// ciphertext, and the former is by far the likelier.
			return nil, fmt.Errorf("%w: %w", ErrBadPassphrase, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	return key, nil
}

// LoadPublicKey reads a PEM public key, PKIX ("PUBLIC KEY") or PKCS#1 RSA
// ("RSA PUBLIC KEY"). Errors name the file.
func LoadPublicKey(path string) (crypto.PublicKey, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	key, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", path, err)
	}
	return key, nil
}

// ParsePublicKey is LoadPublicKey for PEM bytes already in memory, such as a
// vendor key carried inside an archive.
func ParsePublicKey(pemBytes []byte) (crypto.PublicKey, error) {
	key, err := cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedKey, err)
	}
	return key, nil
}

// KeyID names a public key in messages: "sha256:" and the hex SHA-256 of its
// PKIX DER encoding, the same value as
// `openssl pkey -pubin -outform DER | sha256sum`. It is empty for a key that
// has no PKIX encoding.
func KeyID(pub crypto.PublicKey) string {
	der, err := cryptoutils.MarshalPublicKeyToDER(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func isEncryptedPEM(block *pem.Block) bool {
	switch block.Type {
	case string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), encryptedCosignPEMType, "ENCRYPTED PRIVATE KEY":
		return true
	}
	// RFC 1421 style encryption, as `openssl ec -aes256` still writes.
	return strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED")
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key %s: %w: larger than %d bytes", path, ErrMalformedKey, maxKeyFileSize)
	}
	return data, nil
}

func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s: %w", path, ErrExists)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("check %s: %w", path, err)
	}
}

// writeNewFile writes data to path through a synced temporary file in the
// same directory, so a crash leaves either no file or the whole key, and
// never replaces an existing file.
func writeNewFile(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmpName)
		}
	}()
	// Chmod rather than the create mode, so the umask cannot loosen or
	// tighten what the caller asked for.
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = publish(tmpName, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// publish moves the finished temporary file to path without replacing
// anything there. A hard link fails atomically when path exists, which a
// rename would not; where links are not supported it falls back to a check
// and a rename.
func publish(tmpName, path string) error {
	err := os.Link(tmpName, path)
	switch {
	case err == nil:
		if err := os.Remove(tmpName); err != nil {
			return fmt.Errorf("write %s: remove temporary file: %w", path, err)
		}
		return nil
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%s: %w", path, ErrExists)
	}
	if err := refuseExisting(path); err != nil {
		return err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// syncDir makes the new directory entry durable. It is best effort: some
// filesystems refuse fsync on a directory, and the file itself is already
// synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
