package cli

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/nearnet/nearnet/security"
)

// runID prints the fingerprint of the identity in --identity (created if
// the file is absent), or of a new one. With --json:
// {"event":"id","fingerprint":"sha256:..."}.
func runID(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("id")
	fs.uses("identity", "json")
	fs.summary = "Peers that pin this node pass the fingerprint to --trust. Without --identity the\nidentity is new and lost when the command ends, so give --identity PATH to keep one."
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	var (
		id  *security.Identity
		err error
	)
	if fs.g.identity != "" {
		id, err = security.LoadOrCreateIdentity(fs.g.identity)
		if err != nil {
			return fmt.Errorf("--identity: %s", errText(err))
		}
	} else {
		if id, err = security.NewIdentity(); err != nil {
			return err
		}
		fmt.Fprintln(e.stderr, "nearnet: note: a new identity, not saved; pass --identity PATH to keep one")
	}
	out := newPrinter(e.stdout, fs.g.json)
	if fs.g.json {
		b, _ := json.Marshal(struct {
			Event       string `json:"event"`
			Fingerprint string `json:"fingerprint"`
		}{"id", id.Fingerprint().String()})
		return out.line(string(b))
	}
	return out.line(id.Fingerprint().String())
}
