package projector

import "strings"

// CompareSeq orders stream sequence numbers, which are decimal strings of
// varying length (DynamoDB Local pads them to 21 digits, DynamoDB does not
// promise a width): by value, without the limits of an int64.
func CompareSeq(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		if len(a) < len(b) {
			return -1
		}
		return 1
	}
	return strings.Compare(a, b)
}
