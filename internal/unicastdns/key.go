package unicastdns

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/miekg/dns"

	"github.com/nearnet/nearnet/internal/nnerr"
)

// Key is a TSIG key: its name (a domain name, as the server's
// configuration spells it), algorithm and shared secret.
//
// The secret is never printed: String and the errors of this package show
// the name and algorithm only.
type Key struct {
	Name      string // e.g. "nearnet-update"; compared case-insensitively
	Algorithm string // "hmac-sha256" (the default when empty), "hmac-sha1", "hmac-sha224", "hmac-sha384" or "hmac-sha512"
	Secret    []byte // the shared secret, raw bytes (base64 in key files)
}

// String returns "name (algorithm)", without the secret.
func (k Key) String() string {
	if k.Name == "" {
		return "no key"
	}
	return fmt.Sprintf("%s (%s)", k.Name, k.algorithm())
}

// IsZero reports whether k is the zero Key (no signing).
func (k Key) IsZero() bool { return k.Name == "" && k.Algorithm == "" && len(k.Secret) == 0 }

// algorithms maps the names a key may carry to miekg/dns's names.
var algorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha224": dns.HmacSHA224,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

func (k Key) algorithm() string {
	if k.Algorithm == "" {
		return "hmac-sha256"
	}
	return strings.TrimSuffix(strings.ToLower(k.Algorithm), ".")
}

// Validate checks the key, naming the field in a *nnerr.ConfigError. The
// zero Key is valid (no signing).
func (k Key) Validate(field string) error {
	if k.IsZero() {
		return nil
	}
	if k.Name == "" {
		return &nnerr.ConfigError{Field: field + ".Name", Value: "", Reason: "a TSIG key needs a name"}
	}
	if _, ok := dns.IsDomainName(k.Name); !ok || strings.Trim(k.Name, ".") == "" {
		return &nnerr.ConfigError{Field: field + ".Name", Value: k.Name, Reason: "must be a domain name"}
	}
	if _, ok := algorithms[k.algorithm()]; !ok {
		return &nnerr.ConfigError{Field: field + ".Algorithm", Value: k.Algorithm,
			Reason: "must be hmac-sha256, hmac-sha1, hmac-sha224, hmac-sha384 or hmac-sha512"}
	}
	if len(k.Secret) == 0 {
		return &nnerr.ConfigError{Field: field + ".Secret", Value: "(empty)", Reason: "a TSIG key needs a secret"}
	}
	return nil
}

// ParseKey parses "name:algorithm:base64secret" (the form of nsupdate -y
// and of the CLI's --tsig flag). The algorithm may be empty
// ("name::secret") for hmac-sha256.
func ParseKey(s string) (Key, error) {
	name, rest, ok1 := strings.Cut(s, ":")
	alg, secret, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		// nsupdate also accepts "name:secret".
		if ok1 && !strings.Contains(rest, ":") {
			alg, secret = "", rest
		} else {
			return Key{}, &nnerr.ConfigError{Field: "TSIG key", Value: redact(s), Reason: "want name:algorithm:base64secret"}
		}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(secret))
	if err != nil {
		return Key{}, &nnerr.ConfigError{Field: "TSIG key secret", Value: "(hidden)", Reason: "not valid base64"}
	}
	k := Key{Name: name, Algorithm: alg, Secret: raw}
	if err := k.Validate("TSIG key"); err != nil {
		return Key{}, err
	}
	return k, nil
}

// redact hides what follows the last colon of s (the secret).
func redact(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i+1] + "(hidden)"
	}
	return "(hidden)"
}

// KeyFileError reports a key file that cannot be parsed: where and why.
type KeyFileError struct {
	Line   int // 1-based; 0 when the error is not about one line
	Reason string
}

func (e *KeyFileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("unicastdns: TSIG key file, line %d: %s", e.Line, e.Reason)
	}
	return "unicastdns: TSIG key file: " + e.Reason
}

// ParseKeyFile parses a key file as BIND's tsig-keygen and ddns-confgen
// write it:
//
//	key "nearnet-update" {
//		algorithm hmac-sha256;
//		secret "base64...";
//	};
//
// Comments (#, //, /* */) are allowed; the file must hold exactly one key.
// A file holding one line "name:algorithm:base64secret" is also accepted.
func ParseKeyFile(data []byte) (Key, error) {
	toks, err := tokenize(data)
	if err != nil {
		return Key{}, err
	}
	if len(toks) == 1 && strings.Count(toks[0].s, ":") >= 1 && !toks[0].quoted {
		k, err := ParseKey(toks[0].s)
		if err != nil {
			return Key{}, &KeyFileError{Line: toks[0].line, Reason: err.Error()}
		}
		return k, nil
	}
	p := &keyParser{toks: toks}
	return p.parse()
}

type token struct {
	s      string
	quoted bool
	line   int
}

