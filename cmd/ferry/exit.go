package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// Exit codes. They are part of ferry's interface: scripts at an air-gapped
// site branch on them, so a code never changes meaning.
const (
	ExitOK         = 0 // success
	ExitFailure    = 1 // any error not listed below
	ExitUsage      = 2 // bad flags or arguments
	ExitVerify     = 3 // a signature, digest or size check failed, the archive is malformed, or an image's signatures failed
	ExitIncomplete = 4 // a volume, blob or pack the work needs is missing
	ExitRegistry   = 5 // the registry refused us or could not be reached (auth, TLS, network)
	ExitCluster    = 6 // a Kubernetes API call was refused (RBAC, admission, conflict)
	ExitTimeout    = 7 // a bounded wait ran out
	ExitPartial    = 8 // some artifacts were refused; the others went in
)

const exitCodesHelp = `EXIT CODES:
   0  success
   1  error not listed below
   2  bad flags or arguments
   3  verification failed: signature, digest or size mismatch, malformed archive, or an
      image's signatures (--image-key), even when other artifacts went in
   4  incomplete: a volume, blob or pack is missing
   5  registry refused or unreachable: authentication, TLS, network
   6  Kubernetes API refused a change: RBAC, admission, conflict
   7  a bounded wait timed out
   8  partial: some artifacts were refused, the others went in`

// codedError carries an exit code with an error.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// withCode attaches an exit code to err; nil stays nil.
func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &codedError{code: code, err: err}
}

func exitCode(err error) int {
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	var ue usageError
	if errors.As(err, &ue) {
		return ExitUsage
	}
	return ExitFailure
}

// usageError marks bad flags or arguments.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// usageErrorf returns a usage error; the message should say which flag or
// argument is wrong and what is expected.
func usageErrorf(format string, args ...any) error {
	return usageError{msg: fmt.Sprintf(format, args...)}
}

// markUsageErrors makes flag-parsing failures of every command exit with
// ExitUsage.
func markUsageErrors(cmds []*cli.Command) {
	for _, c := range cmds {
		c.OnUsageError = onUsageError
		markUsageErrors(c.Subcommands)
	}
}

func onUsageError(_ *cli.Context, err error, _ bool) error {
	return usageError{msg: err.Error()}
}
