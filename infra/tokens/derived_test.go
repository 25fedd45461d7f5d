package tokens

import (
	"bytes"
	"testing"
)

// TestDerivedSecrets: instances with the same signing key derive the same
// secret for a use, another for another use, and another key another.
func TestDerivedSecrets(t *testing.T) {
	k1, _ := GenerateKey("k1")
	k2, _ := GenerateKey("k2")
	a, _ := NewSigner("i", []Key{k1})
	b, _ := NewSigner("i", []Key{k1, k2})
	c, _ := NewSigner("i", []Key{k2, k1})
	if !bytes.Equal(a.DerivedSecret("x"), b.DerivedSecret("x")) {
		t.Error("two signers of the same signing key derive different secrets")
	}
	if bytes.Equal(a.DerivedSecret("x"), a.DerivedSecret("y")) || bytes.Equal(a.DerivedSecret("x"), c.DerivedSecret("x")) {
		t.Error("a secret is the same for another use, or another signing key")
	}
	if bytes.Contains(a.DerivedSecret("x"), k1.Private.Seed()[:8]) {
		t.Error("the derived secret shows the key")
	}
}
