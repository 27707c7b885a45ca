package main

import (
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// Flags anywhere. urfave/cli, like Go's flag package, stops reading flags at
// the first positional argument, so `ferry verify media/x.tar.zst* --key k`
// would take --key for a volume. kubectl, helm and crane accept flags
// anywhere, and shell globs put the volumes first, so ferry reorders the
// command line before parsing: every flag, with its value, goes right
// after the command that defines it, positional arguments last. The
// command's own flag definitions say which flags take a value. `--` ends
// the flags; everything after it is positional.

// commandLine is a command line split by the command it runs.
type commandLine struct {
	// path is the chain of commands named, the root (nil) first.
	path []*cli.Command
	// flags holds, for each command of path, the flags (with their values)
	// that belong to it.
	flags [][]string
	// args are the positional arguments of the last command.
	args []string
	// help is set when -h or --help was given.
	help bool
}

// reorderArgs returns args with every flag moved ahead of the positional
// arguments, after the command that defines it. An argument that looks
// like a flag no command on the path defines is a usage error naming it,
// as is a required flag that is missing.
func reorderArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 {
		return args, nil
	}
	cl, err := splitCommandLine(app, args[1:])
	if err != nil {
		return nil, err
	}
	if cl == nil {
		return args, nil
	}
	if err := cl.checkRequired(); err != nil {
		return nil, err
	}
	if cl.help {
		// Help is about the command; arguments would be taken for a topic.
		cl.args = nil
	}
	out := []string{args[0]}
	for i, c := range cl.path {
		if c != nil {
			out = append(out, c.Name)
		}
		out = append(out, cl.flags[i]...)
	}
	for _, a := range cl.args {
		if strings.HasPrefix(a, "-") && a != "-" {
			out = append(out, "--")
			break
		}
	}
	return append(out, cl.args...), nil
}

// splitCommandLine finds the commands named in args and sorts every other
// argument into a flag of one of them or a positional argument. It returns
// nil when args name no command (the application's help or version).
func splitCommandLine(app *cli.App, args []string) (*commandLine, error) {
	cl := &commandLine{path: []*cli.Command{nil}, flags: [][]string{nil}}
	defs := []map[string]cli.Flag{appFlags(app)}
	cmds := app.Commands
	var rest []string
	// Walk down the commands: the first argument that is neither a flag
	// nor a flag's value names the next command, as long as the current
	// one has subcommands.
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if isFlagArg(a) {
			n, err := cl.takeFlag(defs, args[i:], false)
			if err != nil {
				return nil, err
			}
			if n == 0 { // not known yet: a flag of a subcommand named later
				rest = append(rest, a)
				name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
				if !hasValue && i+1 < len(args) && laterTakesValue(cmds, name) {
					i++
					rest = append(rest, args[i])
				}
				continue
			}
			i += n - 1
			continue
		}
		if len(cmds) == 0 {
			rest = append(rest, a)
			continue
		}
		c := findCommand(cmds, a)
		if c == nil {
			if len(cl.path) == 1 && a == "help" {
				return nil, nil
			}
			return nil, usageErrorf("%sunknown command %q; see %s --help", subject(cl.path), a, commandPath(cl.path))
		}
		cl.path = append(cl.path, c)
		cl.flags = append(cl.flags, nil)
		defs = append(defs, commandFlags(c))
		cmds = c.Subcommands
	}
	if len(cl.path) == 1 {
		// No command: only the application's own flags (help, version).
		for _, a := range rest {
			if isFlagArg(a) && a != "--" {
				return nil, usageErrorf("unknown flag %s; see ferry --help", a)
			}
		}
		return nil, nil
	}
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			cl.args = append(cl.args, rest[i+1:]...)
			break
		}
		if !isFlagArg(a) {
			cl.args = append(cl.args, a)
			continue
		}
		n, err := cl.takeFlag(defs, rest[i:], true)
		if err != nil {
			return nil, err
		}
		i += n - 1
	}
	return cl, nil
}

