// Package campaign is what mailrun sends and to whom: the campaign file and
// its list. It turns files into values (render.Config, render.Recipient)
// and problems ("campaign.yaml:7: subject: ..."); it knows nothing of the
// wire or the journal. Package mailing runs a campaign: check, preview,
// send.
//
// The flow, one function per step:
//
//  1. Load reads campaign.yaml strictly (unknown keys and a plain password
//     are errors with their line), applies the campaign's own defaults
//     (name, mode, send policy; the wire's defaults are sender's) and
//     validates every section (Campaign.validate, one method per section),
//     collecting every Problem. Header names and DKIM keys are checked with
//     render's rules (render.CheckHeaderName, render.ParseDKIMKey), not
//     copies of them. Campaign.Problem places a problem found later (by
//     the wire's own check, say) on its key's line.
//  2. RenderConfig maps the campaign to render.Config (loading the DKIM
//     key); Password, Rate and File give what the smtp, send and bounces
//     sections need beyond their fields.
//  3. OpenRecipients streams the CSV as people have it (the delimiter
//     detected or recipients.delimiter, recipients.encoding, the address
//     column found by name); Recipients.Next returns one render.Recipient
//     per row, or the row's Problems (an address a relay cannot route or a
//     reader could be fooled by, wrong field count, duplicate in another
//     letter case, ...) and goes on.
//  4. LoadSuppressions reads the suppress files; Suppressions.Suppressed
//     tells which recipients to skip. AppendSuppress adds bounced
//     addresses.
//  5. AddrKey is the one rule for "the same recipient" (the whole address,
//     trimmed and lower-cased): duplicates, suppress lists, bounces and the
//     journal all compare addresses through it.
//
// Init writes a small working campaign to start from.
//
// Problems name files as the user gave the campaign's path ("examples/
// newsletter/recipients.csv:7"), and Printable shows their control
// characters escaped, so that a problem is one line on a terminal.
//
// Paths in a campaign are relative to its folder and opened through os.Root,
// so neither "..", an absolute path nor a symlink can reach outside it.
// Passwords are never stored in a Campaign nor printed by it.
package campaign
