package render

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/Masterminds/sprig/v3"
)

// Every template, text and HTML, gets the functions people know from
// Helm and Hugo: github.com/Masterminds/sprig/v3's hermetic set (default,
// upper, lower, title, trim, replace, join, ...), so a campaign says
// {{default "friend" .first_name}} instead of an {{if}} block.
//
// Only functions whose result depends on nothing but their arguments are
// there. That keeps three promises: a preview shows the bytes send will
// transmit, a check is the same on every machine, and no template can
// print what the machine knows (SMTP_PASSWORD from the environment). It
// also keeps the layout's one run per campaign (splitLayout) and the
// Markdown skeletons (skeleton.go) valid, which assume that a template
// gives the same output for the same data. Campaign-wide values, a date
// included, go in the campaign's vars.
//
// excludedFuncs are the functions of sprig's full map left out, each with
// the reason given when a template names one. sprig's HermeticTxtFuncMap
// drops date, date_in_zone, date_modify, dateInZone, dateModify, now,
// htmlDate, htmlDateInZone, randAlphaNum, randAlpha, randAscii,
// randNumeric, randBytes, uuidv4, env, expandenv and getHostByName; it
// keeps some that still read the clock, the machine or randomness, which
// are dropped here too.
var excludedFuncs = map[string]string{
	// sprig's own non-hermetic list.
	"date": "it reads the clock and the machine's time zone", "date_in_zone": "it reads the clock",
	"date_modify": "it reads the clock", "dateInZone": "it reads the clock", "dateModify": "it reads the clock",
	"now": "it reads the clock", "htmlDate": "it reads the clock", "htmlDateInZone": "it reads the clock",
	"randAlphaNum": "it is random", "randAlpha": "it is random", "randAscii": "it is random",
	"randNumeric": "it is random", "randBytes": "it is random", "uuidv4": "it is random",
	"env": "it reads the environment, where secrets live", "expandenv": "it reads the environment, where secrets live",
	"getHostByName": "it asks the network",
	// Kept by sprig's hermetic map, dropped here.
	"ago":                      "it reads the clock",
	"durationRound":            "it reads the clock when given a time",
	"toDate":                   "it reads the machine's time zone",
	"mustToDate":               "it reads the machine's time zone",
	"randInt":                  "it is random",
	"shuffle":                  "it is random",
	"osBase":                   "it follows the machine's path rules (use base)",
	"osClean":                  "it follows the machine's path rules (use clean)",
	"osDir":                    "it follows the machine's path rules (use dir)",
	"osExt":                    "it follows the machine's path rules (use ext)",
	"osIsAbs":                  "it follows the machine's path rules (use isAbs)",
	"bcrypt":                   "it is random (salt) and handles secrets",
	"htpasswd":                 "it is random (salt) and handles secrets",
	"derivePassword":           "it handles secrets",
	"genPrivateKey":            "it generates keys (random)",
	"buildCustomCert":          "it handles keys and certificates",
	"genCA":                    "it generates keys (random) and reads the clock",
	"genCAWithKey":             "it reads the clock",
	"genSelfSignedCert":        "it generates keys (random) and reads the clock",
	"genSelfSignedCertWithKey": "it reads the clock",
	"genSignedCert":            "it generates keys (random) and reads the clock",
	"genSignedCertWithKey":     "it reads the clock",
	"encryptAES":               "it is random (IV) and handles secrets",
	"decryptAES":               "it handles secrets",
	// Dict mutation: a dict set into itself makes printing it recurse
	// until the stack overflows, which no recover catches.
	"set":                "it changes a dict in place (build one with dict)",
	"unset":              "it changes a dict in place (build one with dict, or use omit)",
	"merge":              "it changes a dict in place",
	"mustMerge":          "it changes a dict in place",
	"mergeOverwrite":     "it changes a dict in place",
	"mustMergeOverwrite": "it changes a dict in place",
}

// builtinFuncs are text/template's own functions. sprig redefines slice
// (for lists only); the builtin stays, so templates written before
// sprig's functions came keep working (slice of a string), and the
// Markdown skeleton keeps its mdValue through it (skeleton.go).
var builtinFuncs = []string{"and", "call", "html", "index", "slice", "js", "len", "not", "or",
	"print", "printf", "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne"}

