//go:build !unix

package postfixtest

import "os/exec"

// ownGroup does nothing: Postfix runs on unix only, and Start skips the
// test when it is not installed; this keeps the package building.
func ownGroup(*exec.Cmd) {}

// killGroup kills the process itself.
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
