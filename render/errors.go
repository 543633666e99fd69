package render

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	ttemplate "text/template"
)

// FieldError is an error in rendering one part of a message for one
// recipient. The caller adds the CSV file, row and address.
type FieldError struct {
	// Field is one of subject, name, body, text, layout, attachment,
	// "header <Name>", unsubscribe, address.
	Field string
	// Err is the cause; template errors name the template file and line.
	// A column the row lacks is a *MissingKeyError.
	Err error
}

// Error returns "field: cause".
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, err error) error { return &FieldError{Field: field, Err: err} }

// fieldErrors collects the failures of one message, a *FieldError each,
// so that one run shows every problem of a row.
type fieldErrors struct {
	list []error
	// fields are the row's columns, named by a MissingKeyError; nil for
	// the group message, whose templates see only .Vars.
	fields map[string]string
}

// add records that field failed with err, a template's missing key
// turned into a *MissingKeyError (missingColumn), each of a keyErrors on
// its own.
func (e *fieldErrors) add(field string, err error) {
	if ke, ok := err.(keyErrors); ok {
		for _, err := range ke {
			e.add(field, err)
		}
		return
	}
	e.list = append(e.list, &FieldError{Field: field, Err: missingColumn(err, e.fields)})
}

// maxMissing bounds the missing columns execText finds in one template.
const maxMissing = 10

// keyErrors are the errors of one template run again for each missing
// column (execText), the first run's first.
type keyErrors []error

func (e keyErrors) Error() string { return errors.Join(e...).Error() }

func (e keyErrors) Unwrap() []error { return e }

// err returns the failures joined by errors.Join, in the order they were
// added, or nil when there were none.
func (e *fieldErrors) err() error {
	if len(e.list) == 0 {
		return nil
	}
	return errors.Join(e.list...)
}

// MissingKeyError is the cause of a FieldError when a template reads a
// column the row does not have: {{.firstname}} for a list whose column is
// first_name. Its fields let a caller group and word the problem itself.
type MissingKeyError struct {
	// Key is the column name the template reads.
	Key string
	// Columns are the row's column names, sorted.
	Columns []string
	// Suggest is the column closest to Key (edit distance, ignoring
	// case) when one is close enough to be a typo of it, else "".
	Suggest string
	// Template is the file or role of the template ("body.md",
	// "subject") and Line the 1-based line of the read in it; Line is 0
	// when text/template's error did not tell.
	Template string
	Line     int
	// Err is text/template's error.
	Err error
}

// maxColumns bounds the columns Error lists: a list with hundreds of
// columns would drown the suggestion.
const maxColumns = 30

// Error reads `body.md:3: no column "firstname"; columns: email,
// first_name, plan; did you mean "first_name"?`. A column that is not an
// identifier is suggested in the form a template can read it,
// {{index . "First Name"}}.
func (e *MissingKeyError) Error() string {
	var b strings.Builder
	if e.Template != "" && e.Line > 0 {
		fmt.Fprintf(&b, "%s:%d: ", e.Template, e.Line)
	}
	fmt.Fprintf(&b, "no column %q; ", e.Key)
	switch cols := e.Columns; {
	case len(cols) == 0:
		b.WriteString("the message has no columns, only .Vars")
	case len(cols) > maxColumns:
		fmt.Fprintf(&b, "columns: %s, ... (%d more)", strings.Join(cols[:maxColumns], ", "), len(cols)-maxColumns)
	default:
		b.WriteString("columns: " + strings.Join(cols, ", "))
	}
	switch {
	case e.Suggest == "":
	case isIdentifier(e.Suggest):
		fmt.Fprintf(&b, "; did you mean %q?", e.Suggest)
	default:
		fmt.Fprintf(&b, "; did you mean {{index . %q}}?", e.Suggest)
	}
	return b.String()
}

// Unwrap returns text/template's error.
func (e *MissingKeyError) Unwrap() error { return e.Err }

// missingColumn returns a *MissingKeyError for err when err is a
// template's read of a column that fields lacks, and err otherwise.
func missingColumn(err error, fields map[string]string) error {
	key, tmpl, line, ok := missingKey(err)
	if !ok {
		return err
	}
	cols := make([]string, 0, len(fields))
	for k := range fields {
		cols = append(cols, k)
	}
	slices.Sort(cols)
	return &MissingKeyError{Key: key, Columns: cols, Suggest: suggest(key, cols), Template: tmpl, Line: line, Err: err}
}

