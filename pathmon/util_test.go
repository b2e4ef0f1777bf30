package pathmon

import (
	"io"
	"log/slog"
	"runtime"
)

// nativeMode is what a monitor uses without ForcePoll on this system.
var nativeMode = map[bool]string{true: "netlink", false: "poll"}[runtime.GOOS == "linux"]

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
