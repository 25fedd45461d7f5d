package httpapi

import "net/http"

// publicRoutes need no token: the licence signing keys, for verifiers
// (DRM servers), and the support console's files, which hold no data.
func (a *api) publicRoutes() []route {
	return []route{
		{"GET /.well-known/jwks.json", openAccess, a.jwks},
		{"GET /console", openAccess, a.console},
		{"GET /console/{file}", openAccess, a.console},
	}
}

// jwks answers the licence signing keys.
func (a *api) jwks(w http.ResponseWriter, r *http.Request, _ Identity) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(a.svc.Signer.JWKS())
}
