package local_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/dlicense/dlicense/domain/licensing"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/httpapi"
)

// openAPIFile is the API's description, from the module root.
const openAPIFile = "docs/openapi.yaml"

// contract is docs/openapi.yaml, parsed, and its validator.
type contract struct {
	model     *v3.Document
	validator validator.Validator
}

// loadContract parses the document and builds its validator, once for the
// package: response validation asserts formats (date-time, date) and, in
// strict mode, reports any field or header an answer carries that the
// document does not name, so the document lists every field without
// closing the response schemas to additions (additionalProperties).
var loadContract = sync.OnceValues(func() (*contract, error) {
	root, err := local.ModuleRoot()
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(root, openAPIFile))
	if err != nil {
		return nil, err
	}
	doc, err := libopenapi.NewDocument(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", openAPIFile, err)
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", openAPIFile, err)
	}
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions(), config.WithStrictMode())
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: validator: %v", openAPIFile, errs)
	}
	return &contract{model: &m.Model, validator: v}, nil
})

func openAPI(t *testing.T) *contract {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// documentedRoutes lists the document's operations as "METHOD /path", as
// httpapi.Routes names routes.
func (c *contract) documentedRoutes() []string {
	var out []string
	for path, item := range c.model.Paths.PathItems.FromOldest() {
		for method := range item.GetOperations().FromOldest() {
			out = append(out, strings.ToUpper(method)+" "+path)
		}
	}
	return out
}

// operation is the document's operation of route ("METHOD /path").
func (c *contract) operation(route string) *v3.Operation {
	method, path, _ := strings.Cut(route, " ")
	item := c.model.Paths.PathItems.GetOrZero(path)
	if item == nil {
		return nil
	}
	return item.GetOperations().GetOrZero(strings.ToLower(method))
}

// routeDifferences compares the routes the handler serves with those the
// document describes, both ways, one message per route at fault.
func routeDifferences(served, documented []string) []string {
	var out []string
	for _, r := range served {
		if !slices.Contains(documented, r) {
			out = append(out, fmt.Sprintf("%s is served (httpapi.Routes) but %s does not describe it", r, openAPIFile))
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			out = append(out, fmt.Sprintf("%s is described in %s but not served (httpapi.Routes)", r, openAPIFile))
		}
	}
	return out
}

// wantSecurity is the security a route must declare, as securityOf writes
// it: what the handler's route table requires (httpapi.RequiredScopes):
// none for the public routes, the member JWT with one of the route's
// scopes where it needs one, and the member JWT for the rest.
func wantSecurity(route string) string {
	if slices.Contains(httpapi.PublicRoutes(), route) {
		return "none"
	}
	scopes, _ := httpapi.RequiredScopes(route)
	if len(scopes) == 0 {
		return "memberJwt[]"
	}
	var alts []string
	for _, s := range scopes {
		alts = append(alts, "memberJwt["+s+"]")
	}
	return strings.Join(alts, " or ")
}

// securityOf writes an operation's security requirements (its own, or the
// document's when it declares none): alternatives joined by " or ",
// schemes of one requirement by " and ", "none" for `security: []`.
func (c *contract) securityOf(op *v3.Operation) string {
	reqs := op.Security
	if reqs == nil {
		reqs = c.model.Security
	}
	var alts []string
	for _, r := range reqs {
		var schemes []string
		for name, scopes := range r.Requirements.FromOldest() {
			schemes = append(schemes, name+"["+strings.Join(scopes, ",")+"]")
		}
		if r.ContainsEmptyRequirement || len(schemes) == 0 {
			schemes = append(schemes, "optional")
		}
		alts = append(alts, strings.Join(schemes, " and "))
	}
	if len(alts) == 0 {
		return "none"
	}
	return strings.Join(alts, " or ")
}

func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	c := openAPI(t)
	if c.model.Version != "3.1.0" {
		t.Errorf("%s is OpenAPI %q, want 3.1.0", openAPIFile, c.model.Version)
	}
	if ok, errs := c.validator.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("%s is not a valid OpenAPI document: %s", openAPIFile, describe(e))
		}
	}
	documented := c.documentedRoutes()
	for _, d := range routeDifferences(httpapi.Routes(), documented) {
		t.Error(d)
	}

	t.Run("a served route the document lacks fails", func(t *testing.T) {
		served := append(slices.Clone(httpapi.Routes()), "GET /v1/undocumented/{thing}")
		got := routeDifferences(served, documented)
		want := "GET /v1/undocumented/{thing} is served (httpapi.Routes) but docs/openapi.yaml does not describe it"
		if len(got) != 1 || got[0] != want {
			t.Fatalf("routeDifferences(routes + one) = %q, want [%q]", got, want)
		}
		t.Logf("reported: %s", got[0])
	})
	t.Run("a documented route no longer served fails", func(t *testing.T) {
		got := routeDifferences(httpapi.Routes()[1:], documented)
		want := httpapi.Routes()[0] + " is described in docs/openapi.yaml but not served (httpapi.Routes)"
		if len(got) != 1 || got[0] != want {
			t.Fatalf("routeDifferences(routes less one) = %q, want [%q]", got, want)
		}
	})

	if s := c.model.Components.SecuritySchemes.GetOrZero("memberJwt"); s == nil {
		t.Errorf("%s has no security scheme memberJwt", openAPIFile)
	} else if s.Type != "http" || s.Scheme != "bearer" || s.BearerFormat != "JWT" {
		t.Errorf("security scheme memberJwt: type %q, scheme %q, bearerFormat %q; want an http bearer JWT", s.Type, s.Scheme, s.BearerFormat)
	}
	for _, route := range httpapi.Routes() {
		op := c.operation(route)
		if op == nil {
			continue // reported above
		}
		if got, want := c.securityOf(op), wantSecurity(route); got != want {
			t.Errorf("%s: security %s, want %s", route, got, want)
		}
		if op.OperationId == "" || op.Summary == "" {
			t.Errorf("%s: operationId %q, summary %q: want both", route, op.OperationId, op.Summary)
		}
	}
}

