package gallery

import "html/template"

// The pages have no script and load nothing from elsewhere, so they work
// from file:// and any static server, offline. Their policy forbids
// scripts, plugins, <base> and forms, and the srcdoc frame inherits it.
const head = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#1d2330}
table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:.3em .6em;text-align:left;vertical-align:top}
.problems{color:#a40000;white-space:pre-wrap;font-family:monospace}
iframe{width:100%;height:75vh;border:1px solid #ccd;background:#fff}
pre.text{white-space:pre-wrap;border:1px solid #ccd;padding:1em;background:#fafafa}
dl.headers dt{font-weight:bold;float:left;clear:left;width:6em}dl.headers dd{margin-left:7em}
</style>`

// indexView is what the index's head shows.
type indexView struct {
	Notes []string
	Count int
}

var indexHead = template.Must(template.New("index").Parse(head + `
<title>mailrun preview</title></head><body>
<h1>mailrun preview</h1>
<p>{{.Count}} rows.</p>
{{if .Notes}}<h2>Problems</h2><ul class="problems">{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<table id="rows"><thead><tr><th>row</th><th>address</th><th>name</th><th>subject</th><th>size</th><th>attachments</th><th>problems</th></tr></thead><tbody>
`))

var rowTmpl = template.Must(template.New("row").Parse(`<tr id="row-{{.Row}}"><td>{{.Row}}</td><td>{{.Address}}</td><td>{{.Name}}</td><td>{{if .Page}}<a href="{{.Page}}">{{.Subject}}</a>{{end}}</td><td>{{if .Page}}{{.Size}}{{end}}</td><td>{{range $i, $a := .Attachments}}{{if $i}}, {{end}}{{$a}}{{end}}</td><td class="problems">{{range .Problems}}{{.}}
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
	Attachments []attachView
	EMLHref     string
}

type headerView struct{ Name, Value string }

type attachView struct {
	Name, Type string
	Size       int
}

// The message's HTML goes into the frame's srcdoc attribute, escaped as an
// attribute value, so the frame gets the bytes as sent. The sandbox has
// neither allow-scripts nor allow-same-origin: the message's scripts do not
// run and its CSS stays in the frame.
var pageTmpl = template.Must(template.New("page").Parse(head + `
<title>{{.Subject}}</title></head><body>
<p><a href="./index.html">all messages</a> · row {{.Row}} · <a href="{{.EMLHref}}">{{.EML}}</a> ({{.Size}} bytes)</p>
<dl class="headers">{{range .Headers}}<dt>{{.Name}}</dt><dd>{{.Value}}</dd>{{end}}</dl>
{{if .HTML}}<h2>HTML</h2>
<iframe sandbox title="the message's HTML part" srcdoc="{{.HTML}}"></iframe>{{end}}
{{if .Text}}<h2>Text</h2>
<pre class="text">{{.Text}}</pre>{{end}}
{{if .Attachments}}<h2>Attachments</h2>
<ul class="attachments">{{range .Attachments}}<li>{{.Name}} ({{.Type}}, {{.Size}} bytes)</li>{{end}}</ul>{{end}}
</body></html>
`))
