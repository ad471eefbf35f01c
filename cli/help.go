package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// runFunc runs a command with its positional arguments; its flags were
// parsed into the variables its setup bound.
type runFunc func(e *env, args []string) error

// A command is one verb of the command line, or a group of verbs.
type command struct {
	name     string // the words after "isoedge", e.g. "iso ignition embed"
	group    bool   // only groups the verbs named after it
	synopsis string // flags and arguments for the usage line
	summary  string // one line for the command list
	about    string // paragraphs for the command's own help
	older    bool   // an older spelling, listed apart
	// setup defines the command's flags in fs and returns the function
	// that runs it once fs is parsed.
	setup func(fs *pflag.FlagSet) runFunc
}

const globalIntro = `usage: isoedge [COMMAND [FLAGS] [ARGS]]

Without a command isoedge serves; its configuration comes from the
environment. A command works offline on image files and exits 0 on
success, 1 when it fails and 2 on a usage error. Flags may come before or
after the arguments; "-" as a file means standard input or output.
`

// help runs "isoedge help [COMMAND]".
func help(e *env, words []string) error {
	if len(words) == 0 {
		return writeGlobalHelp(e.stdout)
	}
	c := findCommand(strings.Join(words, " "))
	if c == nil {
		return usagef("help: unknown command %q", strings.Join(words, " "))
	}
	if c.group {
		return writeGroupHelp(e.stdout, c.name)
	}
	return writeHelp(e.stdout, c)
}

func writeGlobalHelp(w io.Writer) error {
	var b strings.Builder
	b.WriteString(globalIntro)
	section := func(title string, older bool) {
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, c := range commands() {
			if !c.group && c.older == older {
				fmt.Fprintf(&b, "  isoedge %s %s\n      %s\n", c.name, c.synopsis, c.summary)
			}
		}
	}
	section("commands", false)
	section("older spellings (ISO input)", true)
	b.WriteString("\n  isoedge version\n      print the version (also --version)\n")
	b.WriteString("  isoedge help [COMMAND]\n      print this, or a command's flags\n")
	b.WriteString("\nRun 'isoedge help COMMAND' or 'isoedge COMMAND --help' for a command's flags.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeGroupHelp(w io.Writer, group string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: isoedge %s VERB [FLAGS] [ARGS]\n\nverbs:\n", group)
	for _, c := range commands() {
		if !c.group && strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(&b, "  isoedge %s %s\n      %s\n", c.name, c.synopsis, c.summary)
		}
	}
	fmt.Fprintf(&b, "\nRun 'isoedge help %s VERB' for a verb's flags.\n", group)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeHelp writes a command's usage line, description and the text of
// every flag.
func writeHelp(w io.Writer, c *command) error {
	fs := newFlagSet(c)
	c.setup(fs)
	var b strings.Builder
	fmt.Fprintf(&b, "usage: isoedge %s %s\n\n%s.\n", c.name, c.synopsis, upperFirst(c.summary))
	if c.about != "" {
		fmt.Fprintf(&b, "\n%s\n", strings.TrimSpace(c.about))
	}
	fs.BoolP("help", "h", false, "show this help")
	fmt.Fprintf(&b, "\nflags:\n%s", flagUsages(fs, 78))
	_, err := io.WriteString(w, b.String())
	return err
}

// flagUsages lists the flags of fs, one per entry: "-o, --output OUT"
// then the usage text wrapped at cols.
func flagUsages(fs *pflag.FlagSet, cols int) string {
	type entry struct{ head, text string }
	var entries []entry
	width := 0
	fs.VisitAll(func(f *pflag.Flag) {
		head := "    --" + f.Name
		if f.Shorthand != "" {
			head = "-" + f.Shorthand + ", --" + f.Name
		}
		name, text := pflag.UnquoteUsage(f)
		if f.Value.Type() != "bool" && name != "" {
			head += " " + name
		}
		if f.Value.Type() == "string" && f.DefValue != "" {
			text += fmt.Sprintf(" (default %q)", f.DefValue)
		}
		entries = append(entries, entry{head, text})
		width = max(width, len(head))
	})
	var b strings.Builder
	indent := strings.Repeat(" ", 2+width+3)
	for _, e := range entries {
		line := fmt.Sprintf("  %-*s   ", width, e.head)
		for i, word := range strings.Fields(e.text) {
			if i > 0 && len(line)+1+len(word) > cols {
				b.WriteString(strings.TrimRight(line, " ") + "\n")
				line = indent
			} else if i > 0 {
				line += " "
			}
			line += word
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
