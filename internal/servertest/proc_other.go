//go:build !unix

package servertest

import "os/exec"

// ownGroup does nothing: the servers run on unix only, and their Start
// skips the test when they are not installed; this keeps the package
// building.
func ownGroup(*exec.Cmd) {}

// killGroup kills the process itself.
func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }
