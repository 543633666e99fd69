package journal

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteReport lists every recipient's last outcome from the journal at
// path (read as Latest reads it), in row order, as "csv" or "json" (one JSON object per line). CSV
// cells that a spreadsheet would run as a formula (starting with = + - @,
// tab or CR) are prefixed with a single quote (OWASP CSV injection).
func WriteReport(w io.Writer, path, format string, key Key) error {
	rep, err := Latest(path, key)
	if err != nil {
		return err
	}
	return WriteEntries(w, rep.Recipients, format)
}

// WriteEntries writes entries as WriteReport does: the one format of a
// report, whether it comes from a journal or from a cluster's state.
func WriteEntries(w io.Writer, entries []Entry, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	case "csv", "":
		cw := csv.NewWriter(w)
		cw.Write([]string{"row", "email", "status", "reason", "code", "enhanced", "reply", "message_id", "attempts", "time", "error"})
		for _, e := range entries {
			var code, enh, text string
			if e.Reply != nil {
				code, enh, text = strconv.Itoa(e.Reply.Code), e.Reply.Enhanced, e.Reply.Text
			}
			row := []string{strconv.Itoa(e.Row), e.Email, string(e.Status), e.Reason, code, enh, text, e.MessageID,
				strconv.Itoa(e.Attempts), e.Time.UTC().Format("2006-01-02T15:04:05Z"), e.Error}
			for i := range row {
				row[i] = cellSafe(row[i])
			}
			cw.Write(row)
		}
		cw.Flush()
		return cw.Error()
	default:
		return fmt.Errorf("format %q: want csv or json", format)
	}
}

// cellSafe defuses a CSV cell that spreadsheets would evaluate.
func cellSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
