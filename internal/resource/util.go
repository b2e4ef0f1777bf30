package resource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// bufSize is the size of each of the pipeBuffers buffers a side of a
// transfer moves the content through (see pipe).
const bufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, bufSize); return &b }}

// abortOnDone arranges for ctx's end to unblock I/O on stream: its
// deadline is set in the past if it has one (a net.Conn), otherwise it is
// closed if it can be. stop reports false if that happened.
func abortOnDone(ctx context.Context, stream any) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() {
		if d, ok := stream.(interface{ SetDeadline(time.Time) error }); ok {
			_ = d.SetDeadline(time.Unix(1, 0))
			return
		}
		if c, ok := stream.(io.Closer); ok {
			_ = c.Close()
		}
	})
}

// finish turns err into the context's error if the context ended the
// transfer: by aborting the stream, or seen between two chunks.
func finish(ctx context.Context, stop func() bool, err error) error {
	aborted := !stop()
	if err != nil && (aborted || ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return fmt.Errorf("nearnet: resource transfer stopped: %w", context.Cause(ctx))
	}
	return err
}

func report(p Progress, done, total int64) {
	if p != nil {
		p(done, total)
	}
}
