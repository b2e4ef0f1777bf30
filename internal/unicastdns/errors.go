package unicastdns

import (
	"errors"
	"fmt"

	"github.com/miekg/dns"
)

// ErrPrerequisite is matched (errors.Is) by an [*Error] saying a
// prerequisite of the update did not hold (YXDOMAIN, YXRRSET, NXRRSET):
// the records changed since they were read. It is permanent for this
// update; the caller reads again and decides.
var ErrPrerequisite = errors.New("unicastdns: an update prerequisite does not hold")

// ErrBadKey is matched (errors.Is) by an [*Error] saying the server rejected
// the TSIG key: unknown key name (BADKEY), wrong secret or algorithm
// (BADSIG), or a response whose signature does not verify with our key.
// BADTIME (clocks too far apart) is a separate, also permanent, failure.
var ErrBadKey = errors.New("unicastdns: the DNS server rejected the TSIG key")

// TSIG error codes (RFC 8945 §3) as a server reports them in its response.
const (
	tsigBadSig  = dns.RcodeBadSig // 16
	tsigBadKey  = dns.RcodeBadKey
	tsigBadTime = dns.RcodeBadTime
)

// Error reports a failed query or update.
type Error struct {
	Op        string // "query" or "update"
	Name      string // the name queried, or the zone updated
	Server    string // the server's address
	Rcode     int    // the response's RCODE, or -1 if no usable response came
	TSIGError int    // the TSIG error the server reported (16 BADSIG, 17 BADKEY, 18 BADTIME), or 0
	Err       error  // the underlying error (network, timeout, signature), if any

	permanent bool
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("unicastdns: %s %s at %s", e.Op, e.Name, e.Server)
	switch {
	case e.TSIGError != 0:
		msg += fmt.Sprintf(": %s, TSIG error %s", rcodeName(e.Rcode), rcodeName(e.TSIGError))
		switch e.TSIGError {
		case tsigBadKey:
			msg += ": the server does not know this key name"
		case tsigBadSig:
			msg += ": the key's secret or algorithm does not match the server's"
		case tsigBadTime:
			msg += ": this machine's clock and the server's differ by more than 5 minutes"
		}
	case e.Rcode >= 0:
		msg += ": " + rcodeName(e.Rcode)
		switch e.Rcode {
		case dns.RcodeRefused:
			msg += ": the server does not allow this (is the zone right, and updates allowed with this key?)"
		case dns.RcodeNotAuth:
			msg += ": the server is not authoritative for the zone, or the update is not signed with a key it accepts"
		case dns.RcodeNotZone:
			msg += ": a name is outside the zone"
		case dns.RcodeYXDomain, dns.RcodeNXRrset, dns.RcodeYXRrset:
			msg += ": a prerequisite of the update does not hold (someone else changed the records)"
		}
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches [ErrBadKey] when the server rejected the key, and
// [ErrPrerequisite] when a prerequisite failed.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrBadKey:
		return e.badKey()
	case ErrPrerequisite:
		return e.Op == "update" && e.TSIGError == 0 &&
			(e.Rcode == dns.RcodeYXDomain || e.Rcode == dns.RcodeYXRrset || e.Rcode == dns.RcodeNXRrset)
	}
	return false
}

func (e *Error) badKey() bool {
	return e.TSIGError == tsigBadSig || e.TSIGError == tsigBadKey ||
		errors.Is(e.Err, dns.ErrSig) || errors.Is(e.Err, dns.ErrSecret)
}

// Permanent reports whether trying again cannot help: the server rejected
// the key, refused, or said the request is wrong. Timeouts, network errors
// and SERVFAIL are not permanent.
func (e *Error) Permanent() bool { return e.permanent }

// Timeout reports whether the exchange timed out (net.Error).
func (e *Error) Timeout() bool {
	var t interface{ Timeout() bool }
	return errors.As(e.Err, &t) && t.Timeout()
}

// Temporary is the transient counterpart of Permanent (net.Error).
func (e *Error) Temporary() bool { return !e.permanent }

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// IsPermanent reports whether err (or an error it wraps) is an [*Error]
// that retrying cannot cure.
func IsPermanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Permanent()
}
