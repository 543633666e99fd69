package render

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/Masterminds/sprig/v3"
)

// funcsRenderer is a renderer whose subject, name, header, text and body
// (Markdown or HTML, by the name of body) are the templates given.
func funcsRenderer(t *testing.T, tmpl, body string) *Renderer {
	t.Helper()
	dir := t.TempDir()
	if err := writeFile(dir, body, tmpl); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(dir, "t.txt", tmpl); err != nil {
		t.Fatal(err)
	}
	off := false
	cfg := Config{Dir: dir, From: "news@acme.example", Subject: tmpl, Name: tmpl, Text: "t.txt",
		Headers: map[string]string{"X-Greeting": tmpl}, InlineCSS: &off}
	if strings.HasSuffix(body, ".md") {
		cfg.Markdown = body
	} else {
		cfg.HTML = body
	}
	return newRenderer(t, cfg)
}

// TestFuncsInEveryTemplate: sprig's functions work in every kind of
// template, text and HTML, and default gives the fallback for an empty
// cell.
func TestFuncsInEveryTemplate(t *testing.T) {
	cases := []struct {
		tmpl   string
		fields map[string]string
		want   string
	}{
		{`{{ .first_name | upper }}`, map[string]string{"first_name": "Ann"}, "ANN"},
		{`{{ default "friend" .nickname }}`, map[string]string{"nickname": ""}, "friend"},
		{`{{ default "friend" .nickname }}`, map[string]string{"nickname": "Bo"}, "Bo"},
		{`{{ .first_name | trim | title }}`, map[string]string{"first_name": " ann "}, "Ann"},
		{`{{ replace "-" " " .plan }}`, map[string]string{"plan": "pro-plus"}, "pro plus"},
		{`{{ join " and " (splitList ";" .tags) }}`, map[string]string{"tags": "a;b;c"}, "a and b and c"},
	}
	for _, body := range []string{"b.md", "b.html"} {
		for _, c := range cases {
			t.Run(body+" "+c.tmpl+" "+c.want, func(t *testing.T) {
				r := funcsRenderer(t, c.tmpl, body)
				got, err := contentOf(r, c.fields)
				if err != nil {
					t.Fatal(err)
				}
				name, err := execText(r.name, r.data(c.fields, nil))
				if err != nil {
					t.Fatal(err)
				}
				for what, s := range map[string]string{"subject": got.subject, "name": name,
					"header": got.headers[0][1], "text": strings.TrimSpace(got.text)} {
					if s != c.want {
						t.Errorf("%s: got %q, want %q", what, s, c.want)
					}
				}
				if !strings.Contains(got.html, c.want) {
					t.Errorf("html: got %q, want it to hold %q", got.html, c.want)
				}
			})
		}
	}
}

// TestFuncsExcluded: a function that reads the environment, the clock,
// randomness or the machine is not there, in any template: the parse
// error names the file and line, and says why.
func TestFuncsExcluded(t *testing.T) {
	for _, name := range []string{"env", "expandenv", "now", "date", "ago", "toDate", "randInt", "randAlpha",
		"shuffle", "uuidv4", "getHostByName", "osBase", "genPrivateKey", "bcrypt", "encryptAES", "set", "merge"} {
		t.Run(name, func(t *testing.T) {
			src := "Hello\n\n{{ " + name + ` "HOME" }}` + "\n"
			for _, body := range []string{"b.md", "b.html"} {
				dir := t.TempDir()
				if err := writeFile(dir, body, src); err != nil {
					t.Fatal(err)
				}
				cfg := Config{Dir: dir, From: "news@acme.example", Subject: "s"}
				if body == "b.md" {
					cfg.Markdown = body
				} else {
					cfg.HTML = body
				}
				_, err := New(cfg)
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "body" {
					t.Fatalf("%s: got %v, want a body FieldError", body, err)
				}
				for _, want := range []string{body + ":3:", `function "` + name + `" not defined`, "left out"} {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("%s: got %q, want it to hold %q", body, err, want)
					}
				}
			}
			_, err := New(Config{Dir: t.TempDir(), From: "news@acme.example", Subject: "x {{" + name + "}}", Markdown: "b.md"})
			if err == nil || !strings.Contains(err.Error(), "template: subject:1:") {
				t.Errorf("subject: got %v, want template: subject:1: ...", err)
			}
		})
	}
}

