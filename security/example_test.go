package security_test

import (
	"fmt"

	"github.com/nearnet/nearnet/security"
)

// Fingerprints can be pasted in the colon-separated upper-case form OpenSSL
// prints; they are always written in one canonical form.
func ExampleParseFingerprint() {
	fp, err := security.ParseFingerprint("3B:0C:9A:4F:5E:6D:7C:8B:9A:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:E1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(fp)

	_, err = security.ParseFingerprint("sha256:3b0c9a")
	fmt.Println(err)
	// Output:
	// sha256:3b0c9a4f5e6d7c8b9a0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5ae1
	// invalid fingerprint "sha256:3b0c9a": expected "sha256:" and 64 hex digits (colons between digit pairs allowed), got 6 hex digits
}

func ExampleParseKey() {
	_, err := security.ParseKey("00112233")
	fmt.Println(err)
	// Output:
	// invalid pre-shared key: expected 64 hex digits (256 bits), got 8
}

// A pairing code prints as a placeholder, so it cannot end up in a log by
// accident; Reveal gives the digits to show.
func ExampleParsePairingCode() {
	code, err := security.ParsePairingCode("123 456")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(code)
	fmt.Println(code.Reveal())

	_, err = security.ParsePairingCode("12345")
	fmt.Println(err)
	// Output:
	// [pairing code]
	// 123-456
	// invalid pairing code: expected 6 digits (spaces and hyphens allowed), got 5
}
