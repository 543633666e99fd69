package mailing

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mailrun/mailrun/campaign"
)

// maxGroups bounds the distinct row problems repeats remembers: a list
// whose every row is wrong in its own way (a million bad addresses) is
// printed row by row, in flat memory.
const maxGroups = 10000

// repeats groups row problems that are the same but for the row.
type repeats struct {
	byKey map[string]*repeat
	list  []*repeat // in the order first seen
}

// repeat is one problem and the rows that have it, as ranges.
type repeat struct {
	first campaign.Problem
	rows  []span
	n     int
}

type span struct{ from, to int }

// seen records p and reports whether an earlier row had the same problem.
// Problems without a row (the campaign file's) never repeat.
func (r *repeats) seen(p campaign.Problem) bool {
	if p.Line == 0 {
		return false
	}
	key := p.File + "\x00" + p.Field + "\x00" + strconv.FormatBool(p.Warning) + "\x00" + p.Message
	g := r.byKey[key]
	if g == nil {
		if len(r.list) >= maxGroups {
			return false
		}
		if r.byKey == nil {
			r.byKey = map[string]*repeat{}
		}
		g = &repeat{first: p}
		r.byKey[key] = g
		r.list = append(r.list, g)
	}
	g.n++
	if k := len(g.rows) - 1; k >= 0 && g.rows[k].to == p.Line-1 {
		g.rows[k].to = p.Line
	} else {
		g.rows = append(g.rows, span{p.Line, p.Line})
	}
	return g.n > 1
}

// String is the group's summary line: the problem as its first row printed
// it, then how many rows had it and which, the ranges cut after ten.
func (g *repeat) String() string {
	var b strings.Builder
	for i, s := range g.rows {
		if i == 10 {
			fmt.Fprintf(&b, ", ... (%d more ranges)", len(g.rows)-10)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(s.from))
		if s.to > s.from {
			b.WriteString("-" + strconv.Itoa(s.to))
		}
	}
	p := g.first
	p.Line = 0
	return fmt.Sprintf("%s (the same in %s rows: %s)", p, thousands(g.n), b.String())
}

// thousands writes n with commas between groups of three digits.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
