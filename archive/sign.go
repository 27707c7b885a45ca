package archive

import "context"

// Signer signs the exact bytes of a bill of materials and returns the content
// of the signature file written beside it.
type Signer interface {
	SignBOM(ctx context.Context, bom []byte) ([]byte, error)
}

// Verifier checks a signature file's content against the exact bytes of a
// bill of materials.
type Verifier interface {
	VerifyBOM(ctx context.Context, bom, sig []byte) error
}