// Bounds of the functions whose output can grow past their input, so
// that a CSV value (or a typo) cannot make one message gigabytes long, or
// exhaust the memory (a fatal error, which no recover catches, ending
// serve or a send): at most maxFuncItems numbers from until, untilStep
// and seq, and 10 times that many items from concat; at most
// maxFuncOutput bytes from repeat, indent, nindent, replace, the
// regexReplaceAll family, wrapWith, cat and join.
const (
	maxFuncItems  = 10_000
	maxFuncOutput = 1 << 20
)

// templateFuncs is the function map of every template: sprig's map
// without excludedFuncs, the count-driven functions bounded. It is built
// once and never written, so every template shares it.
var templateFuncs = sync.OnceValue(func() map[string]any {
	m := sprig.GenericFuncMap()
	for name := range excludedFuncs {
		delete(m, name)
	}
	for _, name := range builtinFuncs {
		delete(m, name)
	}
	for name, f := range boundedFuncs(m) {
		m[name] = f
	}
	return m
})

// markdownFuncs is templateFuncs for the Markdown template, each function
// wrapped by markdownFunc.
var markdownFuncs = sync.OnceValue(func() map[string]any {
	m := make(map[string]any, len(templateFuncs()))
	for name, f := range templateFuncs() {
		m[name] = markdownFunc(f)
	}
	return m
})

// isTemplateFunc reports whether name is one of templateFuncs (not a
// text/template builtin).
func isTemplateFunc(name string) bool {
	_, ok := templateFuncs()[name]
	return ok
}

// excludedHint explains why the function named by a parse error's
// 'function "env" not defined' is not there, or returns err unchanged.
func excludedHint(err error) error {
	if err == nil {
		return nil
	}
	m := undefinedFuncRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	why, ok := excludedFuncs[m[1]]
	if !ok {
		return err
	}
	return fmt.Errorf("%w; %s is left out of templates because %s: put campaign-wide values such as dates in vars", err, m[1], why)
}

// boundedFuncs are the count-driven functions of m, each refusing a count
// beyond maxFuncItems or maxFuncOutput before it allocates.
func boundedFuncs(m map[string]any) map[string]any {
	bounded := map[string]any{}
	for name, f := range growingFuncs(m) {
		bounded[name] = f
	}
	until := m["until"].(func(int) []int)
	untilStep := m["untilStep"].(func(int, int, int) []int)
	seq := m["seq"].(func(...int) string)
	indent := m["indent"].(func(int, string) string)
	nindent := m["nindent"].(func(int, string) string)
	for name, f := range map[string]any{
		"until": func(n int) ([]int, error) {
			if err := checkItems(0, n, 1); err != nil {
				return nil, err
			}
			return until(n), nil
		},
		"untilStep": func(start, stop, step int) ([]int, error) {
			if err := checkItems(start, stop, step); err != nil {
				return nil, err
			}
			return untilStep(start, stop, step), nil
		},
		"seq": func(p ...int) (string, error) {
			var err error
			switch len(p) {
			case 1:
				err = checkItems(1, p[0], 1)
			case 2:
				err = checkItems(p[0], p[1], 1)
			case 3:
				err = checkItems(p[0], p[2], p[1])
			}
			if err != nil {
				return "", err
			}
			return seq(p...), nil
		},
		"repeat": func(n int, s string) (string, error) {
			if n < 0 || n > 0 && len(s) > maxFuncOutput/n {
				return "", fmt.Errorf("repeat: %d times %d bytes is over %d bytes", n, len(s), maxFuncOutput)
			}
			return strings.Repeat(s, n), nil
		},
		"indent": func(n int, s string) (string, error) {
			if err := checkIndent(n, s); err != nil {
				return "", err
			}
			return indent(n, s), nil
		},
		"nindent": func(n int, s string) (string, error) {
			if err := checkIndent(n, s); err != nil {
				return "", err
			}
			return nindent(n, s), nil
		},
	} {
		bounded[name] = f
	}
	return bounded
}

