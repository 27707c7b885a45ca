package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// writeCLIDoc writes docs/cli.md: every visible command with its usage,
// description and flags, taken from the definitions the application runs
// with, so the page cannot drift from the binary (a test compares them).
func writeCLIDoc(w io.Writer, app *cli.App) {
	fmt.Fprintf(w, "# ferry command line\n\n")
	fmt.Fprintf(w, "<!-- Written from the commands' definitions by `go test ./cmd/ferry -run TestCLIDoc -update`; do not edit by hand. -->\n\n")
	fmt.Fprintf(w, "%s.\n\n", capitalize(app.Usage))
	fmt.Fprintf(w, "Flags go anywhere on the command line, before, between or after the arguments, as with\n"+
		"kubectl and helm; `--` ends the flags. A flag ferry does not know is an error (exit 2).\n\n")
	fmt.Fprintf(w, "```\n%s\n```\n", strings.TrimSpace(exitCodesHelp))
	var doc func(path string, cs []*cli.Command)
	doc = func(path string, cs []*cli.Command) {
		for _, c := range cs {
			if c.Hidden {
				continue
			}
			name := path + " " + c.Name
			fmt.Fprintf(w, "\n## %s\n\n", name)
			if c.Usage != "" {
				fmt.Fprintf(w, "%s.\n\n", capitalize(c.Usage))
			}
			usage := name
			if len(c.Subcommands) > 0 {
				usage += " COMMAND"
			}
			if len(c.Flags) > 0 {
				usage += " [flags]"
			}
			if a := strings.TrimSpace(c.ArgsUsage); a != "" {
				usage += " " + a
			}
			fmt.Fprintf(w, "```\n%s\n```\n", usage)
			if d := strings.TrimSpace(strings.Split(c.Description, "EXIT CODES:")[0]); d != "" {
				fmt.Fprintf(w, "\n```\n%s\n```\n", d)
			}
			if len(c.Subcommands) > 0 {
				fmt.Fprintf(w, "\n| Command | What it does |\n|---|---|\n")
				for _, s := range c.Subcommands {
					if !s.Hidden {
						fmt.Fprintf(w, "| `%s %s` | %s |\n", name, s.Name, mdCell(s.Usage))
					}
				}
			}
			writeFlagTable(w, c.Flags)
			doc(name, c.Subcommands)
		}
	}
	doc("ferry", app.Commands)
}

func writeFlagTable(w io.Writer, flags []cli.Flag) {
	var rows []string
	for _, f := range flags {
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			continue
		}
		var names []string
		for _, n := range f.Names() {
			if len(n) == 1 {
				names = append(names, "`-"+n+"`")
			} else {
				names = append(names, "`--"+n+"`")
			}
		}
		def := ""
		if df, ok := f.(cli.DocGenerationFlag); ok && df.TakesValue() {
			if v := df.GetDefaultText(); v != "" {
				def = "`" + v + "`"
			} else if v := df.GetValue(); v != "" && v != "[]" {
				def = "`" + v + "`"
			}
		}
		if rf, ok := f.(cli.RequiredFlag); ok && rf.IsRequired() {
			def = "required"
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s |", strings.Join(names, ", "), def, mdCell(flagUsage(f))))
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n| Flag | Default | Meaning |\n|---|---|---|\n%s\n", strings.Join(rows, "\n"))
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
