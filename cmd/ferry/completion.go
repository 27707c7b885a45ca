package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// Shell completion scripts, written from the commands' own definitions so
// that a flag added to a command is completed without further work.

func completionCommand(env *environment, cmds func() []*cli.Command) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script: bash, zsh or fish",
		ArgsUsage: "bash|zsh|fish",
		Description: "Completes commands, subcommands and flags. Load it for the running shell:\n" +
			"  bash: source <(ferry completion bash)\n" +
			"  zsh:  source <(ferry completion zsh)\n" +
			"  fish: ferry completion fish | source\n" +
			"or write it where the shell reads completions at start-up.",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("completion: give one shell: bash, zsh or fish")
			}
			tree := completionTree(cmds())
			switch c.Args().First() {
			case "bash":
				writeBashCompletion(env.stdout, tree)
			case "zsh":
				fmt.Fprint(env.stdout, "#compdef ferry\n# zsh completion for ferry, through bash's completion functions\nautoload -U +X bashcompinit && bashcompinit\n")
				writeBashCompletion(env.stdout, tree)
			case "fish":
				writeFishCompletion(env.stdout, tree)
			default:
				return usageErrorf("completion: unknown shell %q: use bash, zsh or fish", c.Args().First())
			}
			return nil
		},
	}
}

// completionNode is one command as completion sees it.
type completionNode struct {
	path  []string // command names from the top, empty for ferry itself
	usage string
	flags []cli.Flag
	subs  []*completionNode
}

func completionTree(cmds []*cli.Command) *completionNode {
	root := &completionNode{flags: []cli.Flag{cli.HelpFlag, cli.VersionFlag}}
	var add func(parent *completionNode, cs []*cli.Command)
	add = func(parent *completionNode, cs []*cli.Command) {
		for _, c := range cs {
			if c.Hidden {
				continue
			}
			n := &completionNode{path: append(append([]string(nil), parent.path...), c.Name), usage: c.Usage}
			for _, f := range c.Flags {
				if vf, ok := f.(cli.VisibleFlag); !ok || vf.IsVisible() {
					n.flags = append(n.flags, f)
				}
			}
			n.flags = append(n.flags, cli.HelpFlag)
			parent.subs = append(parent.subs, n)
			add(n, c.Subcommands)
		}
	}
	add(root, cmds)
	return root
}

func (n *completionNode) walk(fn func(*completionNode)) {
	fn(n)
	for _, s := range n.subs {
		s.walk(fn)
	}
}

func flagWords(fs []cli.Flag) []string {
	var out []string
	for _, f := range fs {
		for _, name := range f.Names() {
			if len(name) == 1 {
				out = append(out, "-"+name)
			} else {
				out = append(out, "--"+name)
			}
		}
	}
	sort.Strings(out)
	return out
}

func writeBashCompletion(w io.Writer, root *completionNode) {
	fmt.Fprint(w, `# bash completion for ferry, written by "ferry completion bash"
_ferry() {
    local cur="${COMP_WORDS[COMP_CWORD]}" path="" word i
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${COMP_WORDS[i]}"
        case "$path/$word" in
`)
	root.walk(func(n *completionNode) {
		if len(n.path) > 0 {
			fmt.Fprintf(w, "            %q) path=%q ;;\n", "/"+strings.Join(n.path, "/"), "/"+strings.Join(n.path, "/"))
		}
	})
	fmt.Fprint(w, `        esac
    done
    local commands="" flags=""
    case "$path" in
`)
	root.walk(func(n *completionNode) {
		var subs []string
		for _, s := range n.subs {
			subs = append(subs, s.path[len(s.path)-1])
		}
		key := ""
		if len(n.path) > 0 {
			key = "/" + strings.Join(n.path, "/")
		}
		fmt.Fprintf(w, "        %q) commands=%q; flags=%q ;;\n", key, strings.Join(subs, " "), strings.Join(flagWords(n.flags), " "))
	})
	fmt.Fprint(w, `    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    elif [[ -n "$commands" ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
}
complete -o default -F _ferry ferry
`)
}

func writeFishCompletion(w io.Writer, root *completionNode) {
	fmt.Fprintln(w, `# fish completion for ferry, written by "ferry completion fish"`)
	root.walk(func(n *completionNode) {
		cond := "__fish_use_subcommand"
		if len(n.path) > 0 {
			cond = "__fish_seen_subcommand_from " + n.path[len(n.path)-1]
		}
		for _, s := range n.subs {
			subCond := cond
			if len(n.path) > 0 {
				var names []string
				for _, x := range n.subs {
					names = append(names, x.path[len(x.path)-1])
				}
				subCond = cond + "; and not __fish_seen_subcommand_from " + strings.Join(names, " ")
			}
			fmt.Fprintf(w, "complete -c ferry -n %q -a %s -d %s\n", subCond, s.path[len(s.path)-1], fishQuote(s.usage))
		}
		if len(n.path) == 0 {
			return
		}
		for _, f := range n.flags {
			line := fmt.Sprintf("complete -c ferry -n %q", cond)
			for _, name := range f.Names() {
				if len(name) == 1 {
					line += " -s " + name
				} else {
					line += " -l " + name
				}
			}
			if takesValue(f) {
				line += " -r -F"
			}
			if u := flagUsage(f); u != "" {
				line += " -d " + fishQuote(u)
			}
			fmt.Fprintln(w, line)
		}
	})
}

func fishQuote(s string) string {
	if i := strings.IndexAny(s, ".:;("); i > 0 && len(s) > 80 {
		s = s[:i]
	}
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

func flagUsage(f cli.Flag) string {
	if df, ok := f.(cli.DocGenerationFlag); ok {
		return df.GetUsage()
	}
	return ""
}
