package sender

import "bytes"

// dotStuff encodes msg for DATA (RFC 5321 section 4.5.2): LF line ends
// become CRLF, a line starting with "." gets a second ".", and the message
// ends with CRLF "." CRLF. It yields exactly the bytes of net/textproto's
// DotWriter (the fuzz test holds it to that), whose byte-at-a-time writes
// were the client's main cost in BenchmarkPoolSend; runs of plain bytes
// are copied whole here.
func dotStuff(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+len(msg)/64+8)
	const (
		begin = iota
		beginLine
		data
		cr
	)
	state := begin
	for len(msg) > 0 {
		if state == data {
			// Copy up to the next CR or LF in one go.
			i := bytes.IndexAny(msg, "\r\n")
			if i < 0 {
				out = append(out, msg...)
				break
			}
			out = append(out, msg[:i]...)
			msg = msg[i:]
		}
		c := msg[0]
		switch state {
		case begin, beginLine:
			state = data
			if c == '.' {
				out = append(out, '.')
			}
			fallthrough
		case data:
			if c == '\r' {
				state = cr
			}
			if c == '\n' {
				out = append(out, '\r')
				state = beginLine
			}
		case cr:
			state = data
			if c == '\n' {
				state = beginLine
			}
		}
		out = append(out, c)
		msg = msg[1:]
	}
	switch state {
	case begin, data:
		out = append(out, '\r', '\n')
	case cr:
		out = append(out, '\n')
	}
	return append(out, '.', '\r', '\n')
}
