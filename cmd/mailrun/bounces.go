package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/mailrun/mailrun/mailing"
)

func cmdBounces(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bounces", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "read and classify, change nothing")
	jpath := fs.String("journal", "", "journal `PATH` (default: <name>.journal next to the campaign)")
	pos, code, ok := parse(fs, args, 1, stdout, stderr)
	if !ok {
		return code
	}
	c, ok := load(pos[0], stderr)
	if !ok {
		return exitUsage
	}
	sum, err := mailing.Bounces(ctx, c, mailing.BouncesOptions{Journal: *jpath, DryRun: *dryRun, Notes: stderr})
	var se *mailing.SetupError
	if errors.Is(err, mailing.ErrNoBounceMailbox) || errors.As(err, &se) {
		fmt.Fprintln(stderr, "mailrun bounces:", errText(err))
		return exitUsage
	}
	if sum != nil {
		sum.Print(stdout)
	}
	if code := interrupted(ctx, err, stderr); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintln(stderr, "mailrun bounces:", errText(err))
		return exitFailed
	}
	if len(sum.Errors()) > 0 {
		return exitFailed
	}
	return exitOK
}
