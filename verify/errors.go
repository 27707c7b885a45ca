package verify

import "errors"

var (
	// ErrExists is returned when writing a key would replace a file that is
	// already there: a key is never overwritten, since losing one orphans
	// every archive it signed.
	ErrExists = errors.New("file already exists")

	// ErrPassphraseRequired is returned when an encrypted private key is
	// loaded without a passphrase.
	ErrPassphraseRequired = errors.New("private key is encrypted: a passphrase is required")

	// ErrBadPassphrase is returned when an encrypted private key does not
	// decrypt with the passphrase given.
	ErrBadPassphrase = errors.New("wrong passphrase, or the encrypted key is damaged")

	// ErrMalformedKey is returned for a key file that is not a PEM key ferry
	// can parse.
	ErrMalformedKey = errors.New("malformed key")

	// ErrUnsupportedKey is returned for a key whose algorithm cannot be used
	// for the signature asked for.
	ErrUnsupportedKey = errors.New("unsupported key type")

	// ErrNoSignature is returned when a signature is missing or empty.
	ErrNoSignature = errors.New("no signature")

	// ErrBadSignature is returned when a signature is malformed or does not
	// match the content and key.
	ErrBadSignature = errors.New("signature does not verify")
)

var (
	// ErrArchiveInvalid is returned when an archive fails verification:
	// a bad signature, digest, size or structure.
	ErrArchiveInvalid = errors.New("archive failed verification")
	// ErrArchiveIncomplete is returned when everything present verifies but
	// volumes or blobs are missing.
	ErrArchiveIncomplete = errors.New("archive is incomplete")
)