// TestOpenAPIProblemCodesAreTheCatalogue: the document's problem codes are
// httpapi.Codes: every code a problem answers with, each status's response
// naming exactly the codes of that status, and the rule codes of a denial.
func TestOpenAPIProblemCodesAreTheCatalogue(t *testing.T) {
	c := openAPI(t)
	answers, rules, byStatus := map[string]bool{}, map[string]bool{}, map[int]map[string]bool{}
	for _, ci := range httpapi.Codes {
		if ci.Status == 0 {
			rules[ci.Code] = true
			continue
		}
		answers[ci.Code] = true
		if byStatus[ci.Status] == nil {
			byStatus[ci.Status] = map[string]bool{}
		}
		byStatus[ci.Status][ci.Code] = true
	}
	for name, want := range map[string]map[string]bool{"Problem": answers, "RuleFailure": rules} {
		s := c.model.Components.Schemas.GetOrZero(name)
		if s == nil {
			t.Errorf("%s has no schema %s", openAPIFile, name)
			continue
		}
		compare(t, name+".code", enumOf(property(s.Schema(), "code")), want)
	}

	described := map[int]bool{}
	for name, resp := range c.model.Components.Responses.FromOldest() {
		mt := resp.Content.GetOrZero("application/problem+json")
		if mt == nil || mt.Schema == nil {
			continue
		}
		// allOf: the Problem schema and what this status narrows it to.
		status, codes := 0, map[string]bool(nil)
		for _, part := range mt.Schema.Schema().AllOf {
			if part.IsReference() {
				continue
			}
			s := part.Schema()
			if p := property(s, "status"); p != nil && p.Const != nil {
				status, _ = strconv.Atoi(p.Const.Value)
			}
			codes = enumOf(property(s, "code"))
		}
		if status == 0 {
			t.Errorf("response %s: its problem schema sets no status", name)
			continue
		}
		described[status] = true
		compare(t, fmt.Sprintf("response %s (%d) code", name, status), codes, byStatus[status])
	}
	for status := range byStatus {
		if !described[status] {
			t.Errorf("no response in components.responses describes the %d problems", status)
		}
	}
}

