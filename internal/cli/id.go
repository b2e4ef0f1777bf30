package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nearnet/nearnet/security"
)

// runID prints the fingerprint of the identity in --identity (created if
// the file is absent), or of a new one. With --known-peers it then lists
// the peers that file trusts, and with --forget it removes one first.
// With --json: {"event":"id","fingerprint":"sha256:..."}, then one
// {"event":"known_peer","name":...,"fingerprint":...} per peer, and
// {"event":"forgotten","fingerprint":...}.
func runID(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("id")
	fs.uses("identity", "json", "known-peers")
	var forget fingerprintList
	fs.Var(&forget, "forget", "with --known-peers: stop trusting the peer `FINGERPRINT` (remove its entry; repeatable)")
	fs.summary = "Peers that pin this node pass the fingerprint to --trust. Without --identity the\nidentity is new and lost when the command ends, so give --identity PATH to keep one.\n" +
		"With --known-peers PATH, id also lists the peers that file trusts (nearnet pair adds them),\nafter removing those named by --forget."
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	if len(forget) > 0 && fs.g.knownPeers == "" {
		return fs.usageError("--forget needs --known-peers PATH: the file to remove the peer from")
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
	} else if fs.g.knownPeers == "" {
		if id, err = security.NewIdentity(); err != nil {
			return err
		}
		fmt.Fprintln(e.stderr, "nearnet: note: a new identity, not saved; pass --identity PATH to keep one")
	}
	out := newPrinter(e.stdout, fs.g.json)
	if id != nil {
		if fs.g.json {
			b, _ := json.Marshal(struct {
				Event       string `json:"event"`
				Fingerprint string `json:"fingerprint"`
			}{"id", id.Fingerprint().String()})
			if err := out.line(string(b)); err != nil {
				return err
			}
		} else if err := out.line(id.Fingerprint().String()); err != nil {
			return err
		}
	}
	if fs.g.knownPeers == "" {
		return nil
	}
	kp, err := security.LoadKnownPeers(fs.g.knownPeers)
	if err != nil {
		return fmt.Errorf("--known-peers: %s", errText(err))
	}
	var missing []string
	for _, fp := range forget {
		had, err := kp.Remove(fp)
		if err != nil {
			return fmt.Errorf("--known-peers: %s", errText(err))
		}
		if !had {
			missing = append(missing, fp.String())
			continue
		}
		out.print("", &knownPeerEvent{head: head{Event: "forgotten"}, Fingerprint: fp.String()})
	}
	for _, p := range kp.List() {
		out.print("", &knownPeerEvent{head: head{Event: "known_peer"}, Name: p.Name, Fingerprint: p.Fingerprint.String()})
	}
	if len(missing) > 0 {
		return errors.New("--forget: not in " + fs.g.knownPeers + ": " + fmt.Sprint(missing))
	}
	return nil
}

// knownPeerEvent is a peer a known-peers file trusts, or one just removed.
type knownPeerEvent struct {
	head
	Name        string `json:"name,omitempty"`
	Fingerprint string `json:"fingerprint"`
}

func (e *knownPeerEvent) text() string {
	if e.Event == "forgotten" {
		return "forgot " + e.Fingerprint
	}
	name := e.Name
	if name == "" {
		name = "(no name)"
	}
	return "known peer " + e.Fingerprint + " " + clean(name)
}
