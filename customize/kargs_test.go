package customize

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestCheckKernelArgument(t *testing.T) {
	for _, k := range []string{
		"a=b,c", "x=1:2/3", "console=ttyS0,115200n8", "ip=dhcp", "rd.neednet=1", "isoedge.test=1",
		"coreos.inst.ignition_url=http://192.0.2.1:8080/a%20b/x.ign", "nameserver=192.0.2.1", "--",
		"a~b+c@d", "rd.driver.blacklist=nouveau", "ip=192.0.2.10::192.0.2.1:255.255.255.0:host:eth0:none",
		"BOOT_IMAGE=x", "foo.initrd=x", "=x", "k=", strings.Repeat("k", 5000),
	} {
		if err := CheckKernelArgument(k); err != nil {
			t.Errorf("CheckKernelArgument(%.40q): %v", k, err)
		}
	}
	for k, why := range map[string]string{
		"":                        "empty",
		`x="unterminated`:         `'"' is not allowed`,
		`y="p q"`:                 `'"' is not allowed`,
		"x=1;linux /evil":         `';' is not allowed`,
		"$root":                   `'$' is not allowed`,
		"a=`id`":                  "'`' is not allowed",
		"{":                       `'{' is not allowed`,
		"}":                       `'}' is not allowed`,
		`a\b`:                     `'\\' is not allowed`,
		"#x":                      `'#' is not allowed`,
		"a|b":                     `'|' is not allowed`,
		"a&b":                     `'&' is not allowed`,
		"a<b":                     `'<' is not allowed`,
		"a>b":                     `'>' is not allowed`,
		"'q'":                     `'\'' is not allowed`,
		"a\nmenuentry evil {":     "control character 0x0a",
		"a\tb":                    "control character 0x09",
		"x\ry":                    "control character 0x0d",
		"nul\x00":                 "control character 0x00",
		"del\x7f":                 "control character 0x7f",
		"a b":                     "a space",
		"   ":                     "a space",
		"*":                       `'*' is not allowed`,
		"x?":                      `'?' is not allowed`,
		"ip=[2001:db8::1]":        `'[' is not allowed`,
		"(hd0)":                   `'(' is not allowed`,
		"!x":                      `'!' is not allowed`,
		"é=1":                     "non-ASCII byte 0xc3",
		"initrd=/images/evil.img": "initrd=",
	} {
		err := CheckKernelArgument(k)
		switch {
		case !errors.Is(err, ErrBadKarg):
			t.Errorf("CheckKernelArgument(%q) = %v, want ErrBadKarg", k, err)
		case !strings.Contains(err.Error(), strconv.Quote(k)):
			t.Errorf("CheckKernelArgument(%q): message %q does not quote the argument", k, err)
		case !strings.Contains(err.Error(), why):
			t.Errorf("CheckKernelArgument(%q): message %q does not say %q", k, err, why)
		}
	}
	long := strings.Repeat("x", 1000) + ";"
	if err := CheckKernelArgument(long); !errors.Is(err, ErrBadKarg) || len(err.Error()) > 400 || !strings.Contains(err.Error(), "1001 bytes") {
		t.Errorf("long argument: %v", err)
	}
}

// grubLineWords splits one line of a GRUB script into words as GRUB's
// lexer does, for the quoting rules that matter here: blanks separate
// words, a word starting with '#' starts a comment, ';' '|' '&' '<' '>'
// '{' '}' are operators, a backslash escapes the next character, single
// quotes take everything literally, double quotes take everything but
// '\\' '$' '"'. ok is false when the line is not one command of plain
// words: an operator, a variable expansion ('$'), a wildcard character
// outside quotes ('*' '?' '[' ']'), an unterminated quote, a newline.
func grubLineWords(line string) (words []string, ok bool) {
	const operators = ";|&<>{}"
	i := 0
	for i < len(line) {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			i++
			continue
		case c == '\n' || strings.IndexByte(operators, c) >= 0:
			return words, false
		case c == '#':
			return words, true
		}
		var w []byte
	word:
		for i < len(line) {
			c := line[i]
			switch {
			case c == ' ' || c == '\t' || c == '\n' || strings.IndexByte(operators, c) >= 0:
				break word
			case c == '\\':
				if i+1 == len(line) {
					return nil, false
				}
				if line[i+1] != '\n' {
					w = append(w, line[i+1])
				}
				i += 2
			case c == '\'':
				j := strings.IndexByte(line[i+1:], '\'')
				if j < 0 {
					return nil, false
				}
				w = append(w, line[i+1:i+1+j]...)
				i += j + 2
			case c == '"':
				i++
				for {
					if i == len(line) {
						return nil, false
					}
					d := line[i]
					if d == '"' {
						i++
						break
					}
					if d == '$' {
						return nil, false
					}
					if d == '\\' && i+1 < len(line) && strings.IndexByte("$\"\\\n", line[i+1]) >= 0 {
						if line[i+1] != '\n' {
							w = append(w, line[i+1])
						}
						i += 2
						continue
					}
					w = append(w, d)
					i++
				}
			case c == '$' || strings.IndexByte("*?[]", c) >= 0:
				return nil, false
			default:
				w = append(w, c)
				i++
			}
		}
		words = append(words, string(w))
	}
	return words, true
}

