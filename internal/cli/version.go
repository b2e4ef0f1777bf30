package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/nearnet/nearnet/internal/wire"
)

// runVersion prints the build's version: the module version (or "devel"
// for a build from a checkout), the VCS revision when the build recorded
// one, the wire protocol version and the Go version. With --json:
// {"event":"version","version":...,"revision":...,"protocol":1,"go":...}.
func runVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("version")
	fs.uses("json")
	if err := fs.parse(e, args); err != nil {
		return helpOK(err)
	}
	v := struct {
		Event    string `json:"event"`
		Version  string `json:"version"`
		Revision string `json:"revision,omitempty"`
		Modified bool   `json:"modified,omitempty"`
		Protocol int    `json:"protocol"`
		Go       string `json:"go"`
	}{Event: "version", Version: "devel", Protocol: wire.Version, Go: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if m := bi.Main.Version; m != "" && m != "(devel)" {
			v.Version = m
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	out := newPrinter(e.stdout, fs.g.json)
	if fs.g.json {
		b, _ := json.Marshal(v)
		return out.line(string(b))
	}
	s := "nearnet " + v.Version
	if v.Revision != "" {
		s += " (" + v.Revision
		if v.Modified {
			s += ", modified"
		}
		s += ")"
	}
	return out.line(fmt.Sprintf("%s, protocol nearnet.v%d, %s", s, v.Protocol, v.Go))
}
