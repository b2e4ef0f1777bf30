package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/nearnet/nearnet/security"
)

// runKeygen prints a new pre-shared key: 64 hex digits, the form
// --key-file reads. With --json: {"event":"key","key":"..."}.
func runKeygen(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("keygen")
	fs.uses("json")
	fs.summary = "Save the output to a file readable only by you (chmod 600) and pass it to\nevery peer with --key-file: peers holding the same key accept each other."
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	k, err := security.GenerateKey()
	if err != nil {
		return err
	}
	warnIfShared(e)
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

// warnIfShared warns when stdout is a file that other users can read, as
// "nearnet keygen > key" makes under the usual umask: --key-file refuses
// such a file, since whoever reads the key can join.
func warnIfShared(e *env) {
	f, ok := e.stdout.(*os.File)
	if !ok || runtime.GOOS == "windows" {
		return
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	fmt.Fprintf(e.stderr, "nearnet: warning: the output file has mode %04o; --key-file only reads a key "+
		"no other user can read: chmod 600 it (or run keygen under umask 077)\n", fi.Mode().Perm())
}

// helpOK turns the -h outcome of parse into success.
func helpOK(err error) error {
	if err == errHelp {
		return nil
	}
	return err
}
