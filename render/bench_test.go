package render

import (
	"strconv"
	"testing"
)

// BenchmarkRender renders the newsletter (Markdown body, layout, one inline
// logo, five fields, no attachment) for changing recipients, in parallel as
// the campaign's workers do.
func BenchmarkRender(b *testing.B) {
	cfg := baseConfig()
	cfg.Attachments = nil
	cfg.MessageID = nil
	benchRender(b, cfg, "Zoë", "Ünïcødé")
}

// BenchmarkRenderASCII is BenchmarkRender with plain ASCII values and
// subject, the common case whose header values go out as they are.
func BenchmarkRenderASCII(b *testing.B) {
	cfg := baseConfig()
	cfg.Attachments = nil
	cfg.MessageID = nil
	cfg.Subject = "{{.first_name}}, news for November - issue {{.Vars.issue}}"
	benchRender(b, cfg, "Zoe", "Smith")
}

func benchRender(b *testing.B, cfg Config, first, last string) {
	r := newRenderer(b, cfg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			rc := Recipient{Row: i, Email: "user" + strconv.Itoa(i) + "@example.org", Fields: map[string]string{
				"email": "user@example.org", "first_name": first, "last_name": last, "plan": "Pro", "id": strconv.Itoa(i),
			}}
			if _, err := r.Render(rc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRenderInline is BenchmarkRender in a layout with a <style>
// whose rules are inlined: once per skeleton, so per recipient only the
// values are filled in.
func BenchmarkRenderInline(b *testing.B) {
	cfg := baseConfig()
	cfg.Attachments = nil
	cfg.MessageID = nil
	cfg.Layout = "styled.html"
	benchRender(b, cfg, "Zoë", "Ünïcødé")
}

// BenchmarkRenderInlineHTML inlines an HTML body in that layout, which
// html/template fills per recipient: the inliner runs per message.
func BenchmarkRenderInlineHTML(b *testing.B) {
	cfg := baseConfig()
	cfg.Attachments = nil
	cfg.MessageID = nil
	cfg.Markdown, cfg.HTML, cfg.Layout = "", "styled-body.html", "styled.html"
	benchRender(b, cfg, "Zoë", "Ünïcødé")
}
