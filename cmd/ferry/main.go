// Command ferry carries what an air-gapped PaletteAI install needs across the
// gap: collect on the connected side, ingest on the air-gapped side.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run builds the application and runs it; tests call it in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	args, err := reorderArgs(app, args)
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	fmt.Fprintf(stderr, "ferry: %v\n", err)
	return code
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	env := &environment{stdin: stdin, stdout: stdout, stderr: stderr}
	cmds := commands(env)
	markUsageErrors(cmds)
	return &cli.App{
		Name:    "ferry",
		Usage:   "carry PaletteAI content across an air gap on removable media",
		Version: version,
		Description: "On a connected workstation, `ferry collect` resolves Profile Bundles, Palette packs,\n" +
			"Helm charts and container images into one signed, zstd-compressed OCI-layout archive,\n" +
			"cut into volumes that fit the media. On the air-gapped admin host, `ferry verify` checks it,\n" +
			"`ferry ingest` pushes it into the appliance's Zot registry, and the cluster steps follow.\n\n" +
			exitCodesHelp,
		Reader:                 stdin,
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		ExitErrHandler:         func(*cli.Context, error) {}, // run() reports errors and picks the code
		OnUsageError:           onUsageError,
		Commands:               cmds,
	}
}

// environment is what every command may touch of the outside world; keeping
// it in one value lets tests run commands in-process.
type environment struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}