// growingFuncs are the functions of m whose output can outgrow their
// input, bounded before they allocate where one call can explode
// (replace of "" by a long string) and after where only repeated calls
// can (cat of a value with itself), and keys and values in key order:
// sprig walks a Go map, whose order is random.
func growingFuncs(m map[string]any) map[string]any {
	cat := m["cat"].(func(...any) string)
	join := m["join"].(func(string, any) string)
	concat := m["concat"].(func(...any) any)
	wrapWith := m["wrapWith"].(func(int, string, string) string)
	out := map[string]any{
		"replace": func(old, new, src string) (string, error) {
			n := strings.Count(src, old)
			if err := checkGrowth("replace", len(src), n, len(new)-len(old)); err != nil {
				return "", err
			}
			return strings.ReplaceAll(src, old, new), nil
		},
		"wrapWith": func(n int, sep, str string) (string, error) {
			if err := checkGrowth("wrapWith", len(str), len(str)/max(n, 1)+1, len(sep)); err != nil {
				return "", err
			}
			return wrapWith(n, sep, str), nil
		},
		"cat": func(v ...any) (string, error) {
			return checkOutput("cat", cat(v...))
		},
		"join": func(sep string, v any) (string, error) {
			return checkOutput("join", join(sep, v))
		},
		"concat": func(lists ...any) (any, error) {
			total := 0
			for _, l := range lists {
				if v := reflect.ValueOf(l); v.Kind() == reflect.Slice || v.Kind() == reflect.Array {
					total += v.Len()
				}
			}
			if total > 10*maxFuncItems {
				return nil, fmt.Errorf("concat: %d items is over %d", total, 10*maxFuncItems)
			}
			return concat(lists...), nil
		},
		"keys": func(dicts ...map[string]any) []string {
			var k []string
			for _, d := range dicts {
				for key := range d {
					k = append(k, key)
				}
			}
			slices.Sort(k)
			return k
		},
		"values": func(dict map[string]any) []any {
			keys := slices.Sorted(maps.Keys(dict))
			v := make([]any, len(keys))
			for i, k := range keys {
				v[i] = dict[k]
			}
			return v
		},
	}
	for _, name := range []string{"regexReplaceAll", "mustRegexReplaceAll", "regexReplaceAllLiteral", "mustRegexReplaceAllLiteral"} {
		literal := strings.Contains(name, "Literal")
		out[name] = func(regex, s, repl string) (string, error) {
			re, err := regexp.Compile(regex)
			if err != nil {
				return "", err
			}
			// Each match becomes repl, and each $ in repl may expand to
			// as much as the whole input.
			per := len(repl)
			if !literal {
				per += strings.Count(repl, "$") * len(s)
			}
			if err := checkGrowth(name, len(s), len(re.FindAllStringIndex(s, maxFuncOutput+1)), per); err != nil {
				return "", err
			}
			if literal {
				return re.ReplaceAllLiteralString(s, repl), nil
			}
			return re.ReplaceAllString(s, repl), nil
		}
	}
	return out
}

// checkGrowth refuses an output of size plus n times per bytes over
// maxFuncOutput, computed without overflow.
func checkGrowth(name string, size, n, per int) error {
	if per <= 0 || n == 0 {
		return nil
	}
	if n > (maxFuncOutput-min(size, maxFuncOutput))/per {
		return fmt.Errorf("%s: %d replacements of %d bytes is over %d bytes", name, n, per, maxFuncOutput)
	}
	return nil
}

// checkOutput refuses s when it is over maxFuncOutput bytes.
func checkOutput(name, s string) (string, error) {
	if len(s) > maxFuncOutput {
		return "", fmt.Errorf("%s: %d bytes is over %d", name, len(s), maxFuncOutput)
	}
	return s, nil
}

// checkItems refuses a range from start to stop by step of more than
// maxFuncItems numbers. The span is computed in uint64, where the
// difference of any two ints fits.
func checkItems(start, stop, step int) error {
	span := uint64(stop) - uint64(start)
	if stop < start {
		span = uint64(start) - uint64(stop)
	}
	abs := uint64(step)
	if step < 0 {
		abs = -uint64(step)
	}
	if abs == 0 {
		abs = 1
	}
	if span/abs > maxFuncItems {
		return fmt.Errorf("a range from %d to %d by %d is over %d numbers", start, stop, step, maxFuncItems)
	}
	return nil
}

