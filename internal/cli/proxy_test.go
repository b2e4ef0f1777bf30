package cli

import (
	"errors"
	"strings"
	"testing"

	"github.com/nearnet/nearnet/internal/proxytest"
)

// The test proxies' credentials; no output may show the password.
const (
	proxyUser = proxytest.User
	proxyPass = proxytest.Password
)

// TestProxyUsageErrors: a bad --proxy is a usage error that names the flag
// and never shows the password; so are proxy-rank's own mistakes.
func TestProxyUsageErrors(t *testing.T) {
	t.Parallel()
	bad := "http://" + proxyUser + ":" + proxyPass + "@127.0.0.1:bad"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"chat", "--insecure", "--to", "127.0.0.1:1", "--proxy", bad}, "invalid --proxy"},
		{[]string{"listen", "--insecure", "--proxy", "ftp://u:" + proxyPass + "@h:1"}, "invalid --proxy"},
		{[]string{"chat", "--insecure", "--to", "127.0.0.1:1", "--proxy", "u:" + proxyPass + "@h:1"}, "invalid --proxy"},
		{[]string{"chat", "--insecure", "--proxy", "http://h:1", "--proxy-env"}, "--proxy and --proxy-env"},
		{[]string{"proxy-rank", "http://h:1"}, "--target HOST:PORT is required"},
		{[]string{"proxy-rank", "--target", "h:1"}, "no proxy URL given"},
		{[]string{"proxy-rank", "--target", "h", "http://h:1"}, `invalid --target "h"`},
		{[]string{"proxy-rank", "--target", "h:1", "--concurrency", "0", "http://h:1"}, "invalid --concurrency 0"},
		{[]string{"proxy-rank", "--target", "h:1", "--timeout", "0s", "http://h:1"}, "invalid --timeout 0"},
	} {
		out, stderr, err := run(t, nil, tc.args...)
		var ue *UsageError
		if err == nil || !errors.As(err, &ue) || ExitCode(err) != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nearnet %s: error %v (exit %d); want a usage error containing %q",
				strings.Join(tc.args, " "), err, ExitCode(err), tc.want)
			continue
		}
		for _, s := range []string{err.Error(), out.String(), stderr.String()} {
			if strings.Contains(s, proxyPass) {
				t.Errorf("nearnet %s: output or error %q shows the password", strings.Join(tc.args, " "), s)
			}
		}
	}
}

func TestProxyHelp(t *testing.T) {
	t.Parallel()
	out, _, err := run(t, nil, "chat", "-h")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--proxy URL", "--proxy-env", "discovery does not cross proxies", "chat --to host:port"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("chat -h lacks %q:\n%s", want, out)
		}
	}
	out, _, err = run(t, nil, "help")
	if err != nil || !strings.Contains(out.String(), "proxy-rank") {
		t.Errorf("help = %q, %v; want proxy-rank listed", out, err)
	}
}
