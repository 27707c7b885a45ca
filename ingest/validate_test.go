package ingest

import (
	"errors"
	"testing"
)

// Callers tell other content from missing content with errors.Is, never by
// reading the message.
func TestValidationErrTellsWrongDigests(t *testing.T) {
	for _, tc := range []struct {
		statuses      []string
		invalid, kind bool
	}{
		{statuses: []string{ValidOK, ValidOK}},
		{statuses: []string{ValidOK, ValidMissingTag, ValidMissingRepository}, invalid: true},
		{statuses: []string{ValidMissingTag, ValidWrongDigest}, invalid: true, kind: true},
	} {
		v := &Validation{}
		for _, s := range tc.statuses {
			v.Artifacts = append(v.Artifacts, ValidatedArtifact{Repository: "base/images/x", Ref: "1", Status: s})
		}
		err := v.Err()
		if errors.Is(err, ErrValidation) != tc.invalid || errors.Is(err, ErrWrongDigest) != tc.kind {
			t.Errorf("%v: err %v, want validation error %v, wrong digest %v", tc.statuses, err, tc.invalid, tc.kind)
		}
	}
}
