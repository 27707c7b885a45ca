// Package registry is ferry's one client of the OCI distribution API, used
// by collect to read sources, by ingest to push, and by sync for both.
//
// It owns the destination's name ([Destination], parsed and checked once),
// the HTTP transport (HTTP/1.1, TLS, a private CA, plain HTTP), credentials
// (go-containerregistry's authn keychains, basic and token auth through its
// transport), retries with back-off that honour Retry-After, and a few small
// capabilities composed on one [Client]: exists, fetch, push and mount of
// blobs, manifests by tag or digest, the catalog and tag lists.
//
// Pushes are shaped by what registries charge per request (Zot checks an
// htpasswd password with bcrypt on every one): a blob under the chunk size
// goes in a single POST where the registry takes it, a blob another
// repository holds is mounted or uploaded in one POST, larger blobs go in
// bounded PATCH chunks that resume at the registry's offset, and answers
// already given (a 201 on a manifest PUT) are not asked again.
//
// The package never prints, reads no environment and names no CLI flag in
// its errors; callers add the advice.
package registry
