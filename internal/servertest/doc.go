// Package servertest is the plumbing shared by the helpers that start a
// real mail server for tests (dovecottest, postfixtest): it knows
// processes, ports and certificates, and nothing of mail or of mailrun.
//
// A helper's Start goes through it in this order:
//  1. when its server cannot run here, Unavailable skips the test, or
//     fails it when the CI environment variable is set;
//  2. SelfSigned makes the certificate the server presents, and FreePorts
//     the loopback ports it listens on;
//  3. Run runs a short command to its end, and Launch starts the daemon
//     in a process group of its own, killed in t.Cleanup and, until it is
//     ready, at the deadline of Start's context;
//  4. Poll repeats a probe, typically Dial and a read of the greeting,
//     until the daemon answers, exits, or the deadline passes.
//
// Recorder lets a helper's own tests watch Start give up.
package servertest
