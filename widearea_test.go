package nearnet

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nearnet/nearnet/discovery"
)

// TestConfigWideArea: the wide-area fields are checked, and a field that
// another makes pointless is a ConfigError naming it. The key's secret is
// never in the error.
func TestConfigWideArea(t *testing.T) {
	k := testKey
	key := discovery.TSIGKey{Name: "nearnet-update", Algorithm: "hmac-sha256", Secret: []byte("very secret bytes")}
	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Key: k, Domain: "example.test"}, "Config.Domain"},
		{Config{Key: k, DNSServer: "10.0.0.53:53"}, "Config.DNSServer"},
		{Config{Key: k, TSIGKey: key}, "Config.TSIGKey"},
		{Config{Key: k, DNSRefresh: time.Minute}, "Config.DNSRefresh"},
		{Config{Key: k, Domain: "example.test", DNSServer: "10.0.0.53", Hidden: true, TSIGKey: key}, "Config.TSIGKey"},
		{Config{Key: k, Domain: "local.", DNSServer: "10.0.0.53"}, "Config.Domain"},
		{Config{Key: k, Domain: "bad..name", DNSServer: "10.0.0.53"}, "Config.Domain"},
		{Config{Key: k, Domain: "example.test", DNSServer: "a:b:c:"}, "Config.DNSServer"},
		{Config{Key: k, Domain: "example.test", DNSServer: "10.0.0.53", DNSRefresh: time.Millisecond}, "Config.DNSRefresh"},
		{Config{Key: k, Domain: "example.test", DNSServer: "10.0.0.53", TSIGKey: discovery.TSIGKey{Name: "k", Algorithm: "hmac-md5", Secret: []byte("very secret bytes")}}, "Config.TSIGKey"},
		{Config{Key: k, Domain: "example.test", DNSServer: "10.0.0.53", TSIGKey: discovery.TSIGKey{Secret: []byte("very secret bytes")}}, "Config.TSIGKey"},
		{Config{Key: k, OnWideArea: func(error) {}}, "Config.OnWideArea"},
		{Config{Key: k, Domain: "example.test", DNSServer: "10.0.0.53", OnWideArea: func(error) {}}, "Config.OnWideArea"},
	} {
		_, err := NewNode(&tc.cfg)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("NewNode(%+v) = %v, want a ConfigError for %s", tc.cfg, err, tc.field)
		}
		if err != nil && strings.Contains(err.Error(), "very secret") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
	n, err := NewNode(&Config{Key: k, Domain: "example.test", DNSServer: "10.0.0.53", TSIGKey: key, DNSRefresh: 5 * time.Second})
	if err != nil {
		t.Fatalf("a valid wide-area config: %v", err)
	}
	n.Close()
}
