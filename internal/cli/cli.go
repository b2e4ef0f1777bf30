// Package cli implements the nearnet command. [Run] takes the arguments and
// the standard streams as parameters, so tests run every subcommand in
// process; cmd/nearnet only wires it to the process's own.
//
// Each subcommand lives in its own file and is listed in [commands].
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"syscall"

	"github.com/nearnet/nearnet/discovery"
)

// env is what a subcommand gets from Run: the standard streams.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// command is one subcommand: its entry point, a one-line synopsis of its
// own flags, and a one-line summary for the command list.
type command struct {
	run      func(ctx context.Context, e *env, args []string) error
	synopsis string
	summary  string
}

// commands maps each subcommand's name to its implementation. Adding a
// subcommand is one line here plus its file. (It is filled in init because
// the commands' usage texts read it.)
var commands map[string]command

func init() {
	commands = map[string]command{
		"demo":   {runDemo, "", "three peers on loopback find each other, connect and exchange messages"},
		"keygen": {runKeygen, "", "print a new 256-bit pre-shared key for --key-file"},
		"id": {runID, "[--identity PATH] [--known-peers PATH [--forget FINGERPRINT]]",
			"print this node's identity fingerprint (for --trust), and list or forget known peers"},
		"pair": {runPair, "[CODE] --identity PATH --known-peers PATH [--to TARGET]",
			"show a pairing code, or type one shown on another machine; both then trust each other"},
		"listen": {runListen, "[--echo]", "advertise, accept peers and print what they send"},
		"browse": {runBrowse, "[--timeout D]", "print peers as they are found, updated and lost"},
		"chat":   {runChat, "[--to TARGET]... [--wait D] [--datagram] [--group NAME]", "send stdin lines to peers and print what they send"},
		"group": {runGroup, "--group NAME [--to HOST:PORT]...",
			"join a group and print its members joining and leaving, and its messages"},
		"proxy-rank": {runProxyRank, "--target HOST:PORT [--concurrency N] [--timeout D] URL...",
			"rank HTTP CONNECT and SOCKS5 proxies by how fast they connect to a target"},
		"send": {runSend, "FILE... --to TARGET [--wait D]",
			"send files and directories to a peer, with progress; exit 0 once the receiver verified all"},
		"receive": {runReceive, "[--dir DIR] [--yes] [--count N]",
			"advertise, accept peers and save the files they send, with progress"},
		"bench": {runBench, "[--quick]", "measure nearnet against raw TLS 1.3 and raw UDP over loopback, with ratios"},
		"pipe": {runPipe, "(--to TARGET [--wait D] | --listen)",
			"copy stdin to a stream to a peer and the stream to stdout, with half-close"},
		"version": {runVersion, "", "print this build's version and the protocol version it speaks"},
		"doctor": {runDoctor, "[--timeout D]",
			"check each interface: addresses, multicast, mDNS, the peers visible and whether they answer"},
	}
}

// Run runs the nearnet command with args (without the program name).
// Output goes to stdout, diagnostics to stderr; chat reads stdin. Run
// returns when the command is done or ctx is cancelled (listen and browse
// treat cancellation as the normal way to stop and return nil).
//
// The caller prints a non-nil error with [PrintError] and exits with
// [ExitCode]: 2 for a [*UsageError], 1 for anything else.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printUsage(stderr)
		return &UsageError{Msg: "no command given"}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-version", "--version", "-v":
		return Run(ctx, append([]string{"version"}, rest...), stdin, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 {
			if _, ok := commands[rest[0]]; ok {
				// Print the subcommand's own usage, as "nearnet NAME -h" does.
				return Run(ctx, []string{rest[0], "-h"}, stdin, stdout, stderr)
			}
			return &UsageError{Msg: fmt.Sprintf("help: unknown command %q; commands: %s", rest[0], commandList())}
		}
		printUsage(stdout)
		return nil
	}
	cmd, ok := commands[name]
	if !ok {
		printUsage(stderr)
		if strings.HasPrefix(name, "-") {
			return &UsageError{Msg: fmt.Sprintf("flags go after the command name (e.g. nearnet browse %s); commands: %s", name, commandList())}
		}
		return &UsageError{Msg: fmt.Sprintf("unknown command %q; commands: %s", name, commandList())}
	}
	return cmd.run(ctx, e, rest)
}

func commandList() string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func printUsage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(w, "usage: nearnet <command> [flags]\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'nearnet <command> -h' for the command's flags.\n")
}

// UsageError is a mistake in the command line: an unknown command or flag,
// or a flag value out of range. The command exits with status 2 for it.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

// ExitCode returns the process exit status for Run's error: 0 for nil, 2
// for a [*UsageError], 1 otherwise.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		return 2
	}
	return 1
}

// PrintError writes err to w as "nearnet: <error>". Library errors already
// start with "nearnet: "; the prefix is not repeated. Where the error has
// a usual remedy, it follows in the same line.
func PrintError(w io.Writer, err error) {
	msg := strings.TrimPrefix(err.Error(), "nearnet: ")
	msg = strings.ReplaceAll(msg, "quict: ", "") // an internal package's name means nothing to a user
	switch {
	case errors.Is(err, discovery.ErrNoInterfaces):
		msg = "no usable interface to discover peers on: none is up with the MULTICAST flag and an IPv4 or IPv6 address; " +
			"name one with --interface IF (--interface lo to stay on this host)"
	case errors.Is(err, syscall.EADDRINUSE):
		msg += " (another program, or another nearnet, has that port: choose another --port, or leave --port out for any free one)"
	}
	fmt.Fprintf(w, "nearnet: %s\n", msg)
}

// errHelp is returned by parseFlags after printing usage for -h; the
// subcommand then returns nil.
var errHelp = flag.ErrHelp
