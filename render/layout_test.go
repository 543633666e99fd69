package render

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// A layout that reads only .Body and .Vars runs once; one that may read a
// CSV column runs per recipient. Both give every recipient the same HTML
// and images as running the layout per recipient.
func TestLayoutSplit(t *testing.T) {
	logo, err := os.ReadFile(filepath.Join("testdata", "campaign", "logo.png"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, layout string
		split        bool
	}{
		{"body and vars", `<html><img src="head.png"><h1>{{.Vars.title}}</h1>{{.Body}}<img src="logo.png"><p>{{if .Vars.title}}t{{end}}</p></html>`, true},
		{"$.Vars", `<p>{{$.Vars.title}}</p>{{.Body}}`, true},
		{"a column", `<p>Hi {{.first_name}}</p>{{.Body}}`, false},
		{"$ column", `<p>Hi {{$.first_name}}</p>{{.Body}}`, false},
		{"index of dot", `<p>{{index . "first_name"}}</p>{{.Body}}`, false},
		{"with moves dot", `{{with .Vars}}<p>{{.title}}</p>{{end}}{{.Body}}`, false},
		{"body in an attribute", `<div title="{{.Body}}">{{.Body}}</div>`, false},
		{"body twice", `{{.Body}}<hr>{{.Body}}`, false},
		{"missing image", `<img src="nope.png">{{.Body}}`, false},
		// .Body other than printed as HTML text: its value, not only its
		// place, changes the page.
		{"if body", `{{if .Body}}<div>{{.Body}}</div>{{else}}<p>empty</p>{{end}}`, false},
		{"printf body", `<p>{{printf "%.2s" .Body}}</p>{{.Body}}`, false},
		{"len body", `<p>{{len .Body}}</p>{{.Body}}`, false},
		{"body in a style", `<style>p{{.Body}}</style>{{.Body}}`, false},
		{"body via a variable", `{{$b := .Body}}{{if $b}}x{{end}}{{.Body}}`, false},
		{"body in a defined template", `{{define "m"}}<main>{{.Body}}</main>{{end}}{{template "m" .}}`, false},
		{"body in a comment", `<!-- {{.Body}} -->{{.Body}}`, true},
		{"$.Body", `<main>{{$.Body}}</main>`, true},
		{"block with vars", `{{block "h" .Vars}}<h1>{{.title}}</h1>{{end}}{{.Body}}`, false},
		{"no body", `<p>{{.Vars.title}}</p>`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := tempCampaign(t, map[string]string{
				"b.md": "{{if ne .first_name \"empty\"}}![logo](logo.png) Hello {{.first_name}}{{end}}\n", "l.html": tc.layout,
				"logo.png": string(logo), "head.png": string(logo[:len(logo)-1]) + "x",
			})
			cfg := Config{Dir: dir, From: "news@acme.example", Subject: "s", Markdown: "b.md", Layout: "l.html",
				Vars: map[string]any{"title": "Acme"}}
			r := newRenderer(t, cfg)
			if got := r.layoutSplit != nil; got != tc.split {
				t.Errorf("split = %v, want %v", got, tc.split)
			}
			plain := newRenderer(t, cfg)
			plain.layoutSplit = nil // the layout per recipient, as before
			for _, name := range []string{"Zoë", "<b>Ann</b>", "", "empty"} {
				fields := map[string]string{"first_name": name}
				got, gerr := contentOf(r, fields)
				want, werr := contentOf(plain, fields)
				if (gerr == nil) != (werr == nil) {
					t.Fatalf("%q: errors %v and %v", name, gerr, werr)
				}
				if gerr != nil {
					continue
				}
				if got.html != want.html {
					t.Errorf("%q: html\n%s\nwant\n%s", name, got.html, want.html)
				}
				if !slices.EqualFunc(got.embeds, want.embeds, func(a, b *fileData) bool { return a.CID == b.CID }) {
					t.Errorf("%q: %d images, want %d in the same order", name, len(got.embeds), len(want.embeds))
				}
			}
		})
	}
}
