package render

import "testing"

func TestHTMLToText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"<p>a</p><p>b</p>", "a\n\nb\n"},
		{"a<br>b<br/>c", "a\nb\nc\n"},
		{`<a href="https://x.example/">site</a>.`, "site <https://x.example/>.\n"},
		{`<a href="https://x.example/">https://x.example/</a>`, "https://x.example/\n"},
		{`<a href="#top">top</a>`, "top\n"},
		{"<ul><li>one</li><li>two</li></ul>", "* one\n* two\n"},
		{"<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>", "a | b\n1 | 2\n"},
		{"<style>p{color:red}</style><script>x()</script><p>text</p>", "text\n"},
		{"<p>caf&eacute; &amp; &lt;tea&gt; &#8364;</p>", "café & <tea> €\n"},
		{"<p>  lots   of\n\n space </p>", "lots of space\n"},
		{"<pre>  keep\n   this</pre>", "  keep\n   this\n"},
		{`<img src="x.png" alt="Logo"> <!-- <p>hidden</p> -->end`, "Logo end\n"},
		{"<p>a > b</p>", "a > b\n"},
		{"x < y and <b>bold</b>", "x < y and bold\n"},
		{"<hr>", "----------\n"},
	} {
		if got := htmlToText(tc.in); got != tc.want {
			t.Errorf("htmlToText(%q):\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}
