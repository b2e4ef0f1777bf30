package cli

import (
	"context"
	"time"

	"github.com/nearnet/nearnet"
)

// runBrowse prints the services of --service as they are found, updated
// and lost, until --timeout (exit 0) or ctx is cancelled (exit 0). It
// connects to nobody, so a security flag is optional; one given is still
// checked.
func runBrowse(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("browse")
	fs.summary = "Services that are not nearnet peers (no peer ID in their TXT record) are shown too,\nwith an empty peer."
	var timeout durationValue
	fs.Var(&timeout, "timeout", "stop after `D` and exit 0; 0 browses until interrupted")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	cfg, err := fs.config(false)
	if err != nil {
		return err
	}
	defer fs.closeTunnel() // after the node's Close, deferred later
	node, err := fs.newNode(cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout))
		defer cancel()
	}
	out := newPrinter(e.stdout, fs.g.json)
	err = node.Browse(ctx, func(be nearnet.BrowseEvent) {
		ev := newBrowseEvent(be)
		ev.showTXT = true
		out.print("", ev)
	})
	if ctx.Err() != nil {
		return node.Close()
	}
	return err
}
