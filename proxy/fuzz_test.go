package proxy

import (
	"bytes"
	"io"
	"testing"
)

// FuzzHTTPConnectResponse runs the CONNECT exchange against arbitrary
// answers: it must not panic, must fail with an *Error of a kind a proxy's
// answer can cause and without the password in its text, and on success
// must hand back exactly the bytes that followed the response.
func FuzzHTTPConnectResponse(f *testing.F) {
	for _, s := range []string{
		// tinyproxy 1.11.1's answers, as seen in the tests.
		"HTTP/1.0 200 Connection established\r\nProxy-agent: tinyproxy/1.11.1\r\n\r\nhello from the target\n",
		"HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\nWWW-Authenticate: Basic realm=\"Tinyproxy\"\r\nConnection: close\r\n\r\n<html></html>",
		"HTTP/1.0 407 Proxy Authentication Required\r\nServer: tinyproxy/1.11.1\r\nProxy-Authenticate: Basic realm=\"Tinyproxy\"\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 403 Access violation\r\nServer: tinyproxy/1.11.1\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 500 Unable to connect\r\nServer: tinyproxy/1.11.1\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 101 Switching Protocols\r\n\r\n",
		"\x05\x00",
		"",
	} {
		f.Add([]byte(s))
	}
	d := mustParse(f, proxyURL("http", testPass, "127.0.0.1:3128"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		c, e := d.connectHTTP(&scriptConn{r: bytes.NewReader(answer)}, "peer.example:443")
		if e != nil {
			if c != nil {
				t.Fatal("both a conn and an error")
			}
			switch e.Kind {
			case AuthRequired, AuthFailed, TargetRefused, ProtocolError:
			default:
				t.Fatalf("kind %v: %v", e.Kind, e)
			}
			noSecrets(t, e.Error())
			return
		}
		rest, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(answer, rest) {
			t.Fatalf("tunnel bytes %q are not the end of the answer %q", rest, answer)
		}
		if !bytes.HasPrefix(answer, []byte("HTTP/")) {
			t.Fatalf("success on an answer that is no HTTP response: %q", answer)
		}
	})
}