// tokenize splits a named.conf-style file into words, quoted strings and
// the punctuation { } ;, dropping comments.
func tokenize(data []byte) ([]token, error) {
	var toks []token
	line := 1
	for i := 0; i < len(data); {
		c := data[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#' || (c == '/' && i+1 < len(data) && data[i+1] == '/'):
			for i < len(data) && data[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(data) && data[i+1] == '*':
			start := line
			i += 2
			for {
				if i+1 >= len(data) {
					return nil, &KeyFileError{Line: start, Reason: "comment not closed"}
				}
				if data[i] == '*' && data[i+1] == '/' {
					i += 2
					break
				}
				if data[i] == '\n' {
					line++
				}
				i++
			}
		case c == '{' || c == '}' || c == ';':
			toks = append(toks, token{s: string(c), line: line})
			i++
		case c == '"':
			start := line
			j := i + 1
			for j < len(data) && data[j] != '"' {
				if data[j] == '\n' {
					line++
				}
				j++
			}
			if j >= len(data) {
				return nil, &KeyFileError{Line: start, Reason: "quoted string not closed"}
			}
			toks = append(toks, token{s: string(data[i+1 : j]), quoted: true, line: start})
			i = j + 1
		default:
			j := i
			for j < len(data) && !strings.ContainsRune(" \t\r\n{};\"#", rune(data[j])) {
				if data[j] == '/' && j+1 < len(data) && (data[j+1] == '/' || data[j+1] == '*') {
					break
				}
				j++
			}
			if j == i { // a lone '/'
				j++
			}
			toks = append(toks, token{s: string(data[i:j]), line: line})
			i = j
		}
		if len(toks) > 64 {
			return nil, &KeyFileError{Line: line, Reason: "too long for a key file"}
		}
	}
	return toks, nil
}

type keyParser struct {
	toks []token
	i    int
}

func (p *keyParser) next(what string) (token, error) {
	if p.i >= len(p.toks) {
		line := 0
		if len(p.toks) > 0 {
			line = p.toks[len(p.toks)-1].line
		}
		return token{}, &KeyFileError{Line: line, Reason: "ends early: want " + what}
	}
	t := p.toks[p.i]
	p.i++
	return t, nil
}

func (p *keyParser) expect(s string) error {
	t, err := p.next(fmt.Sprintf("%q", s))
	if err != nil {
		return err
	}
	if t.quoted || !strings.EqualFold(t.s, s) {
		return &KeyFileError{Line: t.line, Reason: fmt.Sprintf("want %q, got %q", s, t.s)}
	}
	return nil
}

func (p *keyParser) parse() (Key, error) {
	if len(p.toks) == 0 {
		return Key{}, &KeyFileError{Reason: "empty: want key \"name\" { algorithm ...; secret \"...\"; };"}
	}
	if err := p.expect("key"); err != nil {
		return Key{}, err
	}
	name, err := p.next("the key's name")
	if err != nil {
		return Key{}, err
	}
	if err := p.expect("{"); err != nil {
		return Key{}, err
	}
	var k Key
	k.Name = name.s
	var secret string
	var haveAlg, haveSecret bool
	for {
		t, err := p.next(`"algorithm", "secret" or "}"`)
		if err != nil {
			return Key{}, err
		}
		if t.s == "}" && !t.quoted {
			break
		}
		v, err := p.next("a value")
		if err != nil {
			return Key{}, err
		}
		switch strings.ToLower(t.s) {
		case "algorithm":
			if haveAlg {
				return Key{}, &KeyFileError{Line: t.line, Reason: "algorithm given twice"}
			}
			haveAlg, k.Algorithm = true, v.s
		case "secret":
			if haveSecret {
				return Key{}, &KeyFileError{Line: t.line, Reason: "secret given twice"}
			}
			haveSecret, secret = true, v.s
		default:
			return Key{}, &KeyFileError{Line: t.line, Reason: fmt.Sprintf("unknown statement %q", t.s)}
		}
		if err := p.expect(";"); err != nil {
			return Key{}, err
		}
	}
	if err := p.expect(";"); err != nil {
		return Key{}, err
	}
	if p.i != len(p.toks) {
		return Key{}, &KeyFileError{Line: p.toks[p.i].line, Reason: "more than one key, or text after the key"}
	}
	if !haveAlg {
		return Key{}, &KeyFileError{Line: name.line, Reason: "no algorithm"}
	}
	if !haveSecret {
		return Key{}, &KeyFileError{Line: name.line, Reason: "no secret"}
	}
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return Key{}, &KeyFileError{Line: name.line, Reason: "secret is not valid base64"}
	}
	k.Secret = raw
	if err := k.Validate("TSIG key"); err != nil {
		return Key{}, &KeyFileError{Line: name.line, Reason: err.Error()}
	}
	return k, nil
}

// maxKeyFile bounds what LoadKeyFile reads: a key file is a few lines.
const maxKeyFile = 64 << 10

// LoadKeyFile reads a TSIG key file ([ParseKeyFile]'s formats), refusing
// one that is not a regular file or that other users could read (any of
// the mode bits 077 set), as nearnet's other key files are.
func LoadKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, fmt.Errorf("unicastdns: reading TSIG key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("unicastdns: reading TSIG key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("unicastdns: TSIG key file %s is not a regular file", path)
	}
	if fi.Size() > maxKeyFile {
		return Key{}, fmt.Errorf("unicastdns: TSIG key file %s is %d bytes, more than the %d allowed", path, fi.Size(), maxKeyFile)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&fs.FileMode(0o077) != 0 {
		return Key{}, fmt.Errorf("unicastdns: TSIG key file %s has mode %04o, so other users could read it: run chmod 600 %s",
			path, perm, path)
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return Key{}, fmt.Errorf("unicastdns: reading TSIG key file: %w", err)
	}
	k, err := ParseKeyFile(data)
	if err != nil {
		return Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
