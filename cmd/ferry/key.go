package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ferrytool/ferry/verify"
)

// passphraseEnv holds the passphrase of an encrypted signing key when it is
// not piped in on standard input.
const passphraseEnv = "FERRY_KEY_PASSPHRASE"

type keyGenerateFlags struct {
	output          string
	passphraseStdin bool
}

func keyCommand(env *environment) *cli.Command {
	var f keyGenerateFlags
	return &cli.Command{
		Name:  "key",
		Usage: "manage the key pair that signs archives",
		Subcommands: []*cli.Command{{
			Name:  "generate",
			Usage: "generate an ECDSA P-256 key pair: PREFIX.key (private, mode 0600) and PREFIX.pub",
			Description: "The private key signs archives on the connected side; copy only PREFIX.pub to the\n" +
				"air-gapped side. With --passphrase-stdin (or " + passphraseEnv + " set) the private key is\n" +
				"encrypted the way cosign encrypts its keys. Existing files are never overwritten.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "ferry", Usage: "path prefix of the key files", Destination: &f.output},
				&cli.BoolFlag{Name: "passphrase-stdin", Usage: "read a passphrase for the private key from standard input", Destination: &f.passphraseStdin},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() > 0 {
					return usageErrorf("key generate takes no arguments (got %q); give the path prefix with --output", c.Args().First())
				}
				pass, err := readPassphrase(env, f.passphraseStdin)
				if err != nil {
					return err
				}
				priv, pub := f.output+".key", f.output+".pub"
				if err := verify.WriteKeyPair(priv, pub, pass); err != nil {
					return err
				}
				pk, err := verify.LoadPublicKey(pub)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.stdout, "wrote %s (private, keep it on this side) and %s (public, key id %s)\n", priv, pub, verify.KeyID(pk))
				return nil
			},
		}},
	}
}

// readPassphrase takes a passphrase from standard input when asked, else from
// the environment; empty means none.
func readPassphrase(env *environment, fromStdin bool) ([]byte, error) {
	if fromStdin {
		line, err := bufio.NewReader(env.stdin).ReadString('\n')
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read passphrase from standard input: %w", err)
		}
		return []byte(strings.TrimRight(line, "\r\n")), nil
	}
	return []byte(os.Getenv(passphraseEnv)), nil
}