// takeFlag files the flag at args[0], and its value when it takes one,
// under the nearest command that defines it, and returns how many
// arguments it used. An unknown flag is an error when final is set, else
// it uses none.
func (cl *commandLine) takeFlag(defs []map[string]cli.Flag, args []string, final bool) (int, error) {
	a := args[0]
	name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
	for level := len(defs) - 1; level >= 0; level-- {
		f, ok := defs[level][name]
		if !ok {
			continue
		}
		if name == "help" || name == "h" {
			cl.help = true
		}
		n := 1
		if takesValue(f) && !hasValue && len(args) > 1 {
			n = 2
		}
		cl.flags[level] = append(cl.flags[level], args[:n]...)
		return n, nil
	}
	// -qv: short boolean flags of one command run together.
	if !strings.HasPrefix(a, "--") && len(name) > 1 && !hasValue {
		for level := len(defs) - 1; level >= 0; level-- {
			if shortBools(defs[level], name) {
				cl.flags[level] = append(cl.flags[level], a)
				return 1, nil
			}
		}
	}
	if !final {
		return 0, nil
	}
	return 0, usageErrorf("%sunknown flag %s; see %s --help", subject(cl.path), a, commandPath(cl.path))
}

// checkRequired fails for a required flag that is not given, unless help
// was asked for.
func (cl *commandLine) checkRequired() error {
	if cl.help {
		return nil
	}
	for i, c := range cl.path {
		if c == nil {
			continue
		}
		given := map[string]bool{}
		for _, a := range cl.flags[i] {
			if isFlagArg(a) {
				name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
				given[name] = true
			}
		}
		for _, f := range c.Flags {
			rf, ok := f.(cli.RequiredFlag)
			if !ok || !rf.IsRequired() {
				continue
			}
			set := false
			for _, n := range f.Names() {
				set = set || given[n]
			}
			if ef, ok := f.(interface{ GetEnvVars() []string }); ok {
				for _, e := range ef.GetEnvVars() {
					_, inEnv := os.LookupEnv(e)
					set = set || inEnv
				}
			}
			if !set {
				return usageErrorf("%sflag --%s is required; see %s --help", subject(cl.path[:i+1]), f.Names()[0], commandPath(cl.path[:i+1]))
			}
		}
	}
	return nil
}

// isFlagArg says whether a looks like a flag: "-" alone is a positional
// argument (standard input, by convention).
func isFlagArg(a string) bool { return len(a) > 1 && a[0] == '-' }

func takesValue(f cli.Flag) bool {
	if tv, ok := f.(interface{ TakesValue() bool }); ok {
		return tv.TakesValue()
	}
	return false
}

// shortBools says whether every letter of s is a boolean flag of defs.
func shortBools(defs map[string]cli.Flag, s string) bool {
	for _, r := range s {
		f, ok := defs[string(r)]
		if !ok || takesValue(f) {
			return false
		}
	}
	return true
}

// laterTakesValue says whether a subcommand below cmds defines flag name
// with a value.
func laterTakesValue(cmds []*cli.Command, name string) bool {
	for _, c := range cmds {
		if f, ok := commandFlags(c)[name]; ok && takesValue(f) {
			return true
		}
		if laterTakesValue(c.Subcommands, name) {
			return true
		}
	}
	return false
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		for _, n := range c.Names() {
			if n == name {
				return c
			}
		}
	}
	return nil
}

// commandFlags indexes a command's flags by every name, with the help flag
// urfave/cli adds to each command.
func commandFlags(c *cli.Command) map[string]cli.Flag {
	m := map[string]cli.Flag{}
	add := func(f cli.Flag) {
		for _, n := range f.Names() {
			m[n] = f
		}
	}
	if !c.HideHelp {
		add(cli.HelpFlag)
	}
	for _, f := range c.Flags {
		add(f)
	}
	return m
}

func appFlags(app *cli.App) map[string]cli.Flag {
	m := map[string]cli.Flag{}
	for _, f := range append([]cli.Flag{cli.HelpFlag, cli.VersionFlag}, app.Flags...) {
		for _, n := range f.Names() {
			m[n] = f
		}
	}
	return m
}

// commandPath names a command as typed: "ferry cluster apply".
func commandPath(path []*cli.Command) string {
	s := "ferry"
	for _, c := range path {
		if c != nil {
			s += " " + c.Name
		}
	}
	return s
}

// subject starts a message about a command: "cluster apply: ", or nothing
// for ferry itself (its errors already start with "ferry: ").
func subject(path []*cli.Command) string {
	if s := strings.TrimPrefix(commandPath(path), "ferry"); s != "" {
		return strings.TrimSpace(s) + ": "
	}
	return ""
}
