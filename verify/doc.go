// Package verify owns ferry's signatures: the key pair an operator generates,
// the signature over an archive's bill of materials and over a receipt, the
// check of the signatures Spectro Cloud ships beside its packs, and the
// check of images' cosign signatures (simple-signing payloads and sigstore
// bundles) with cosign public keys, offline.
//
// The bill of materials signature file holds the base64 of an ASN.1 DER
// signature over the SHA-256 of the exact bytes, which is what `cosign
// sign-blob` writes. An auditor on either side of the air gap can therefore
// check an archive without ferry, with `cosign verify-blob --key ferry.pub` or
// with openssl after base64-decoding. Keys are ordinary PEM files (PKCS#8
// private, PKIX public), ECDSA P-256 by default; loading keys and verifying
// go through github.com/sigstore/sigstore so the encodings match cosign's
// byte for byte. Signing with an ECDSA key is deterministic (RFC 6979,
// through crypto/ecdsa), so the same content and key give the same bytes,
// which sigstore's signer, drawing a random nonce, would not.
//
// Pack signatures (`<name>.sig.bin`) are raw signatures over the SHA-256 of
// the pack archive, RSA PKCS#1 v1.5 or ECDSA. They are checked while the pack
// streams, so a pack is never held in memory.
package verify