func checkIndent(n int, s string) error {
	lines := strings.Count(s, "\n") + 1
	if n < 0 || n > 0 && lines > maxFuncOutput/n {
		return fmt.Errorf("indent: %d spaces on %d lines is over %d bytes", n, lines, maxFuncOutput)
	}
	return nil
}

var (
	stringType      = reflect.TypeFor[string]()
	stringSliceType = reflect.TypeFor[[]string]()
	anyType         = reflect.TypeFor[any]()
	anySliceType    = reflect.TypeFor[[]any]()
	errorType       = reflect.TypeFor[error]()
	mdValueType     = reflect.TypeFor[mdValue]()
	mdSliceType     = reflect.TypeFor[[]mdValue]()
)

// markdownFunc adapts f to the Markdown template's marker run, where CSV
// values are mdValue (skeleton.go): a value must reach f as the real
// string, and what f makes of it must print as a value again, escaped
// where it lands, never as Markdown the author wrote.
//
// So f's string and []string parameters (variadic ones too) take any
// and get the value converted back (text/template would refuse an
// mdValue for a string); a string or []string result of a call with a
// value among its arguments becomes mdValue or []mdValue, unless it holds
// markers already (cat and join print values as their markers, which the
// skeleton finds where they are); an any result of such a call gets its
// strings marked too (fromJson), but not a string the author gave as an
// argument (default "**friend**" .nickname stays bold). Parameters of type any keep the
// mdValue, which default, coalesce and the list functions pass on, and
// which fmt-based functions print as its marker. A composition that still
// cuts a marker (upper of a cat) is caught by the plain run every
// skeleton of a template using these functions is checked against
// (skeletons.formatsValues), and that recipient is rendered the old way.
func markdownFunc(f any) any {
	fv := reflect.ValueOf(f)
	ft := fv.Type()
	in := make([]reflect.Type, ft.NumIn())
	for i := range in {
		in[i] = ft.In(i)
		switch {
		case in[i] == stringType:
			in[i] = anyType
		case in[i] == stringSliceType && ft.IsVariadic() && i == len(in)-1:
			in[i] = anySliceType // ...string becomes ...any
		case in[i] == stringSliceType:
			in[i] = anyType
		}
	}
	out := make([]reflect.Type, ft.NumOut())
	for i := range out {
		out[i] = ft.Out(i)
		if i == 0 && (out[i] == stringType || out[i] == stringSliceType) {
			out[i] = anyType
		}
	}
	wt := reflect.FuncOf(in, out, ft.IsVariadic())
	return reflect.MakeFunc(wt, func(args []reflect.Value) []reflect.Value {
		tainted := false
		var literals []string // the author's strings among the arguments
		call := make([]reflect.Value, len(args))
		var err error
		for i, a := range args {
			if isValue(a) {
				tainted = true
			}
			literals = appendLiterals(literals, a)
			call[i], err = unmark(a, ft.In(i))
			if err != nil {
				break
			}
		}
		res := make([]reflect.Value, len(out))
		if err != nil {
			for i, t := range out {
				res[i] = reflect.Zero(t)
			}
			if len(out) == 0 || out[len(out)-1] != errorType {
				panic(err) // text/template turns it into the call's error
			}
			res[len(out)-1] = reflect.ValueOf(&err).Elem()
			return res
		}
		var got []reflect.Value
		if ft.IsVariadic() {
			got = fv.CallSlice(call)
		} else {
			got = fv.Call(call)
		}
		for i, g := range got {
			if i == 0 && out[0] != ft.Out(0) || i == 0 && tainted && out[0] == anyType {
				v := g.Interface()
				if s, ok := v.(string); ok && ft.Out(0) == anyType && slices.Contains(literals, s) {
					// default "**friend**" .nickname: the author's
					// Markdown, not a value.
				} else if tainted {
					v = markResult(v)
				}
				res[i] = reflect.New(anyType).Elem()
				if v != nil {
					res[i].Set(reflect.ValueOf(v))
				}
				continue
			}
			res[i] = g
		}
		return res
	}).Interface()
}

