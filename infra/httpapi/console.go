package httpapi

import (
	"embed"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/dlicense/dlicense/domain/kernel"
)

// consoleFiles are the support console's static files: one page and its
// script and style, embedded in the API function (no other server, no CDN).
//
//go:embed console
var consoleFiles embed.FS

// ConsoleCSP is the console's content security policy: its own script and
// style only (no inline script, no eval), calls to this API only, no
// framing, no forms.
const ConsoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// console serves the support console: GET /console (the page) and
// GET /console/{file}. The files are public and hold no data; every data
// call the page makes is an admin route, with the admin token the operator
// pastes (kept in the page's memory only).
func (a *api) console(w http.ResponseWriter, r *http.Request, _ Identity) {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	if strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
		writeError(w, r, &kernel.Error{Kind: kernel.KindNotFound, Code: "NOT_FOUND", Message: "no such file"})
		return
	}
	b, err := consoleFiles.ReadFile(path.Join("console", name))
	if err != nil {
		writeError(w, r, &kernel.Error{Kind: kernel.KindNotFound, Code: "NOT_FOUND", Message: "no such file"})
		return
	}
	h := w.Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", ConsoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}
