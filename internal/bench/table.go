package main

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// table is the result table: scenario, baseline, isoedge, ratio or target.
type table struct{ rows [][4]string }

func (t *table) row(scenario, baseline, edge, verdict string) {
	t.rows = append(t.rows, [4]string{scenario, baseline, edge, verdict})
}

func (t *table) print(w io.Writer) {
	head := [4]string{"scenario", "baseline", "isoedge", "ratio / target"}
	width := [4]int{}
	for _, r := range append([][4]string{head}, t.rows...) {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(r [4]string) {
		fmt.Fprintf(w, "%s  %s  %s  %s\n", pad(r[0], width[0], false), pad(r[1], width[1], true), pad(r[2], width[2], true), r[3])
	}
	line(head)
	fmt.Fprintln(w, strings.Repeat("-", width[0]+width[1]+width[2]+width[3]+6))
	for _, r := range t.rows {
		line(r)
	}
}

func pad(s string, n int, right bool) string {
	p := strings.Repeat(" ", max(0, n-utf8.RuneCountInString(s)))
	if right {
		return p + s
	}
	return s + p
}

// check marks a target as met or missed.
func check(ok bool, target string) string {
	if ok {
		return "ok (" + target + ")"
	}
	return "MISS (" + target + ")"
}

func f1(x float64) string { return fmt.Sprintf("%.1f", x) }
func f2(x float64) string { return fmt.Sprintf("%.2f", x) }
func f3(x float64) string { return fmt.Sprintf("%.3f", x) }