// isValue reports whether a, an argument, is a CSV value or holds one.
func isValue(a reflect.Value) bool {
	for a.Kind() == reflect.Interface && !a.IsNil() {
		a = a.Elem()
	}
	switch {
	case !a.IsValid():
		return false
	case a.Type() == mdValueType, a.Type() == mdSliceType:
		return true
	case a.Kind() == reflect.Slice && a.Type().Elem() == anyType:
		for i := range min(a.Len(), maxFuncItems) {
			if isValue(a.Index(i)) {
				return true
			}
		}
	}
	return false
}

// unmark converts a, given to markdownFunc's wrapper, to the type t of
// f's parameter: values to their strings. An argument of another type
// than t is refused as text/template refuses it.
func unmark(a reflect.Value, t reflect.Type) (reflect.Value, error) {
	if t != stringType && t != stringSliceType {
		return a, nil
	}
	e := a
	for e.Kind() == reflect.Interface && !e.IsNil() {
		e = e.Elem()
	}
	switch {
	case t == stringType && e.IsValid() && e.Kind() == reflect.String:
		return e.Convert(stringType), nil
	case t == stringSliceType && e.IsValid() && e.Kind() == reflect.Slice:
		s := make([]string, e.Len())
		for i := range s {
			x := e.Index(i)
			for x.Kind() == reflect.Interface && !x.IsNil() {
				x = x.Elem()
			}
			if x.Kind() != reflect.String {
				return reflect.Value{}, wrongType(t.Elem(), x)
			}
			s[i] = x.String()
		}
		return reflect.ValueOf(s), nil
	}
	return reflect.Value{}, wrongType(t, e)
}

func wrongType(t reflect.Type, v reflect.Value) error {
	if !v.IsValid() || v.Kind() == reflect.Interface {
		return fmt.Errorf("invalid value; expected %s", t)
	}
	return fmt.Errorf("wrong type for value; expected %s; got %s", t, v.Type())
}

// appendLiterals appends to l the plain strings of a, an argument: a
// string, or those of a variadic []any.
func appendLiterals(l []string, a reflect.Value) []string {
	for a.Kind() == reflect.Interface && !a.IsNil() {
		a = a.Elem()
	}
	switch {
	case !a.IsValid():
	case a.Type() == stringType:
		l = append(l, a.String())
	case a.Type() == anySliceType:
		for i := range min(a.Len(), maxFuncItems) {
			if s, ok := a.Index(i).Interface().(string); ok {
				l = append(l, s)
			}
		}
	}
	return l
}

// markResult is v, the result of a call that was given a value, with its
// strings marked as values (see markdownFunc): a string, the strings of
// a []string, and those inside a []any or map[string]any (fromJson's).
// The caller leaves alone a string that is one of the author's own
// arguments (default "friend" .nickname).
func markResult(v any) any {
	switch v := v.(type) {
	case string:
		return markString(v)
	case []string:
		m := make([]mdValue, len(v))
		for i, s := range v {
			m[i] = mdValue(s)
		}
		return m
	case []any:
		return markDeep(v, 0)
	case map[string]any:
		return markDeep(v, 0)
	}
	return v
}

// markString marks s unless it holds markers already.
func markString(s string) any {
	if strings.Contains(s, markerPrefix) {
		return s
	}
	return mdValue(s)
}

// maxMarkDepth bounds markDeep on nested lists and maps; deeper, a
// structure prints as one value.
const maxMarkDepth = 32

func markDeep(v any, depth int) any {
	if depth > maxMarkDepth {
		return mdValue(fmt.Sprint(v))
	}
	switch v := v.(type) {
	case string:
		return markString(v)
	case []any:
		m := make([]any, len(v))
		for i, x := range v {
			m[i] = markDeep(x, depth+1)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, x := range v {
			m[k] = markDeep(x, depth+1)
		}
		return m
	}
	return v
}
