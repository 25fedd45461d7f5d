package deploytest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/dlicense/dlicense/infra/httpapi"
)

// scopeParameters are the template's parameters that name the scopes the
// handler requires, by the handler's default names.
var scopeParameters = map[string]string{httpapi.AdminScope: "AdminScope", httpapi.StatusScope: "StatusScope"}

// checkScopes: API Gateway requires, on every route, exactly the scopes the
// handler requires (one of them), from the template's parameters whose
// defaults are the handler's names: every admin and licence-status route
// has AuthorizationScopes, no member or public route has any; and the API
// function is told the same parameters.
func checkScopes(d *deployment) []string {
	var problems []string
	for handlerScope, param := range scopeParameters {
		if v := value(get(d.root, "Parameters", param, "Default")); v != handlerScope {
			problems = append(problems, fmt.Sprintf("parameter %s defaults to %q, want %q (the handler's)", param, v, handlerScope))
		}
	}
	for _, r := range d.routes() {
		want, ok := httpapi.RequiredScopes(r.key)
		if !ok {
			continue // checkRoutes reports it
		}
		var got []string
		node := get(r.props, "Auth", "AuthorizationScopes")
		if node != nil {
			if node.Kind != yaml.SequenceNode {
				problems = append(problems, fmt.Sprintf("%s.%s: AuthorizationScopes is not a list", r.function, r.event))
				continue
			}
			for _, s := range node.Content {
				if s.Tag != "!Ref" {
					problems = append(problems, fmt.Sprintf("%s.%s: scope %q is not a !Ref to a scope parameter", r.function, r.event, s.Value))
					continue
				}
				got = append(got, value(get(d.root, "Parameters", s.Value, "Default")))
			}
		}
		slices.Sort(got)
		want = slices.Clone(want)
		slices.Sort(want)
		switch {
		case len(want) == 0 && len(got) > 0:
			problems = append(problems, fmt.Sprintf("%s.%s: %s is a member or public route but requires %v", r.function, r.event, r.key, got))
		case !slices.Equal(got, want):
			problems = append(problems, fmt.Sprintf("%s.%s: %s requires %v at the gateway, want %v (the handler's)", r.function, r.event, r.key, got, want))
		}
	}
	ids, fns := d.resources("AWS::Serverless::Function")
	if i := slices.Index(ids, "ApiFunction"); i >= 0 {
		for env, param := range map[string]string{"ADMIN_SCOPE": "AdminScope", "STATUS_SCOPE": "StatusScope"} {
			if v := d.env(fns[i], env); v == nil || v.Tag != "!Ref" || v.Value != param {
				problems = append(problems, fmt.Sprintf("ApiFunction: %s must be !Ref %s", env, param))
			}
		}
	}
	return problems
}

// TestRoutesRequireTheHandlersScopesAtTheGateway.
func TestRoutesRequireTheHandlersScopesAtTheGateway(t *testing.T) {
	report(t, "scopes", checkScopes(load(t)))
}

// TestTheScopeCheckCatchesARouteWithoutScopes removes the scopes of one
// admin route, gives a member route one, and points the function at
// another parameter: the check fails each time.
func TestTheScopeCheckCatchesARouteWithoutScopes(t *testing.T) {
	template, makefile := readSources(t)
	for _, c := range []struct{ name, old, new string }{
		{"an admin route without scopes", "              ThrottlingRateLimit: !Ref AdminRateLimit\n            Auth:\n              Authorizer: MemberJwt\n              AuthorizationScopes:\n                - !Ref AdminScope\n",
			"              ThrottlingRateLimit: !Ref AdminRateLimit\n"},
		{"licence-status without the status scope", "            Path: /v1/licence-status\n            Auth:\n              Authorizer: MemberJwt\n              AuthorizationScopes:\n                - !Ref StatusScope\n",
			"            Path: /v1/licence-status\n            Auth:\n              Authorizer: MemberJwt\n              AuthorizationScopes:\n"},
		{"a member route requiring the admin scope", "            Path: /v1/views\n", "            Path: /v1/views\n            Auth:\n              AuthorizationScopes:\n                - !Ref AdminScope\n"},
		{"a scope written out", "                - !Ref AdminScope\n", "                - admin\n"},
		{"the function told another scope", "          ADMIN_SCOPE: !Ref AdminScope", "          ADMIN_SCOPE: admin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(template, c.old) {
				t.Fatalf("the template no longer contains %q: update this mutation", c.old)
			}
			d, err := parse(strings.Replace(template, c.old, c.new, 1), makefile)
			if err != nil {
				t.Fatal(err)
			}
			if problems := checkScopes(d); len(problems) == 0 {
				t.Errorf("%s: the check found nothing wrong", c.name)
			} else {
				t.Logf("caught: %s", strings.Join(problems, "; "))
			}
		})
	}
}
