// Package testbed runs the real servers ferry talks to, for end-to-end tests.
//
// It owns the test-bed binaries (found through [BinDir], installed by
// `make testbin`), a throwaway certificate authority ([CA]), the CNCF
// Distribution registry started on loopback with TLS and htpasswd basic auth
// the way Zot is set up on the appliance ([StartRegistry]), and generators that
// push random images, indexes and Docker-typed images into it.
//
// Everything here is for tests: every helper takes a testing.TB, registers its
// own cleanup and fails the test (never skips it) when a binary is missing.
package testbed
