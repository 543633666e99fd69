package gallery

import "html/template"

// The files of a preview have no script and load nothing from elsewhere,
// so they work from file:// and any static server, offline. Their policy
// forbids scripts, plugins, <base> and forms, and the srcdoc frame
// inherits it. A served page (Live) allows its own script and its picker
// form, from its own origin only; the frame's sandbox still runs no
// script of the message's.
const head = `{{define "head"}}<!DOCTYPE html>
<html lang="en"{{with .Live}} data-version="{{.Version}}"{{end}}><head><meta charset="utf-8">
{{if .Live}}<meta http-equiv="Content-Security-Policy" content="script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'">
<script src="{{.Live.Script}}" defer></script>
{{- else}}<meta http-equiv="Content-Security-Policy" content="script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'">{{end}}
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d2330}
table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:.3em .6em;text-align:left;vertical-align:top}
.problems{color:#a40000;white-space:pre-wrap;font-family:monospace}
iframe{display:block;width:100%;height:75vh;border:1px solid #ccd;background:#fff}
#width-phone:checked~iframe{width:375px}
pre.text{white-space:pre-wrap;border:1px solid #ccd;padding:1em;background:#fafafa}
dl.headers dt{font-weight:bold;float:left;clear:left;width:6em}dl.headers dd{margin-left:7em}
</style>{{end}}
{{define "pick"}}{{with .Live}}<form class="pick" action="{{.Pick}}" method="get"><label>row or address <input name="r" value="{{.Picked}}" size="30"></label> <button>show</button></form>{{end}}{{end}}`

// indexView is what the index's head shows.
type indexView struct {
	Notes         []string
	Count, Listed int
	Live          *Live
}

var indexHead = template.Must(template.Must(template.New("index").Parse(head)).Parse(`{{template "head" .}}
<title>mailrun preview</title></head><body>
<h1>mailrun preview</h1>
{{template "pick" .}}
<p>{{.Count}} rows.{{if lt .Listed .Count}} {{.Listed}} listed here; pick any other by its row or address.{{end}}</p>
{{if .Notes}}<h2>Problems</h2><ul class="problems">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<table id="rows"><thead><tr><th>row</th><th>address</th><th>name</th><th>subject</th><th>size</th><th>attachments</th><th>problems</th></tr></thead><tbody>
`))

var rowTmpl = template.Must(template.New("row").Parse(`<tr id="row-{{.Row}}"><td>{{.Row}}</td><td>{{.Address}}</td><td>{{.Name}}</td><td>{{if .Page}}<a href="{{.Page}}">{{or .Subject "(no message)"}}</a>{{end}}</td><td>{{if .EML}}{{.Size}}{{end}}</td><td>{{range $i, $a := .Attachments}}{{if $i}}, {{end}}{{$a}}{{end}}</td><td class="problems">{{range .Problems}}{{.}}
{{end}}</td></tr>
`))

var indexFoot = template.Must(template.New("foot").Parse(`</tbody></table>
</body></html>
`))

// pageView is what a message page shows.
type pageView struct {
	Entry
	Headers     []headerView
	HTML, Text  string
	HasMessage  bool
	Attachments []attachView
	EMLHref     string
	IndexHref   string
	Prev, Next  string
	Live        *Live
}

type headerView struct{ Name, Value string }

type attachView struct {
	Name, Type string
	Size       int
}

// The message's HTML goes into the frame's srcdoc attribute, escaped as an
// attribute value, so the frame gets the bytes as sent. The sandbox allows
// nothing but the page's own origin: the message's scripts do not run, its
// forms do not submit, and its CSS stays in the frame. The origin is
// needed for its images: Chromium lets a frame with an opaque origin load
// no file: URL, so from file:// the images beside the page would not show.
// Without allow-scripts the origin gives the message nothing to act with. The phone width is a radio button
// and a CSS rule, so the files need no script for it.
var pageTmpl = template.Must(template.Must(template.New("page").Parse(head)).Parse(`{{template "head" .}}
<title>{{if .HasMessage}}{{.Subject}}{{else}}row {{.Row}}: problems{{end}}</title></head><body>
{{template "pick" .}}
<p><a href="{{.IndexHref}}">all messages</a>{{if .Prev}} · <a href="{{.Prev}}" rel="prev">previous</a>{{end}}{{if .Next}} · <a href="{{.Next}}" rel="next">next</a>{{end}} · row {{.Row}}{{if .Address}} &lt;{{.Address}}&gt;{{end}}{{if .EMLHref}} · <a href="{{.EMLHref}}" download>{{.EML}}</a> ({{.Size}} bytes){{end}}</p>
{{if .Problems}}<h2>Problems</h2>
<ul class="problems" id="problems">{{range .Problems}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .HasMessage}}<dl class="headers">{{range .Headers}}<dt>{{.Name}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{if .HTML}}<h2>HTML</h2>
<div class="widths"><input type="radio" name="width" id="width-desktop" checked><label for="width-desktop">desktop</label>
<input type="radio" name="width" id="width-phone"><label for="width-phone">phone (375 px)</label>
<iframe sandbox="allow-same-origin" title="the message's HTML part" srcdoc="{{.HTML}}"></iframe></div>{{end}}
{{if .Text}}<h2>Text</h2>
<pre class="text">{{.Text}}</pre>{{end}}
{{if .Attachments}}<h2>Attachments</h2>
<ul class="attachments">{{range .Attachments}}<li>{{.Name}} ({{.Type}}, {{.Size}} bytes)</li>{{end}}</ul>{{end}}{{end}}
</body></html>
`))
