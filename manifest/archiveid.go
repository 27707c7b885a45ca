package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// ContentArchiveID derives an archive id from the content of a bill of
// materials: the first 16 bytes, in hex, of the SHA-256 of its canonical
// bytes with the id left empty. Two collects of the same resolved content,
// creation time and ferry build get the same id, and so can write the same
// volumes; any other content, time or build gets another.
func ContentArchiveID(b *BOM) (string, error) {
	c := *b
	c.ArchiveID = ""
	data, err := c.Marshal()
	if err != nil {
		return "", fmt.Errorf("archive id: %w", err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16]), nil
}
