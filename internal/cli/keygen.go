package cli

import (
	"context"
	"encoding/json"

	"github.com/nearnet/nearnet/security"
)

// runKeygen prints a new pre-shared key: 64 hex digits, the form
// --key-file reads. With --json: {"event":"key","key":"..."}.
func runKeygen(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("keygen")
	fs.summary = "Save the output to a file readable only by you (chmod 600) and pass it to\nevery peer with --key-file: peers holding the same key accept each other."
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	k, err := security.GenerateKey()
	if err != nil {
		return err
	}
	out := newPrinter(e.stdout, fs.g.json)
	if fs.g.json {
		b, _ := json.Marshal(struct {
			Event string `json:"event"`
			Key   string `json:"key"`
		}{"key", k.String()})
		return out.line(string(b))
	}
	return out.line(k.String())
}

// helpOK turns the -h outcome of parse into success.
func helpOK(err error) error {
	if err == errHelp {
		return nil
	}
	return err
}
