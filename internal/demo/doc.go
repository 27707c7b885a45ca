// Package demo holds `make demo`: ferry run end to end, as an operator would
// run it, against local stand-ins that the test bed starts (a source registry
// with generated images, a TLS and basic-auth registry standing in for Zot,
// and hub and spoke API servers) and content it generates itself (a Helm chart
// repository, a Profile Bundle, a signed Artifact Studio pack and a pack
// tarball). It is a test behind the `demo` build tag so it shares the test
// bed's real servers and cleans up after itself.
package demo
