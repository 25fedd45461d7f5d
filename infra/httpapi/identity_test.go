package httpapi

import "testing"

// TestHasScope: a scope is granted by name, or under a resource server as
// Cognito writes it, and by nothing else.
func TestHasScope(t *testing.T) {
	for _, c := range []struct {
		scopes []string
		want   bool
	}{
		{[]string{"admin"}, true},
		{[]string{"openid", "dlicense/admin"}, true},
		{[]string{"https://api.example.com/admin"}, true},
		{[]string{"administrator", "admins", "dlicense/admin2", "admin/read"}, false},
		{[]string{"/admin"}, false},
		{nil, false},
	} {
		if got := (Identity{Scopes: c.scopes}).HasScope(AdminScope); got != c.want {
			t.Errorf("HasScope(admin) with %q = %v, want %v", c.scopes, got, c.want)
		}
	}
}