// TestFuncsExcludedCoverSprig: everything sprig itself calls
// non-hermetic is excluded, every excluded name is a sprig function (a
// rename upstream would otherwise bring it back unnoticed), a builtin
// keeps its meaning, and the rest of sprig is there.
func TestFuncsExcludedCoverSprig(t *testing.T) {
	all := sprig.GenericFuncMap()
	hermetic := sprig.HermeticTxtFuncMap()
	for name := range all {
		_, ok := hermetic[name]
		_, excluded := excludedFuncs[name]
		_, have := templateFuncs()[name]
		switch {
		case slices.Contains(builtinFuncs, name):
			if have {
				t.Errorf("%s: sprig's shadows text/template's builtin", name)
			}
		case !ok && !excluded:
			t.Errorf("%s: sprig calls it non-hermetic, but it is not excluded", name)
		case excluded && have:
			t.Errorf("%s: excluded, but in templateFuncs", name)
		case !excluded && !have:
			t.Errorf("%s: neither excluded nor in templateFuncs", name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(excludedFuncs)) {
		if _, ok := all[name]; !ok {
			t.Errorf("%s: excluded, but sprig has no such function", name)
		}
	}
}

// TestFuncsMarkdownValuesStayLiteral: in Markdown a function's output
// from a CSV value is still the value, escaped where it lands, never
// Markdown or HTML, whether the skeleton holds it or the recipient is
// rendered the old way.
func TestFuncsMarkdownValuesStayLiteral(t *testing.T) {
	cases := []struct{ tmpl, v, want string }{
		{`{{ .v | upper }}`, "**b** <i>", "**B** &lt;I&gt;"},
		{`{{ default "friend" .v }}`, "*x* <i>", "*x* &lt;i&gt;"},
		{`{{ default "**friend**" .v }}`, "", "<strong>friend</strong>"},
		{`{{ join ", " (splitList ";" .v) }}`, "**a**;<i>", "**a**, &lt;i&gt;"},
		{`{{ (fromJson .v).name }}`, `{"name": "**x** <i>"}`, "**x** &lt;i&gt;"},
		{`{{ cat .v "y" }}`, "*x*", "*x* y"},
		{`{{ upper (cat .v "y") }}`, "*x* <i>", "*X* &lt;I&gt; Y"}, // cuts the markers: the old way
		{`{{ quote .v }}`, "*x*", "&quot;*x*&quot;"},
		{`{{ fromJson .v }}`, `"**x**"`, "**x**"},
		{`{{ range splitList "," .v }}- {{ . | title }}` + "\n" + `{{ end }}`, "a,*b*", "<li>A</li>\n<li>*B*</li>"},
	}
	for _, c := range cases {
		t.Run(c.tmpl, func(t *testing.T) {
			r := markdownRenderer(t, c.tmpl+"\n")
			out, _ := renderValue(t, r, c.v)
			if !strings.Contains(out, c.want) {
				t.Errorf("got %q, want it to hold %q", out, c.want)
			}
			if c.v != "" && (strings.Contains(out, "<strong>") || strings.Contains(out, "<em>") || strings.Contains(out, "<i>")) {
				t.Errorf("the value made markup: %q", out)
			}
			if strings.Contains(out, markerPrefix) {
				t.Errorf("a marker is left in %q", out)
			}
		})
	}
}

// TestFuncsMarkdownSkeleton: a function of one value keeps the skeleton,
// so the body is rendered by goldmark once for many recipients.
func TestFuncsMarkdownSkeleton(t *testing.T) {
	r := markdownRenderer(t, "# Hi {{ .v | upper }}\n\n{{ default \"friend\" .v }}\n")
	for _, v := range []string{"ann", "bo", "cy"} {
		out, text := renderValue(t, r, v)
		if want := "<h1>Hi " + strings.ToUpper(v) + "</h1>"; !strings.Contains(out, want) {
			t.Errorf("got %q, want it to hold %q", out, want)
		}
		if want := "Hi " + strings.ToUpper(v) + "\n" + strings.Repeat("=", len("Hi ")+len(v)); !strings.Contains(text, want) {
			t.Errorf("text: got %q, want it to hold %q", text, want)
		}
	}
	if n := len(r.skel.pages); n != 1 {
		t.Errorf("got %d skeletons, want 1", n)
	}
}

// TestFuncsBounded: the functions that make output from a count refuse a
// count that would make a message huge, and work below it.
func TestFuncsBounded(t *testing.T) {
	for _, c := range []struct{ tmpl, want string }{
		{`{{ repeat 3 "ab" }}`, "ababab"},
		{`{{ seq 3 }}`, "1 2 3"},
		{`{{ seq 5 -2 1 }}`, "5 3 1"},
		{`{{ range until 3 }}{{ . }}{{ end }}`, "012"},
		{`{{ range untilStep 10 0 -5 }}{{ . }},{{ end }}`, "10,5,"},
		{`{{ indent 2 "a" }}`, "  a"},
		{`{{ slice "abc" 1 }}`, "bc"}, // the builtin, not sprig's
		{`{{ repeat 100000000 "x" }}`, "over"},
		{`{{ repeat -1 "x" }}`, "over"},
		{`{{ seq 1 1000000000 }}`, "over"},
		{`{{ until 1000000000 }}`, "over"},
		{`{{ untilStep -9223372036854775807 9223372036854775807 1 }}`, "over"},
		{`{{ nindent 100000000 "x" }}`, "over"},
		// Growth from one call, refused before it allocates.
		{`{{ replace "a" "bb" "aaa" }}`, "bbbbbb"},
		{`{{ replace "" (repeat 100000 "=") (repeat 20000 "v") }}`, "over"},
		{`{{ regexReplaceAll "" (repeat 20000 "v") (repeat 100000 "=") }}`, "over"},
		{`{{ regexReplaceAll "a(x*)" "-ax-" "${1}Z" }}`, "-xZ-"},
		{`{{ regexReplaceAllLiteral "" (repeat 20000 "v") (repeat 100 "=") }}`, "over"},
		{`{{ wrapWith 1 (repeat 1000000 "=") (repeat 20000 "v") }}`, "over"},
		{`{{ wrapWith 2 "|" "abcd" }}`, "ab|cd"},
		// Growth from repeated calls, refused once past the bound.
		{`{{ $s := "0123456789" }}{{ range until 40 }}{{ $s = cat $s $s }}{{ end }}{{ len $s }}`, "cat: "},
		{`{{ $l := list 1 }}{{ range until 40 }}{{ $l = concat $l $l }}{{ end }}{{ len $l }}`, "concat: "},
		{`{{ $s := "0123456789" }}{{ range until 40 }}{{ $s = join $s (list $s $s) }}{{ end }}`, "join: "},
		// Map order, which Go randomises, does not reach the message.
		{`{{ keys (dict "e" 5 "a" 1 "c" 3 "b" 2 "d" 4) | join "," }}`, "a,b,c,d,e"},
		{`{{ values (dict "e" 5 "a" 1 "c" 3 "b" 2 "d" 4) | join "," }}`, "1,2,3,4,5"},
	} {
		t.Run(c.tmpl, func(t *testing.T) {
			r := funcsRenderer(t, "ok", "b.html")
			tt, err := parseText("t", c.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := execText(tt, r.data(nil, nil))
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, c.want) {
				t.Errorf("got %q, want it to hold %q", got, c.want)
			}
		})
	}
}
