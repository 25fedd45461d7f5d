// Package kernel is what the licensing and viewing domains share, and
// neither owns: errors with a closed set of kinds and stable codes, the
// clock and id source every service is given, the validation of ids and
// idempotency keys, the back-off between retries of a lost race, and the
// pseudonym that names a member in logs. Like the rest of domain/, it uses
// only the standard library and reads no clock of its own.
package kernel

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Clock tells the time; services are given one, so that every rule test
// can set it.
type Clock interface{ Now() time.Time }

// IDSource makes new ids (licences, views, requests).
type IDSource interface{ NewID() string }

// ValidID reports whether s is usable as a member, device, title, studio,
// plan, profile, view or licence id: 1 to 64 characters of ASCII letters,
// digits and . _ : -, starting with a letter or digit.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == ':' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// ValidKey reports whether an idempotency key is usable: 1 to 128 printable
// ASCII characters.
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// Pseudonym is how logs and metrics name a member: the first 16 hex digits
// of the SHA-256 of the id, never the id itself ("" for "").
func Pseudonym(member string) string {
	if member == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(member))
	return hex.EncodeToString(sum[:8])
}
