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
	r := newRenderer(b, cfg)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			rc := Recipient{Row: i, Email: "user" + strconv.Itoa(i) + "@example.org", Fields: map[string]string{
				"email": "user@example.org", "first_name": "Zoë", "last_name": "Ünïcødé", "plan": "Pro", "id": strconv.Itoa(i),
			}}
			if _, err := r.Render(rc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