func property(s *base.Schema, name string) *base.Schema {
	if s == nil || s.Properties == nil {
		return nil
	}
	if p := s.Properties.GetOrZero(name); p != nil {
		return p.Schema()
	}
	return nil
}

func enumOf(s *base.Schema) map[string]bool {
	out := map[string]bool{}
	if s != nil {
		for _, n := range s.Enum {
			out[n.Value] = true
		}
	}
	return out
}

// compare reports the codes in one set and not the other.
func compare(t *testing.T, what string, documented, catalogued map[string]bool) {
	t.Helper()
	for _, code := range slices.Sorted(maps.Keys(catalogued)) {
		if !documented[code] {
			t.Errorf("%s: %s is in httpapi.Codes but not in %s", what, code, openAPIFile)
		}
	}
	for _, code := range slices.Sorted(maps.Keys(documented)) {
		if !catalogued[code] {
			t.Errorf("%s: %s is in %s but not in httpapi.Codes (with that status)", what, code, openAPIFile)
		}
	}
}

// TestEveryRouteAnswersAsDocumented calls every route once as a client that
// gets what it asks for, so that each route's success answer is validated
// against docs/openapi.yaml (by the env, as every e2e answer is), including
// the routes the other end-to-end tests only reach with errors or not at all.
// These requests are valid, so they are validated too: the document takes
// what a client sends (parameters, bodies, headers).
func TestEveryRouteAnswersAsDocumented(t *testing.T) {
	c := openAPI(t)
	e := start(t, "memory")
	member, admin := e.token(t, "dora-doc", "premium"), e.adminToken(t)
	verifier, err := e.issuer.Mint("drm-doc", "basic", []string{httpapi.StatusScope}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	day := now.Format(time.DateOnly)
	called := map[string]bool{}
	call := func(method, path, token, body string, want int, headers ...string) map[string]any {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		if ok, errs := c.validator.ValidateHttpRequest(req); !ok {
			for _, ve := range errs {
				t.Errorf("%s %s: the request disagrees with %s: %s", method, path, openAPIFile, describe(ve))
			}
		}
		called[routeOf(req)] = true
		status, _, doc := e.call(t, method, path, token, body, headers...)
		if status != want {
			t.Fatalf("%s %s = %d %v, want %d", method, path, status, doc, want)
		}
		return doc
	}

	doc := call("POST", "/v1/devices/phone/licences", member, `{"title_id":"tt-first-light"}`, 201, "Idempotency-Key", "doc-acquire")
	licence, _ := doc["licence"].(map[string]any)["licence_id"].(string)
	token, _ := doc["token"].(string)
	call("GET", "/v1/devices/phone/licences?held="+licence+",gone-1", member, "", 200)
	call("POST", "/v1/devices/phone/licences/"+licence+"/renew", member, "", 200, "Idempotency-Key", "doc-renew")
	call("POST", "/v1/devices/phone/playback", member, fmt.Sprintf(`{"events":[{"id":"d1","licence_id":%q,"kind":"START","position_ms":0,"device_time":%q}]}`,
		licence, now.Format(time.RFC3339)), 200, "Idempotency-Key", "doc-playback")
	call("GET", "/v1/devices/phone/titles/tt-paper-moons/eligibility", member, "", 200)
	call("GET", "/v1/devices/tablet/titles/tt-meridian-two/eligibility", member, "", 200) // not eligible, with the rules
	call("GET", "/.well-known/jwks.json", "", "", 200)
	call("GET", "/v1/admin/titles/tt-first-light/counts", admin, "", 200)
	call("GET", "/v1/admin/studios/open-reel/days/"+day+"/counts", admin, "", 200)
	call("GET", "/v1/admin/members/dora-doc/timeline?at="+now.Format(time.RFC3339), admin, "", 200)
	call("POST", "/v1/admin/members/dora-doc/what-if", admin, string(licensing.DefaultPolicyJSON()), 200)
	call("GET", "/v1/admin/members/dora-doc/events?after=1&limit=2", admin, "", 200)
	call("GET", "/v1/admin/policy", admin, "", 200)
	call("GET", "/v1/admin/audit?limit=5", admin, "", 200)
	call("GET", "/console", "", "", 200)
	call("GET", "/console/console.js", "", "", 200)

	doc = call("POST", "/v1/devices/tv/views", member, `{"title_id":"tt-first-light","profile_id":"kids"}`, 201, "Idempotency-Key", "doc-view")
	view := viewID(doc)
	call("POST", "/v1/devices/tv/views/"+view+"/heartbeat", member, `{"position_ms":60000,"state":"paused","seq":1}`, 200)
	call("GET", "/v1/views", member, "", 200)
	call("POST", "/v1/devices/tv/views/"+view+"/stop", member, `{"position_ms":61000}`, 200)
	doc = call("POST", "/v1/devices/phone/views", member, `{"title_id":"tt-paper-moons"}`, 201)
	call("DELETE", "/v1/views/"+viewID(doc), member, "", 200)
	call("GET", "/v1/titles/tt-first-light/resume?profile=kids", member, "", 200)
	call("GET", "/v1/history?limit=1", member, "", 200)
	call("GET", "/v1/admin/members/dora-doc/history?limit=1", admin, "", 200)
	call("GET", "/v1/recently-watched?profile=kids", member, "", 200)
	call("DELETE", "/v1/recently-watched/tt-first-light?profile=kids", member, "", 200)
	call("GET", "/v1/admin/members/dora-doc/recently-watched?profile=kids", admin, "", 200)
	call("GET", "/v1/admin/titles/tt-first-light/days/"+day+"/engagement", admin, "", 200)
	call("GET", "/v1/admin/days/"+day+"/most-watched?limit=3", admin, "", 200)

	call("POST", "/v1/licence-status", verifier, fmt.Sprintf(`{"tokens":[%q,"not-a-token"]}`, token), 200)
	call("POST", "/v1/admin/titles/tt-breakwater/withdrawal", admin, `{"from":"2099-01-01T00:00:00Z"}`, 202)
	call("GET", "/v1/admin/titles/tt-breakwater/withdrawal", admin, "", 200)
	call("POST", "/v1/admin/studios/meridian/withdrawal", admin, "", 202)
	call("DELETE", "/v1/devices/phone/licences/"+licence, member, "", 200, "Idempotency-Key", "doc-release")
	call("POST", "/v1/devices/laptop/licences", member, `{"title_id":"tt-low-tide"}`, 201)
	call("DELETE", "/v1/devices/laptop/licences", member, "", 200, "Idempotency-Key", "doc-release-device")
	call("POST", "/v1/devices/tablet/licences", member, `{"title_id":"tt-lighthouse"}`, 201)
	call("DELETE", "/v1/admin/members/dora-doc/licences", admin, "", 200, "Idempotency-Key", "doc-close")
	call("DELETE", "/v1/history", member, "", 202)
	call("DELETE", "/v1/admin/members/someone-else/viewing", admin, "", 202)
	doc = call("POST", "/v1/admin/jobs", admin, `{"kind":"recount","segments":2}`, 202)
	call("GET", "/v1/admin/jobs/"+doc["job_id"].(string), admin, "", 200)

	for _, r := range httpapi.Routes() {
		if !called[r] {
			t.Errorf("%s: not called here; add a call so that its answer is checked against %s", r, openAPIFile)
		}
	}
}

// exchange is one request the e2e server answered, and its answer.
type exchange struct {
	req    *http.Request // without its body: the validator reads the method and path
	route  string        // the httpapi route it matched; "" for none
	status int
	header http.Header
	body   []byte
}

// exchanges keeps every answer of one e2e server.
type exchanges struct {
	mu   sync.Mutex
	list []exchange
}

// routes matches a request to the route of httpapi.Routes() that serves it,
// as the handler's mux does.
var routes = sync.OnceValue(func() *http.ServeMux {
	mux := http.NewServeMux()
	for _, r := range httpapi.Routes() {
		mux.HandleFunc(r, func(http.ResponseWriter, *http.Request) {})
	}
	return mux
})

func routeOf(r *http.Request) string {
	_, pattern := routes().Handler(r)
	if slices.Contains(httpapi.Routes(), pattern) {
		return pattern
	}
	return ""
}

// checkedAgainstOpenAPI wraps an e2e server's handler: it keeps every
// answer (the body buffered) and, when the test ends, validates each one
// against docs/openapi.yaml, failing the test with the method, path, status
// and the validator's messages of each that disagrees. Answers to paths of
// no route (404 NOT_FOUND, 405) have no operation to check and are counted
// apart.
func checkedAgainstOpenAPI(t *testing.T, next http.Handler) http.Handler {
	t.Helper()
	x := &exchanges{}
	t.Cleanup(func() { x.validate(t) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		res := rec.Result()
		for k, vs := range res.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(res.StatusCode)
		w.Write(rec.Body.Bytes())

		req := r.Clone(context.Background())
		req.Body, req.ContentLength = http.NoBody, 0
		x.mu.Lock()
		defer x.mu.Unlock()
		x.list = append(x.list, exchange{req: req, route: routeOf(req), status: res.StatusCode, header: res.Header.Clone(), body: bytes.Clone(rec.Body.Bytes())})
	})
}

// validate checks every answer kept; identical failures of a route are
// reported once, with how many answers had them.
func (x *exchanges) validate(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Errorf("validate the answers: %v", err)
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	type failure struct {
		first string
		n     int
	}
	failures := map[string]*failure{}
	var order []string
	validated, outside, began := 0, 0, time.Now()
	for _, e := range x.list {
		if e.route == "" {
			outside++
			continue
		}
		validated++
		res := &http.Response{StatusCode: e.status, Header: e.header, Body: io.NopCloser(bytes.NewReader(e.body)), Request: e.req}
		ok, errs := c.validator.ValidateHttpResponse(e.req, res)
		if ok {
			continue
		}
		var msgs, heads []string
		for _, ve := range errs {
			msgs, heads = append(msgs, describe(ve)), append(heads, ve.Message)
		}
		// The reasons may list a schema's properties in any order: failures
		// are told apart by their messages alone.
		key := fmt.Sprintf("%s → %d: %s", e.route, e.status, strings.Join(heads, "; "))
		if f := failures[key]; f != nil {
			f.n++
			continue
		}
		failures[key] = &failure{first: fmt.Sprintf("%s %s → %d (route %s) disagrees with %s: %s\n\tbody: %s",
			e.req.Method, e.req.URL.RequestURI(), e.status, e.route, openAPIFile, strings.Join(msgs, "; "), clip(e.body)), n: 1}
		order = append(order, key)
	}
	for _, key := range order {
		f := failures[key]
		if f.n > 1 {
			t.Errorf("%s\n\t(and %d more answers of the route like it)", f.first, f.n-1)
		} else {
			t.Error(f.first)
		}
	}
	t.Logf("%s: %d answers validated in %v, %d to paths of no route not checked", openAPIFile, validated, time.Since(began).Round(time.Millisecond), outside)
}

// describe is a validation error in one line: its message, reason and
// each schema failure with where it is.
func describe(e *verrors.ValidationError) string {
	s := e.Message
	if e.Reason != "" && e.Reason != e.Message {
		s += ": " + e.Reason
	}
	for _, f := range e.SchemaValidationErrors {
		where := f.FieldPath
		if where == "" {
			where = "/" + strings.Join(f.InstancePath, "/")
		}
		s += fmt.Sprintf(" [%s: %s]", where, f.Reason)
	}
	return s
}

func clip(b []byte) string {
	const max = 400
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
