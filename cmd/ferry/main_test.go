package main

import (
	"os"
	"testing"
)

// runAsFerry, set in the environment, makes the test binary run ferry's
// main instead of the tests: ferry renders charts in a child process of
// its own executable, which under `go test` is this binary.
const runAsFerry = "FERRY_TEST_RUN_AS_FERRY"

func TestMain(m *testing.M) {
	if os.Getenv(runAsFerry) == "1" {
		main()
		return
	}
	os.Setenv(runAsFerry, "1")
	os.Exit(m.Run())
}
