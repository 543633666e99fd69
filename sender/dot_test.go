package sender

import (
	"bufio"
	"bytes"
	"net/textproto"
	"testing"
)

// TestDotStuffMatchesTextproto pins dotStuff to the standard library's
// DotWriter, the reference both client libraries use.
func TestDotStuffMatchesTextproto(t *testing.T) {
	for _, in := range []string{
		"", "a", "a\r\n", "a\n", ".", ".\r\n", "..x\r\n", "a\r\n.\r\nb", "a\n.b\n\n", "\r\n\r\n",
		"x\ry\r\n", "line\r", "a\r\n.", "From: a\r\n\r\n.leading\r\n..two\r\nend",
	} {
		var want bytes.Buffer
		bw := bufio.NewWriter(&want)
		w := textproto.NewWriter(bw).DotWriter()
		_, _ = w.Write([]byte(in))
		_ = w.Close()
		_ = bw.Flush()
		if got := dotStuff([]byte(in)); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("dotStuff(%q) = %q, want %q", in, got, want.Bytes())
		}
	}
}

func FuzzDotStuff(f *testing.F) {
	for _, s := range []string{"", "a\r\n.\r\n", "x\ry\n.z", "..\n\n.", "line\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want bytes.Buffer
		bw := bufio.NewWriter(&want)
		w := textproto.NewWriter(bw).DotWriter()
		_, _ = w.Write(in)
		_ = w.Close()
		_ = bw.Flush()
		if got := dotStuff(in); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("dotStuff(%q) = %q, want %q", in, got, want.Bytes())
		}
	})
}
