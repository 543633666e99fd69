package campaign_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"

	"github.com/mailrun/mailrun/campaign"
)

// writeCampaign writes a campaign folder into a new temporary folder: the
// campaign file yaml, a body and the recipient list csv. The caller removes
// the folder.
func writeCampaign(yaml, csv string) string {
	dir, err := os.MkdirTemp("", "campaign-example")
	if err != nil {
		log.Fatal(err)
	}
	for name, data := range map[string]string{
		campaign.DefaultFile: yaml,
		"body.md":            "Hello {{.first_name}},\n\nour spring sale starts today.\n",
		"recipients.csv":     csv,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	return dir
}

// Load a campaign folder whose file has one mistake on line 8. The
// Campaign comes back along with the Problems, so that check can report
// the recipients too; a sender must stop on any error.
func ExampleLoad() {
	dir := writeCampaign(`name: spring-sale
from: "Acme News <news@acme.example>"
subject: "Spring sale, {{.first_name}}"
recipients: recipients.csv
body:
  markdown: body.md
send:
  rate: 10 per second
`, "email,first_name\nann@example.org,Ann\n")
	defer os.RemoveAll(dir)

	c, err := campaign.Load(dir)
	var problems campaign.Problems
	if err != nil && !errors.As(err, &problems) {
		log.Fatal(err) // unreadable
	}
	if c != nil { // nil when the file does not even decode
		fmt.Println("name:", c.Name)
		fmt.Println("mode:", c.Mode) // the default
	}
	for _, p := range problems {
		// Problems name files by the path given to Load; the temporary
		// folder is cut off so that the output is the same every run.
		fmt.Println(strings.TrimPrefix(p.String(), dir+string(filepath.Separator)))
	}
	// Output:
	// name: spring-sale
	// mode: individual
	// campaign.yaml:8: send.rate: "10 per second" is not N/s, N/m or N/h
}

// AddrKey is how every part of mailrun decides that two addresses are the
// same recipient.
func ExampleAddrKey() {
	fmt.Println(campaign.AddrKey("  Ann@Example.ORG "))
	fmt.Println(campaign.AddrKey("ANN@example.org") == campaign.AddrKey("ann@EXAMPLE.org"))
	// Output:
	// ann@example.org
	// true
}

// Stream the list one row at a time. A row that cannot be used comes with
// its Problems, printed as "file:line: field: message", and the loop goes
// on with the next row. Addresses are trimmed; one that differs from an
// earlier row only in letter case is a duplicate (see AddrKey), a warning.
func ExampleOpenRecipients() {
	dir := writeCampaign(`from: news@acme.example
subject: Spring sale
recipients: recipients.csv
body:
  markdown: body.md
`, "email,first_name\nann@example.org,Ann\n\"Bob <bob@example.org>\",Bob\n Cy@Example.org ,Cy\nANN@example.org,Annie\n")
	defer os.RemoveAll(dir)

	c, err := campaign.Load(dir)
	if err != nil {
		log.Fatal(err)
	}
	rs, err := campaign.OpenRecipients(c)
	if err != nil {
		log.Fatal(err)
	}
	defer rs.Close()
	for {
		r, err := rs.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		var problems campaign.Problems
		if errors.As(err, &problems) {
			for _, p := range problems {
				fmt.Println(strings.TrimPrefix(p.String(), dir+string(filepath.Separator)))
			}
			continue // skip this row
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("row %d: %s (%s)\n", r.Row, r.Email, r.Fields["first_name"])
	}
	// Output:
	// row 2: ann@example.org (Ann)
	// recipients.csv:3: email: want a bare address like ann@example.org, got "Bob <bob@example.org>"
	// row 4: Cy@Example.org (Cy)
	// recipients.csv:5: email: warning: duplicate of row 2, skipped
}
