package httpapi

import "net/http"

// publicRoutes need no token: the licence signing keys, for verifiers
// (DRM servers), and the support console's files, which hold no data.
var publicRoutes = []route{
	{"GET /.well-known/jwks.json", openAccess, (*api).jwks},
	{"GET /console", openAccess, (*api).console},
	{"GET /console/{file}", openAccess, (*api).console},
}

// jwks answers the licence signing keys.
func (a *api) jwks(w http.ResponseWriter, r *http.Request, _ Identity) {
	w.Header().Set("Content-Type", "application/jwk-set+json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(a.svc.Signer.JWKS())
}
