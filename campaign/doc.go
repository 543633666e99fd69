// Package campaign is what mailrun sends and to whom: the campaign file, the
// recipient stream, the suppress lists, and the check and preview runs built
// on them. It turns files into render.Config and render.Recipient values;
// the bytes of a message are made by package render only.
//
// The flow, one function per step:
//
//  1. Load reads campaign.yaml strictly (unknown keys and a plain password
//     are errors with their line), applies the defaults and validates every
//     section, collecting every Problem ("campaign.yaml:7: subject: ...").
//  2. RenderConfig maps the campaign to render.Config (loading the DKIM key);
//     Password, Rate and File give what the smtp, send and bounces sections
//     need beyond their fields.
//  3. OpenRecipients streams the CSV; Recipients.Next returns one
//     render.Recipient per row, or the row's Problems (bad address, wrong
//     field count, duplicate in another letter case, ...) and goes on.
//  4. LoadSuppressions reads the suppress files; Suppressions.Suppressed
//     tells which recipients to skip. AppendSuppress adds bounced addresses.
//  5. Check renders every row and discards the result, printing every
//     problem and a summary; Preview writes one .eml per recipient (or one
//     group.eml). Both return a Report; the caller exits 2 when it counts
//     errors.
//  6. Run (the send) reuses steps 1 to 4: it opens and locks the journal
//     (package journal), skips recipients an earlier run settled, renders
//     ahead on GOMAXPROCS goroutines and hands each message, in CSV order,
//     to send.concurrency workers that journal the intent (durable before
//     the message can be accepted: before the body after DATA, before the
//     group with BDAT), deliver through a Mailer (sender.Pool) and journal
//     the outcome. TestSend, Count, WriteReport and OverrideSMTP serve the
//     other send options; package bounce reads bounces back.
//
// Init writes a small working campaign to start from.
//
// Paths in a campaign are relative to its folder and opened through os.Root,
// so neither "..", an absolute path nor a symlink can reach outside it.
// Passwords are never stored in a Campaign nor printed by it.
package campaign
