package main

import "github.com/urfave/cli/v2"

// commands lists ferry's commands; each is built by its own function with its
// flags in a struct, so nothing is shared between runs.
func commands(env *environment) []*cli.Command {
	return []*cli.Command{
		collectCommand(env),
		verifyCommand(env),
		inspectCommand(env),
		clusterCommand(env),
		keyCommand(env),
		ingestCommand(env),
		syncCommand(env),
		receiptCommand(env),
		diffCommand(env),
		completionCommand(env, func() []*cli.Command { return commands(env) }),
		renderChildCommand(env),
	}
}
