package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestGroupChat: chat --group sends its lines to the group; group prints
// the member joining, its messages with their sender in order, and its
// leaving. A member of another group on the same service is not seen.
func TestGroupChat(t *testing.T) {
	t.Parallel()
	svc, key := service(t), keyFile(t)
	common := []string{"--json", "--interface", "lo", "--service", svc, "--key-file", key}
	watcher := start(t, nil, append([]string{"group", "--group", "room", "--name", "watcher"}, common...)...)
	ready := watcher.stdout.waitEvent(t, "ready", isEvent("ready"))
	if ready["group"] != "room" {
		t.Errorf("ready %v", ready)
	}
	other := start(t, nil, append([]string{"group", "--group", "elsewhere", "--name", "other"}, common...)...)
	other.stdout.waitEvent(t, "ready", isEvent("ready"))

	lines := []string{"one", "two", "three"}
	out, stderr, err := run(t, strings.NewReader(strings.Join(lines, "\n")+"\n"),
		append([]string{"chat", "--group", "room", "--name", "talker"}, common...)...)
	if err != nil {
		t.Fatalf("chat --group: %v\nstderr:\n%s", err, stderr)
	}
	talker := out.waitEvent(t, "chat's ready", isEvent("ready"))["peer"].(string)
	joined := watcher.stdout.waitEvent(t, "joined", isEvent("joined"))
	if joined["peer"] != talker || joined["name"] != "talker" {
		t.Errorf("joined %v; want talker %s", joined, talker)
	}
	watcher.stdout.waitEvent(t, "left", isEvent("left"))
	watcher.stdout.waitEvent(t, "the last message", func(e map[string]any) bool { return e["event"] == "message" && e["text"] == "three" })
	var got []string
	for _, e := range watcher.stdout.events(t) {
		if e["event"] == "message" {
			if e["from"] != talker {
				t.Errorf("message %v not from %s", e, talker)
			}
			got = append(got, e["text"].(string))
		}
		if e["event"] == "joined" && e["name"] == "other" {
			t.Errorf("a member of another group joined: %v", e)
		}
	}
	if !slices.Equal(got, lines) {
		t.Errorf("group printed %q, want %q", got, lines)
	}
}
