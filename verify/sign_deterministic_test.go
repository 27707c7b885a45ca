package verify_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"testing"

	"github.com/ferrytool/ferry/verify"
)

// RFC 6979 appendix A.2.5 gives the signature of "sample" with this P-256
// key and SHA-256; matching it shows the nonce is the RFC's and not merely
// repeatable.
func TestSignBOMIsRFC6979(t *testing.T) {
	d, _ := hex.DecodeString("C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721")
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.SignBOM(context.Background(), []byte("sample"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(sig))
	if err != nil {
		t.Fatal(err)
	}
	var rs struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(raw, &rs); err != nil {
		t.Fatal(err)
	}
	wantR, _ := new(big.Int).SetString("EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716", 16)
	wantS, _ := new(big.Int).SetString("F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8", 16)
	if rs.R.Cmp(wantR) != 0 || rs.S.Cmp(wantS) != 0 {
		t.Errorf("signature of \"sample\" is\n r=%X s=%X\nwant RFC 6979 A.2.5\n r=%X s=%X", rs.R, rs.S, wantR, wantS)
	}
	v, err := verify.NewVerifier(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := v.VerifyBOM(context.Background(), []byte("sample"), sig); err != nil {
		t.Errorf("the deterministic signature does not verify: %v", err)
	}
}

// Every supported key type signs the same bytes to the same signature file,
// and different bytes to a different one.
func TestSignBOMDeterministic(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ctx := context.Background()
	for name, key := range map[string]crypto.Signer{"ecdsa-p256": p256, "ecdsa-p384": p384, "rsa": rsaKey, "ed25519": edKey} {
		t.Run(name, func(t *testing.T) {
			// Two signers from the same key, as two collects on two machines
			// would load it.
			s1, err := verify.NewSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := verify.NewSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			a, err := s1.SignBOM(ctx, testBOM)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s2.SignBOM(ctx, testBOM)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Errorf("two signatures of the same bytes differ:\n%s\n%s", a, b)
			}
			other, err := s1.SignBOM(ctx, append(append([]byte{}, testBOM...), ' '))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(a, other) {
				t.Error("different bytes gave the same signature")
			}
			v, err := verify.NewVerifier(key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if err := v.VerifyBOM(ctx, testBOM, a); err != nil {
				t.Errorf("own signature rejected: %v", err)
			}
		})
	}
}
