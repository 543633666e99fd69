// Package mailing runs a campaign: check, preview, send and the test send.
// It is the one package that knows both the model (package campaign) and
// the wire (package sender), as well as the journal and the bounce
// mailbox; the packages below it know nothing of each other.
//
// The flow, one function per step:
//
//  1. Check and Preview (walk) print the campaign file's problems, then
//     those of the relay and bounce settings as the wire itself judges them
//     (relayProblems: sender.New; bounceProblems: mailbox.Check), so that
//     check passes exactly what send and bounces accept.
//  2. newRenderer builds the render.Renderer; campaign.LoadSuppressions
//     and campaign.OpenRecipients open the suppress lists and the list.
//  3. pipeline.run is the one ordered render pipeline: it streams the rows,
//     holds back those the caller names (send: rows an earlier run
//     settled), marks the suppressed, renders the others on GOMAXPROCS
//     goroutines and hands every row to its consumer in CSV order. Check
//     discards the messages, Preview writes them (sender.Dir), TestSend
//     sends the first it picks, and Send hands them to its workers.
//  4. NewPlan works out what a send would do before it asks (journal.Peek,
//     without the lock). Send opens and locks the journal (keyed by
//     campaign.AddrKey),
//     compares the campaign's Fingerprint with the journal's, and runs
//     send.concurrency workers that journal the intent (durable before the
//     message can be accepted: before the body after DATA, before the
//     group with BDAT), deliver through a Mailer (sender.Pool, built from
//     SenderConfig) and journal the outcome. AbortError stops a run the
//     relay refuses; SetupError is a run that cannot start. A relay that
//     cannot be reached stops a run that has sent nothing yet, and pauses
//     every worker of one that has (relayGate, send.give_up_after); a
//     deferred message is retried after the pool's backoff from a goroutine
//     of its own (retryLater), so no worker waits for it.
//  5. Bounces reads the bounce mailbox (package bounce over package
//     mailbox), appends hard bounces to the suppress file and marks them in
//     the journal.
//  6. On a cluster (package cluster, NATS JetStream), Coordinate is Send's
//     counterpart: it plans over the same pipeline, publishes the campaign
//     files and batches of rows (the same batches on a rerun, each marked
//     once queued), and journals the outcomes the workers record, calling
//     the dead workers' last claims unknown once every batch is done. Work
//     is a worker: it renders each recipient of a batch, claims it
//     (create-only) in Hooks.Start just before its first SMTP command,
//     sends through its own sender.Pool at its share of the rate, and
//     records the outcome in place of the claim (resultEntry, the same rule
//     as Send's).
//  7. RenderOne and Index render one row, or the index, for the live
//     preview (package serve) over check's pipeline; nothing is sent.
//
// NewPlan works out what a send would do before it asks (rows to send,
// earlier outcomes, problems, a journal in use, changed files; it changes
// nothing); OverrideSMTP replaces the relay with one given as a URL. Errors name no command-line flag: the
// command line adds its own words.
package mailing
