package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"github.com/akrylysov/algnhsa"

	"github.com/dlicense/dlicense/domain/kernel"
)

// Identity is who is calling, as the verified JWT says.
type Identity struct {
	Member string
	Plan   string
	Scopes []string
	// Client is the app client the token was issued to (client_id).
	Client string
}

// HasScope reports whether the token granted scope s, compared exactly:
// another resource server's scope of the same last part
// ("reporting-api/admin") grants nothing.
func (id Identity) HasScope(s string) bool {
	return s != "" && slices.Contains(id.Scopes, s)
}

// identity reads the caller from the claims API Gateway's JWT authorizer put
// in the request context: never from a header or body the client controls.
// Locally the dev server verifies the token and builds the same context.
func identity(r *http.Request, planClaim string) (Identity, error) {
	ev, ok := algnhsa.APIGatewayV2RequestFromContext(r.Context())
	if !ok || ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.JWT == nil {
		return Identity{}, kernel.Errorf(kernel.KindUnauthorized, "UNAUTHORIZED", "a valid bearer token is required")
	}
	jwt := ev.RequestContext.Authorizer.JWT
	id := Identity{Member: jwt.Claims["sub"], Plan: jwt.Claims[planClaim], Scopes: jwt.Scopes, Client: jwt.Claims["client_id"]}
	if len(id.Scopes) == 0 {
		id.Scopes = strings.Fields(jwt.Claims["scope"])
	}
	if !kernel.ValidID(id.Member) {
		return Identity{}, kernel.Errorf(kernel.KindUnauthorized, "UNAUTHORIZED", "the token names no usable member")
	}
	return id, nil
}

// allowed checks id holds one of scopes, if any: 403 FORBIDDEN naming
// them if not.
func allowed(id Identity, scopes []string) error {
	if len(scopes) == 0 {
		return nil
	}
	for _, s := range scopes {
		if id.HasScope(s) {
			return nil
		}
	}
	return kernel.Errorf(kernel.KindForbidden, "FORBIDDEN", "this route needs the %s scope", strings.Join(scopes, " or the "))
}
