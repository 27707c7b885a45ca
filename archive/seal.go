package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// A volume's index is sealed when the volume is: the archive's key signs a
// short statement naming the archive, the bill of materials, the volume
// number and the sha256 and size of the index database's exact bytes. The
// statement and its signature are the entry NameIndexSeal, right after the
// index. A reader checks the signature with the key that checked the bill
// of materials and compares the digest before the index bytes are opened,
// so bbolt only ever reads bytes the key holder wrote.
//
// The statement's first line sets it apart from a bill of materials (a
// JSON document), so neither signature can stand in for the other.
const sealHeader = "ferry volume index seal v1"

// statement is what a seal signs.
type statement struct {
	ArchiveID   string
	BOMDigest   string
	Volume      int
	Final       bool
	IndexDigest string
	IndexSize   int64
}

func (s statement) marshal() []byte {
	return []byte(fmt.Sprintf("%s\narchive %s\nbill-of-materials %s\nvolume %d\nfinal %t\nindex %s %d\n",
		sealHeader, s.ArchiveID, s.BOMDigest, s.Volume, s.Final, s.IndexDigest, s.IndexSize))
}

func parseStatement(b []byte) (statement, error) {
	var s statement
	lines := strings.Split(string(b), "\n")
	if len(lines) != 7 || lines[0] != sealHeader || lines[6] != "" {
		return s, fmt.Errorf("not a %s statement", sealHeader)
	}
	field := func(line, key string) (string, error) {
		v, ok := strings.CutPrefix(line, key+" ")
		if !ok || v == "" {
			return "", fmt.Errorf("line %q: want %s", line, key)
		}
		return v, nil
	}
	var err error
	if s.ArchiveID, err = field(lines[1], "archive"); err != nil {
		return s, err
	}
	if s.BOMDigest, err = field(lines[2], "bill-of-materials"); err != nil {
		return s, err
	}
	v, err := field(lines[3], "volume")
	if err != nil {
		return s, err
	}
	if s.Volume, err = strconv.Atoi(v); err != nil || s.Volume < 1 {
		return s, fmt.Errorf("volume %q", v)
	}
	v, err = field(lines[4], "final")
	if err != nil {
		return s, err
	}
	if s.Final, err = strconv.ParseBool(v); err != nil {
		return s, fmt.Errorf("final %q", v)
	}
	v, err = field(lines[5], "index")
	if err != nil {
		return s, err
	}
	d, size, ok := strings.Cut(v, " ")
	s.IndexDigest = d
	if s.IndexSize, err = strconv.ParseInt(size, 10, 64); !ok || err != nil || s.IndexSize <= 0 {
		return s, fmt.Errorf("index %q", v)
	}
	if !bytes.Equal(s.marshal(), b) {
		return s, fmt.Errorf("statement is not in canonical form")
	}
	return s, nil
}

// seal is the content of NameIndexSeal.
type seal struct {
	Statement string `json:"statement"`
	Signature string `json:"signature"`
}

func makeSeal(ctx context.Context, signer Signer, s statement) ([]byte, error) {
	text := s.marshal()
	sig, err := signer.SignBOM(ctx, text)
	if err != nil {
		return nil, fmt.Errorf("seal the index of volume %d: %w", s.Volume, err)
	}
	return json.Marshal(seal{Statement: string(text), Signature: string(sig)})
}

// openSeal checks a seal's signature and returns its statement.
func openSeal(ctx context.Context, v Verifier, data []byte) (statement, error) {
	var sl seal
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sl); err != nil {
		return statement{}, fmt.Errorf("%w: index seal does not parse: %v", ErrFormat, err)
	}
	if err := v.VerifyBOM(ctx, []byte(sl.Statement), []byte(sl.Signature)); err != nil {
		return statement{}, fmt.Errorf("%w: index seal: %v", ErrSignature, err)
	}
	s, err := parseStatement([]byte(sl.Statement))
	if err != nil {
		return statement{}, fmt.Errorf("%w: index seal: %v", ErrFormat, err)
	}
	return s, nil
}
