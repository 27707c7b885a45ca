package main

import "github.com/urfave/cli/v2"

func keyCommand(env *environment) *cli.Command {
	return &cli.Command{Name: "key", Usage: "manage archive signing keys"}
}
