package main

import (
	"errors"
	"fmt"

	"github.com/ferrytool/ferry/collect"
)

// sourceFlagAdvice adds, to an error of collect that says which spec field
// would fix it, the flag of collect and sync that does the same. The
// library names no flag; this is where its errors meet the command line.
func sourceFlagAdvice(err error) error {
	var (
		unreachable *collect.UnreachableChartError
		missing     *collect.MissingPacksError
		kube        *collect.KubeVersionError
	)
	var flags string
	switch {
	case errors.As(err, &unreachable):
		flags = "--upstream-repo " + unreachable.Chart + "=URL"
	case errors.As(err, &missing):
		flags = "--pack FILE, or --allow-missing-packs"
	case errors.Is(err, collect.ErrNoPackKey):
		flags = "--pack-key FILE"
	case errors.As(err, &kube):
		flags = "--kube-version VERSION"
	default:
		return err
	}
	return fmt.Errorf("%w; on the command line: %s", err, flags)
}
