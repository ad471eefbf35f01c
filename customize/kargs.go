package customize

import (
	"fmt"
	"strings"
)

// kargPunct are the punctuation characters a kernel argument may hold
// besides ASCII letters and digits. Each means the same to GRUB's script
// lexer (an ordinary word character, outside quotes), to isolinux (which
// passes its append line on verbatim) and to the kernel's parameter parser
// (which treats only blanks and '"' specially).
//
// Deliberately absent: blanks and control characters (end the word or the
// line); ; | & < > { } (GRUB command syntax); $ (variable expansion);
// backslash, single and double quotes (GRUB removes them and re-quotes a
// word that holds a blank, so /proc/cmdline would not hold what was
// written; the kernel strips double quotes); # (starts a comment); * ? [ ]
// (GRUB's wildcard expansion when the regexp module is loaded, as in RHEL's
// signed GRUB); backtick, ! ( ) and non-ASCII bytes (no need, and no proof
// they reach the kernel unchanged).
const kargPunct = "-_.,:/=+@%~"

// kargMaxQuoted is how much of a refused argument an error message quotes.
const kargMaxQuoted = 256

// CheckKernelArgument reports whether k may be appended to the kernel
// command line of a live ISO's grub.cfg and isolinux.cfg: one or more ASCII
// letters, digits and characters of "-_.,:/=+@%~", so that GRUB (UEFI) and
// isolinux (BIOS) hand the kernel exactly k. An argument naming initrd= is
// refused as well: both boot loaders (and the kernel's EFI stub) load the
// files it names. The error wraps ErrBadKarg and quotes the argument.
func CheckKernelArgument(k string) error {
	if k == "" {
		return fmt.Errorf("%w %q: empty", ErrBadKarg, k)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(kargPunct, c) >= 0 {
			continue
		}
		return fmt.Errorf("%w %s: %s is not allowed (only ASCII letters, digits and %s)", ErrBadKarg, quoteKarg(k), describeByte(c), kargPunct)
	}
	if strings.HasPrefix(k, "initrd=") {
		return fmt.Errorf("%w %s: initrd= makes the boot loader load other files", ErrBadKarg, quoteKarg(k))
	}
	return nil
}

func quoteKarg(k string) string {
	if len(k) > kargMaxQuoted {
		return fmt.Sprintf("%q… (%d bytes)", k[:kargMaxQuoted], len(k))
	}
	return fmt.Sprintf("%q", k)
}

func describeByte(c byte) string {
	switch {
	case c == ' ':
		return "a space"
	case c < 0x20 || c == 0x7f:
		return fmt.Sprintf("control character 0x%02x", c)
	case c >= 0x80:
		return fmt.Sprintf("non-ASCII byte 0x%02x", c)
	}
	return fmt.Sprintf("%q", c)
}