// kernelParams splits a command line as the kernel's next_arg does
// (lib/cmdline.c): blanks outside double quotes separate parameters; a
// double quote opening the parameter or its value is removed, as is the
// one closing it.
func kernelParams(cmdline string) []string {
	var out []string
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' }
	for i := 0; i < len(cmdline); {
		for i < len(cmdline) && isSpace(cmdline[i]) {
			i++
		}
		if i == len(cmdline) {
			break
		}
		start := i
		quoted := cmdline[i] == '"'
		if quoted {
			start++
			i++
		}
		inQuote, equals := quoted, -1
		for ; i < len(cmdline); i++ {
			c := cmdline[i]
			if isSpace(c) && !inQuote {
				break
			}
			if equals < 0 && c == '=' {
				equals = i
			}
			if c == '"' {
				inQuote = !inQuote
			}
		}
		arg := cmdline[start:i]
		if equals >= 0 {
			param, val := cmdline[start:equals], cmdline[equals+1:i]
			if strings.HasPrefix(val, `"`) {
				val = val[1:]
				quoted = true
			}
			if quoted && strings.HasSuffix(val, `"`) {
				val = val[:len(val)-1]
			}
			arg = param + "=" + val
		} else if quoted && strings.HasSuffix(arg, `"`) {
			arg = arg[:len(arg)-1]
		}
		out = append(out, arg)
	}
	return out
}

func TestGrubLineWords(t *testing.T) {
	for line, want := range map[string][]string{
		"linux /v a=b,c x=1:2/3":   {"linux", "/v", "a=b,c", "x=1:2/3"},
		`linux /v y="p q"`:         {"linux", "/v", "y=p q"},
		`linux /v 'a b'\ c a#b #x`: {"linux", "/v", `a b c`, "a#b"},
	} {
		if got, ok := grubLineWords(line); !ok || !slices.Equal(got, want) {
			t.Errorf("grubLineWords(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
	for _, line := range []string{"linux /v a;b", "linux /v $x", "linux /v x=\"unterminated", "linux /v a*", "linux /v }", "a\nb", `linux "$x"`} {
		if got, ok := grubLineWords(line); ok {
			t.Errorf("grubLineWords(%q) = %q, ok", line, got)
		}
	}
	if got := kernelParams(`a "b=c d" e="f g" h`); !slices.Equal(got, []string{"a", "b=c d", "e=f g", "h"}) {
		t.Errorf("kernelParams = %q", got)
	}
}

// FuzzCheckKernelArgument: an accepted argument holds no character with a
// meaning to GRUB, isolinux or the kernel, and appended to the boot
// configs' kernel lines it reaches the kernel exactly as written; a refused
// one is named in the error.
func FuzzCheckKernelArgument(f *testing.F) {
	for _, s := range []string{"a=b,c", "x=1:2/3", `y="p q"`, `x="unterminated`, "x=1;linux /evil", "$root", "a\\b",
		"#c", "a b", "a\nb", "ip=[::1]", "initrd=/x", "console=ttyS0,115200n8", "", "é", "a*", "{", "'q'"} {
		f.Add(s)
	}
	const def = "random.trust_cpu=on coreos.liveiso=rhcos-419.96.202501010000-0 ignition.firstboot"
	f.Fuzz(func(t *testing.T, k string) {
		err := CheckKernelArgument(k)
		if err != nil {
			if !errors.Is(err, ErrBadKarg) {
				t.Fatalf("error %v does not wrap ErrBadKarg", err)
			}
			if q := strconv.Quote(k[:min(len(k), kargMaxQuoted)]); len(k) <= kargMaxQuoted && !strings.Contains(err.Error(), q) ||
				len(k) > kargMaxQuoted && !strings.Contains(err.Error(), q[:len(q)-1]) {
				t.Fatalf("error %q does not quote the argument", err)
			}
			return
		}
		if k == "" || strings.ContainsAny(k, " \t\n\r\v\f\"'\\$`;|&<>{}#*?[]()!\x00\x7f") || strings.HasPrefix(k, "initrd=") {
			t.Fatalf("accepted %q", k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] < 0x20 || k[i] >= 0x7f {
				t.Fatalf("accepted %q with byte %#x", k, k[i])
			}
		}
		// GRUB: the payload " k\n" written over the embed area's newline.
		grub := "\tlinux /images/pxeboot/vmlinuz " + def + " " + k + "\n" + strings.Repeat("#", 8) + " COREOS_KARG_EMBED_AREA\n"
		line, rest, _ := strings.Cut(grub, "\n")
		words, ok := grubLineWords(line)
		want := append([]string{"linux", "/images/pxeboot/vmlinuz"}, strings.Fields(def)...)
		if !ok || !slices.Equal(words, append(want, k)) {
			t.Fatalf("grub line %q: words %q (ok %v), want the defaults and %q", line, words, ok, k)
		}
		if w, ok := grubLineWords(strings.TrimSuffix(rest, "\n")); !ok || len(w) != 0 {
			t.Fatalf("the marker line is no longer a comment: %q", w)
		}
		// isolinux passes the append line on; the kernel splits it.
		appendLine := "initrd=/images/pxeboot/initrd.img,/images/ignition.img " + def + " " + k
		params := kernelParams(appendLine)
		if params[len(params)-1] != k || len(params) != len(strings.Fields(def))+2 {
			t.Fatalf("kernel parameters %q, want the last to be %q", params, k)
		}
		// GRUB joins the words with blanks, quoting none (no blank inside).
		if got := kernelParams(strings.Join(words[1:], " ")); got[len(got)-1] != k {
			t.Fatalf("kernel parameters from GRUB %q, want the last to be %q", got, k)
		}
	})
}