// missingKeyText is how text/template says that a map lacks a key
// (exec.go, state.evalField with missingkey=error), and execContext how
// it places the read: `template: body.md:3:12: executing "body.md" at
// <.firstname>: map has no entry for key "firstname"`.
const (
	missingKeyText = "map has no entry for key "
	execContext    = `: executing "`
)

// missingKey reports whether err is text/template's error for a read of
// key on dot itself ({{.key}}, not {{.Vars.key}}) that the map lacks, and
// where: the template's name and line. The ExecError's text is the only
// signal Go gives, so it is read here and nowhere else
// (TestMissingKeyWording pins it).
func missingKey(err error) (key, tmpl string, line int, ok bool) {
	var ee ttemplate.ExecError
	if !errors.As(err, &ee) || ee.Err == nil {
		return "", "", 0, false
	}
	msg := ee.Err.Error()
	i := strings.LastIndex(msg, missingKeyText)
	if i < 0 {
		return "", "", 0, false
	}
	key, uerr := strconv.Unquote(msg[i+len(missingKeyText):])
	if uerr != nil || !strings.HasSuffix(msg[:i], " at <."+key+">: ") {
		return "", "", 0, false
	}
	// The location is the defining file's name, line and byte.
	loc, _, found := strings.Cut(strings.TrimPrefix(msg, "template: "), execContext)
	if !found {
		return key, ee.Name, 0, true
	}
	rest, _, _ := cutLast(loc, ":") // the byte
	tmpl, num, _ := cutLast(rest, ":")
	line, aerr := strconv.Atoi(num)
	if aerr != nil {
		return key, ee.Name, 0, true
	}
	return key, tmpl, line, true
}

// cutLast is strings.Cut at the last sep.
func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}

// suggest returns the column of cols closest to key, ignoring case, when
// it is close enough to be a typo of it: an edit distance
// (editDistance) of one, one more per eight letters of the shorter name.
// Ties go to the first in cols.
func suggest(key string, cols []string) string {
	best, bestD := "", -1
	k := []rune(strings.ToLower(key))
	for _, c := range cols {
		col := []rune(strings.ToLower(c))
		d := editDistance(k, col)
		if d <= 1+min(len(k), len(col))/8 && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance of a and b: the
// insertions, deletions, substitutions and transpositions of adjacent
// letters ("emial") that turn one into the other.
func editDistance(a, b []rune) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}

// isIdentifier reports whether a column can be read as {{.name}}: a
// letter or underscore, then letters, digits and underscores (Go's
// template lexer).
var identRE = regexp.MustCompile(`^[\p{L}_][\p{L}\p{Nd}_]*$`)

func isIdentifier(s string) bool { return identRE.MatchString(s) }

// undefinedFunc is how text/template's parser says that a word is no
// function (parse.go, Tree.term): {{.First Name}} reads as the field
// .First given to a function Name. badChar is how its lexer refuses a
// character such as the hyphen of {{.e-mail}}.
var (
	undefinedFuncRE = regexp.MustCompile(`function "([^"]+)" not defined$`)
	badCharRE       = regexp.MustCompile(`bad character U\+[0-9A-F]+ '(.)'$`)
	spacedFieldRE   = regexp.MustCompile(`\.([\p{L}_][\p{L}\p{Nd}_]*(?:[ \t]+[\p{L}\p{Nd}_]+)+)[ \t]*(?:-?}}|\||\))`)
	hyphenFieldRE   = regexp.MustCompile(`\.([\p{L}_][\p{L}\p{Nd}_]*(?:-[\p{L}\p{Nd}_]+)+)`)
)

// columnHint adds to a parse error of template src the way to write the
// column it most likely is: a column name with a space ({{.First Name}},
// which the parser reads as a field and an undefined function "Name") or
// a hyphen ({{.e-mail}}, a bad character) is written {{index . "First
// Name"}}. The parser's error text is the only signal (TestColumnHint
// pins it); any other error is returned as it is.
func columnHint(err error, src string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if m := undefinedFuncRE.FindStringSubmatch(msg); m != nil {
		for _, f := range spacedFieldRE.FindAllStringSubmatch(src, -1) {
			if slices.Contains(strings.Fields(f[1])[1:], m[1]) {
				return fmt.Errorf("%w; column names with spaces are written {{index . %q}}", err, f[1])
			}
		}
	}
	if m := badCharRE.FindStringSubmatch(msg); m != nil && m[1] == "-" {
		if f := hyphenFieldRE.FindStringSubmatch(src); f != nil {
			return fmt.Errorf("%w; column names with hyphens are written {{index . %q}}", err, f[1])
		}
	}
	return err
}
