package httpapi

import (
	"errors"
	"testing"

	"github.com/dlicense/dlicense/domain/kernel"
)

// TestScopesAreComparedExactly: the admin and the licence-status rights
// come only from the configured scope names, compared exactly; another
// resource server's scope of the same last part, a bare name, a prefix or
// a case variant grant nothing.
func TestScopesAreComparedExactly(t *testing.T) {
	for _, c := range []struct {
		scopes        []string
		admin, status string // configured (the defaults if empty)
		adminOK       bool
		statusOK      bool
	}{
		{[]string{"dlicense/admin"}, "", "", true, true},
		{[]string{"openid", "dlicense/licence-status"}, "", "", false, true},
		{[]string{"admin"}, "", "", false, false},
		{[]string{"reporting-api/admin"}, "", "", false, false},
		{[]string{"https://other.example/admin"}, "", "", false, false},
		{[]string{"licence-status", "other/licence-status"}, "", "", false, false},
		{[]string{"dlicense/admin2", "dlicense/admins", "dlicense/admin/read", "DLICENSE/ADMIN", " dlicense/admin"}, "", "", false, false},
		{[]string{"dlicense/licences"}, "", "", false, false},
		{nil, "", "", false, false},
		// Configured names: only those.
		{[]string{"ops-api/operator"}, "ops-api/operator", "ops-api/drm", true, true},
		{[]string{"dlicense/admin"}, "ops-api/operator", "ops-api/drm", false, false},
		{[]string{"ops-api/drm"}, "ops-api/operator", "ops-api/drm", false, true},
	} {
		admin, status := c.admin, c.status
		if admin == "" {
			admin, status = AdminScope, StatusScope
		}
		id := Identity{Member: "ops-1", Scopes: c.scopes}
		for _, x := range []struct {
			what string
			ac   access
			want bool
		}{{"admin", adminAccess, c.adminOK}, {"licence-status", verifierAccess, c.statusOK}, {"member", memberAccess, true}} {
			err := allowed(id, x.ac.scopes(admin, status))
			var ke *kernel.Error
			if got := err == nil; got != x.want || err != nil && (!errors.As(err, &ke) || ke.Code != "FORBIDDEN") {
				t.Errorf("scopes %q (configured %q, %q): %s route allowed = %v (%v), want %v", c.scopes, admin, status, x.what, got, err, x.want)
			}
		}
	}
}
