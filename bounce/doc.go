// Package bounce turns the messages of a bounce mailbox into suppressed
// addresses and journal marks: the engine of `mailrun bounces`, which
// mailing.Bounces wires to the campaign, the mailbox and the journal.
//
// The flow of Process (one run over one mailbox):
//  1. Mailbox.List, then for each message Mailbox.Fetch and Parse, which
//     recognises RFC 3464 delivery status notifications (Postfix, Gmail,
//     Microsoft 365 with its status hidden in Diagnostic-Code), qmail and
//     Exim text bounces, and auto-replies, and classifies each recipient:
//     5.x.x hard, 4.x.x or Action: delayed soft. A message Parse cannot read
//     is an error matching ErrMalformed and is always kept.
//  2. campaign.AppendSuppress adds the hard-bounced addresses to
//     Options.WriteTo in one atomic replace, before the mailbox changes, so
//     a crash loses no bounce.
//  3. Options.Mark records each hard-bounced recipient in the journal.
//     Addresses are compared by campaign.AddrKey, the rule the suppress
//     lists and the journal use too.
//  4. Mailbox.Move or Mailbox.Delete per Options.After; messages that are not
//     bounces are never deleted.
//  5. Summary.Print reports hard, soft, not-a-bounce and errors, sorted.
//
// With Options.DryRun steps 2 to 4 are skipped. The Mailbox interface is
// satisfied by mailbox's IMAP and POP3 sessions; the caller closes the
// session, which for POP3 commits the deletions.
package bounce
