package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/isoedge/isoedge/customize"
)

// kargEdit is a kernel-argument edit in coreos-installer's order: every
// argument equal to a deleted one is removed, the appended ones are added
// at the end, then every KEY=OLD becomes KEY=NEW.
type kargEdit struct {
	del, add []string
	repl     []kargReplace
}

type kargReplace struct{ old, new string }

// parseKargEdit checks the values of -d, -a and -r. Appended and
// replacement arguments must pass customize.CheckKernelArgument; a deleted
// one need only be one word.
func parseKargEdit(del, add, repl []string) (kargEdit, error) {
	var e kargEdit
	for _, d := range del {
		if d = strings.TrimSpace(d); d == "" || strings.ContainsAny(d, " \t\n") {
			return e, usagef("--delete %q: one kernel argument per flag", d)
		}
		e.del = append(e.del, d)
	}
	for _, a := range add {
		if err := customize.CheckKernelArgument(a); err != nil {
			return e, usagef("--append: %v", err)
		}
		e.add = append(e.add, a)
	}
	for _, r := range repl {
		parts := strings.Split(r, "=")
		if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return e, usagef("--replace %q: the form is KEY=OLD=NEW", r)
		}
		nw := parts[0] + "=" + parts[2]
		if err := customize.CheckKernelArgument(nw); err != nil {
			return e, usagef("--replace: %v", err)
		}
		e.repl = append(e.repl, kargReplace{old: parts[0] + "=" + parts[1], new: nw})
	}
	return e, nil
}

// apply returns the kernel arguments after the edit, and a note for every
// deleted or replaced argument that was not there.
func (e kargEdit) apply(current string) (string, []string) {
	args := strings.Fields(current)
	var notes []string
	for _, d := range e.del {
		n := len(args)
		args = slices.DeleteFunc(args, func(a string) bool { return a == d })
		if len(args) == n {
			notes = append(notes, fmt.Sprintf("--delete %s: no such kernel argument", d))
		}
	}
	args = append(args, e.add...)
	for _, r := range e.repl {
		hit := false
		for i, a := range args {
			if a == r.old {
				args[i], hit = r.new, true
			}
		}
		if !hit {
			notes = append(notes, fmt.Sprintf("--replace %s: no such kernel argument", r.old))
		}
	}
	return strings.Join(args, " "), notes
}
