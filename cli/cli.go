// Package cli is isoedge's offline command line: it customizes images on
// disk with the same plans the service serves, in the verbs of
// coreos-installer (iso ignition embed, iso kargs modify, pxe ignition
// wrap, …) plus the older customize and customize-initrd.
//
// Every command reads its inputs, builds a customize.Plan and writes it:
// base bytes with copy_file_range, patches from memory, into a temporary
// file beside the output that is synced and renamed, so an output (or an
// ISO changed in place) is never half-written.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/isoedge/isoedge/internal/version"
	"github.com/spf13/pflag"
)

// usageError is a command line mistake: exit status 2.
type usageError struct {
	cmd string // the command's name, "" for the command line as a whole
	msg string
}

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error of the command being run.
func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// env is what a command runs with.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// Run runs one offline command with the process's standard input and
// returns the process exit status: 0 on success, 1 when the command fails,
// 2 for a usage error. Errors are one line on stderr.
func Run(args []string, stdout, stderr io.Writer) int {
	return RunIO(args, os.Stdin, stdout, stderr)
}

// RunIO is Run with an explicit standard input.
func RunIO(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	err := dispatch(e, args)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		hint := "isoedge help"
		if ue.cmd != "" {
			hint += " " + ue.cmd
		}
		prefix := "isoedge: "
		if ue.cmd != "" {
			prefix = "isoedge " + ue.cmd + ": "
		}
		fmt.Fprintf(stderr, "%s%s (see '%s')\n", prefix, oneLine(ue.msg), hint)
		return 2
	default:
		fmt.Fprintln(stderr, "isoedge:", oneLine(err.Error()))
		return 1
	}
}

// oneLine keeps an error message on one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", "; ")), " ")
}

// dispatch finds the command named by the leading words of args and runs
// it with the rest.
func dispatch(e *env, args []string) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	switch args[0] {
	case "version", "--version", "-version":
		if len(args) > 1 {
			return usagef("version takes no arguments")
		}
		fmt.Fprintln(e.stdout, version.String())
		return nil
	case "help", "-h", "-help", "--help":
		return help(e, args[1:])
	}
	cmd, rest, err := lookup(args)
	if err != nil {
		return err
	}
	if cmd.group {
		if len(rest) > 0 && isHelpFlag(rest[0]) {
			return writeGroupHelp(e.stdout, cmd.name)
		}
		if len(rest) == 0 {
			return &usageError{cmd: cmd.name, msg: "needs a verb: " + strings.Join(subverbs(cmd.name), ", ")}
		}
		return &usageError{cmd: cmd.name, msg: fmt.Sprintf("unknown verb %q; one of %s", rest[0], strings.Join(subverbs(cmd.name), ", "))}
	}
	fs := newFlagSet(cmd)
	run := cmd.setup(fs)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return writeHelp(e.stdout, cmd)
		}
		return &usageError{cmd: cmd.name, msg: err.Error()}
	}
	err = run(e, fs.Args())
	var ue *usageError
	if errors.As(err, &ue) && ue.cmd == "" {
		ue.cmd = cmd.name
	}
	return err
}

func isHelpFlag(s string) bool { return s == "-h" || s == "--help" || s == "-help" }

// lookup returns the command whose name is the longest run of leading
// words of args, and the arguments after it.
func lookup(args []string) (*command, []string, error) {
	var found *command
	n := 0
	for i := 1; i <= len(args); i++ {
		name := strings.Join(args[:i], " ")
		c := findCommand(name)
		if c == nil {
			break
		}
		found, n = c, i
	}
	if found == nil {
		return nil, nil, usagef("unknown command %q", args[0])
	}
	return found, args[n:], nil
}

func findCommand(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

// subverbs returns the words that may follow the group name.
func subverbs(group string) []string {
	var out []string
	for _, c := range commands() {
		if rest, ok := strings.CutPrefix(c.name, group+" "); ok && !strings.Contains(rest, " ") {
			out = append(out, rest)
		}
	}
	return out
}

// newFlagSet returns the flag set a command's setup defines its flags in:
// GNU-style (-o OUT, --output=OUT), flags and arguments in any order,
// -h and --help for the command's help.
func newFlagSet(c *command) *pflag.FlagSet {
	fs := pflag.NewFlagSet(c.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SortFlags = false
	return fs
}

// argCount checks the number of positional arguments.
func argCount(args []string, want int, what string) error {
	if len(args) != want {
		return usagef("takes %s, got %d arguments", what, len(args))
	}
	return nil
}
