package httpapi_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dlicense/dlicense/infra/httpapi"
)

// concrete fills a route pattern's wildcards with ids.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	return method, regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllStringFunc(path, func(w string) string {
		if w == "{day}" {
			return "2026-11-02"
		}
		return "x1"
	})
}

// TestEveryRouteChecksItsAccessBeforeItRuns: each route of the table, called
// without a token, is refused 401 unless it is public; called with a
// member's token that lacks the scopes it needs, 403 FORBIDDEN naming them;
// the admin routes all need the admin scope, the licence status route the
// licence-status scope or admin, the other routes none.
func TestEveryRouteChecksItsAccessBeforeItRuns(t *testing.T) {
	api := newAPI()
	for _, route := range httpapi.Routes() {
		method, path := concrete(route)
		scopes, ok := httpapi.RequiredScopes(route)
		if !ok {
			t.Errorf("RequiredScopes(%s): not a route", route)
			continue
		}
		switch {
		case strings.Contains(path, "/v1/admin/"):
			if !slices.Equal(scopes, []string{httpapi.AdminScope}) {
				t.Errorf("%s needs %v, want the admin scope", route, scopes)
			}
		case route == "POST /v1/licence-status":
			if !slices.Equal(scopes, []string{httpapi.StatusScope, httpapi.AdminScope}) {
				t.Errorf("%s needs %v, want licence-status or admin", route, scopes)
			}
		case len(scopes) != 0:
			t.Errorf("%s needs %v, want no scope", route, scopes)
		}
		resp, _ := invoke(t, api, method, path, "", "", "{}", nil)
		public := slices.Contains(httpapi.PublicRoutes(), route)
		if public == (resp.StatusCode == 401) {
			t.Errorf("%s %s without a token = %d (public: %v)", method, path, resp.StatusCode, public)
		}
		if len(scopes) == 0 {
			continue
		}
		resp, body := invoke(t, api, method, path, "m1", "premium", "{}", nil)
		detail, _ := body["detail"].(string)
		if resp.StatusCode != 403 || body["code"] != "FORBIDDEN" || !strings.Contains(detail, scopes[0]) {
			t.Errorf("%s %s with a member token = %d %v, want 403 FORBIDDEN naming %v", method, path, resp.StatusCode, body, scopes)
		}
	}
	if _, ok := httpapi.RequiredScopes("GET /v1/nowhere"); ok {
		t.Errorf("RequiredScopes(a route not served) = ok")
	}
}
