package httpapi

import (
	"errors"
	"net/http"

	"github.com/dlicense/dlicense/domain/kernel"
	"github.com/dlicense/dlicense/domain/licensing"
)

// MaxStatusTokens is how many licence tokens one status request may ask about.
const MaxStatusTokens = 100

// Statuses of the licence status route: a licence's status (ACTIVE,
// EXPIRED, RELEASED), or one of these.
const (
	StatusInvalidToken = "INVALID_TOKEN" // not a token this service signed, or past its exp
	StatusUnknown      = "UNKNOWN"       // the member holds no such licence (any more)
)

// statusRoutes are the licences a verifier (a DRM server) asks about.
var statusRoutes = []route{{"POST /v1/licence-status", verifierAccess, (*api).licenceStatus}}

// licenceStatus answers, for a verifier holding licence tokens (a DRM
// server asked to play them), whether each licence still holds: read
// strongly consistent from the member's log, so a licence released a
// moment ago is refused. Each token is answered on its own: one whose
// member's log cannot be read is answered from its token (signature and
// expiry checked), marked degraded, so that playback goes on, and the
// others are checked (once the store is found out, the rest within the
// budget are answered from their tokens too). It needs the licence-status
// scope.
func (a *api) licenceStatus(w http.ResponseWriter, r *http.Request, _ Identity) {
	if !a.configured(w, r, a.svc.VerifyLicence != nil, "licence status") {
		return
	}
	var body struct {
		Tokens []string `json:"tokens"`
	}
	if err := decode(w, r, &body); err != nil {
		writeError(w, r, err)
		return
	}
	if len(body.Tokens) == 0 || len(body.Tokens) > MaxStatusTokens {
		writeError(w, r, kernel.Invalid("tokens", "tokens must list 1 to 100 licence tokens"))
		return
	}
	type result struct {
		Licence string `json:"licence_id,omitempty"`
		Status  string `json:"status"`
		// Valid is whether the licence may be played now.
		Valid   bool                     `json:"valid"`
		Details *licensing.LicenceStatus `json:"licence,omitempty"`
		// Degraded marks an answer from the token alone: the member's log
		// could not be read in time, so a release or revocation since the
		// token was signed is not seen.
		Degraded bool `json:"degraded,omitempty"`
	}
	results := make([]result, len(body.Tokens))
	var unreadable error // once the store failed, the rest answer from their tokens
	for i, tok := range body.Tokens {
		member, claimed, err := a.svc.VerifyLicence(tok)
		if err != nil {
			results[i] = result{Status: StatusInvalidToken}
			continue
		}
		var v licensing.LicenceStatus
		if err = unreadable; err == nil {
			v, err = a.svc.Licensing.Status(r.Context(), member, claimed.ID)
		}
		var le *kernel.Error
		switch {
		case degradable(err):
			unreadable = err
			results[i] = result{Licence: claimed.ID, Status: string(claimed.Status), Valid: claimed.Status == licensing.StatusActive, Details: &claimed, Degraded: true}
		case errors.As(err, &le) && le.Kind == kernel.KindNotFound:
			results[i] = result{Licence: claimed.ID, Status: StatusUnknown}
		case err != nil:
			// This member's log alone could not be read (the others may
			// be): this token is answered from its claims, marked, and
			// the rest are checked.
			a.opts.Logger.ErrorContext(r.Context(), "licence status answered from the token", "member", MemberHash(member), "error", err)
			results[i] = result{Licence: claimed.ID, Status: string(claimed.Status), Valid: claimed.Status == licensing.StatusActive, Details: &claimed, Degraded: true}
		default:
			results[i] = result{Licence: claimed.ID, Status: string(v.Status), Valid: v.Status == licensing.StatusActive, Details: &v}
		}
	}
	if unreadable != nil {
		degrade(r, unreadable)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": results})
}
