package customize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// textEdit replaces Del bytes at Pos of the original text by Ins.
type textEdit struct {
	Pos, Del int
	Ins      string
}

var (
	grubLinuxLine     = regexp.MustCompile(`(?m)^[^\S\n]+linux .+`)
	grubInitrdLine    = regexp.MustCompile(`(?m)^[^\S\n]+initrd .+`)
	isolinuxAppend    = regexp.MustCompile(`(?m)^[^\S\n]+append .+`)
	isolinuxInitrdArg = regexp.MustCompile(`initrd=\S+`)
	liveISOArg        = regexp.MustCompile(`coreos\.liveiso=\S+ ?`)
)

// lineEnd returns the end of a matched line, before any trailing '\r'.
func lineEnd(b []byte, start, end int) int {
	for end > start && b[end-1] == '\r' {
		end--
	}
	return end
}

// kargsLineEdits removes the first coreos.liveiso= argument from the line
// b[start:end] and appends " "+rootfsArg to it.
func kargsLineEdits(b []byte, start, end int, rootfsArg string) []textEdit {
	end = lineEnd(b, start, end)
	var edits []textEdit
	if m := liveISOArg.FindIndex(b[start:end]); m != nil {
		edits = append(edits, textEdit{Pos: start + m[0], Del: m[1] - m[0]})
	}
	return append(edits, textEdit{Pos: end, Ins: " " + rootfsArg})
}

// grubEdits: kernel arguments on the first linux line, extra initrds at the
// end of the first initrd line.
func grubEdits(b []byte, rootfsArg string, initrds []string) ([]textEdit, error) {
	k := grubLinuxLine.FindIndex(b)
	if k == nil {
		return nil, errors.New("no linux line")
	}
	i := grubInitrdLine.FindIndex(b)
	if i == nil {
		return nil, errors.New("no initrd line")
	}
	edits := kargsLineEdits(b, k[0], k[1], rootfsArg)
	edits = append(edits, textEdit{Pos: lineEnd(b, i[0], i[1]), Ins: " " + strings.Join(initrds, " ")})
	return edits, nil
}

// isolinuxEdits: kernel arguments on the first append line, extra initrds
// right after its initrd= argument.
func isolinuxEdits(b []byte, rootfsArg string, initrds []string) ([]textEdit, error) {
	a := isolinuxAppend.FindIndex(b)
	if a == nil {
		return nil, errors.New("no append line")
	}
	end := lineEnd(b, a[0], a[1])
	m := isolinuxInitrdArg.FindIndex(b[a[0]:end])
	if m == nil {
		return nil, errors.New("no initrd= argument on the append line")
	}
	edits := []textEdit{{Pos: a[0] + m[1], Ins: "," + strings.Join(initrds, ",")}}
	return append(edits, kargsLineEdits(b, a[0], a[1], rootfsArg)...), nil
}

// applyEdits returns b with the (non-overlapping) edits applied.
func applyEdits(b []byte, edits []textEdit) []byte {
	sorted := append([]textEdit(nil), edits...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Pos < sorted[j].Pos })
	var out bytes.Buffer
	last := 0
	for _, e := range sorted {
		out.Write(b[last:e.Pos])
		out.WriteString(e.Ins)
		last = e.Pos + e.Del
	}
	out.Write(b[last:])
	return out.Bytes()
}

// shiftOffset maps an offset of the original text to the edited one. Edits
// at or after off do not move it; an edit spanning it is an error.
func shiftOffset(off int64, edits []textEdit) (int64, error) {
	shift := int64(0)
	for _, e := range edits {
		pos, end := int64(e.Pos), int64(e.Pos+e.Del)
		switch {
		case pos >= off:
		case end <= off:
			shift += int64(len(e.Ins) - e.Del)
		default:
			return 0, fmt.Errorf("an edit at %d-%d spans offset %d", pos, end, off)
		}
	}
	return off + shift, nil
}

// minimalDefaultKargs transforms the default kernel arguments like the
// kernel-args lines: first coreos.liveiso= removed, rootfsArg appended.
func minimalDefaultKargs(def, rootfsArg string) string {
	if m := liveISOArg.FindStringIndex(def); m != nil {
		def = def[:m[0]] + def[m[1]:]
	}
	return def + " " + rootfsArg
}

// updateKargsJSON rewrites coreos/kargs.json for the edited boot configs:
// default transformed, size grown by the same amount, each file's offset
// moved by the edits made before it. Unknown keys are kept; output is
// 2-space indented with sorted keys and a trailing newline.
func updateKargsJSON(b []byte, rootfsArg string, edits map[string][]textEdit) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var kj map[string]any
	if err := dec.Decode(&kj); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if kj == nil {
		return nil, errors.New("not a JSON object")
	}
	if d, ok := kj["default"]; ok {
		def, ok := d.(string)
		if !ok {
			return nil, errors.New(`"default" is not a string`)
		}
		nd := minimalDefaultKargs(def, rootfsArg)
		kj["default"] = nd
		if s, ok := kj["size"]; ok {
			size, err := jsonInt(s)
			if err != nil {
				return nil, fmt.Errorf(`"size": %w`, err)
			}
			kj["size"] = json.Number(strconv.FormatInt(size+int64(len(nd)-len(def)), 10))
		}
	}
	if fl, ok := kj["files"]; ok {
		files, ok := fl.([]any)
		if !ok {
			return nil, errors.New(`"files" is not an array`)
		}
		for i, f := range files {
			entry, ok := f.(map[string]any)
			if !ok {
				return nil, fmt.Errorf(`"files"[%d] is not an object`, i)
			}
			p, _ := entry["path"].(string)
			e := edits[strings.TrimPrefix(path.Clean("/"+p), "/")]
			o, ok := entry["offset"]
			if !ok || len(e) == 0 {
				continue
			}
			off, err := jsonInt(o)
			if err != nil {
				return nil, fmt.Errorf(`"files"[%d].offset: %w`, i, err)
			}
			off, err = shiftOffset(off, e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			entry["offset"] = json.Number(strconv.FormatInt(off, 10))
		}
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(kj); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func jsonInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("not an integer: %s", n)
	}
	return i, nil
}
