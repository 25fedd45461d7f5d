// Package local runs the licensing API on a laptop the way API Gateway runs
// it in AWS: it verifies the member's bearer token with a dev identity
// provider, builds the API Gateway v2 event with the token's claims, and
// invokes the same Lambda handler through the same JSON path.
package local

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/akrylysov/algnhsa"
	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/ops/awsenv"
	"github.com/dlicense/dlicense/infra/setup"
	"github.com/dlicense/dlicense/infra/tokens"
)

// Dev identity provider settings: the issuer and audience of dev tokens.
const (
	DevIssuer   = "https://dlicense.local/dev-issuer"
	DevAudience = "dlicense-api"
)

// maxEvent is API Gateway's payload limit for a request.
const maxEvent = 10 << 20

// maxHeaders is API Gateway's limit on a request's line and header values
// together (HTTP APIs: 10,240 bytes, not adjustable).
const maxHeaders = 10240

// Gateway stands in for API Gateway: JWT authorizer, event mapping, and the
// Lambda invocation.
type Gateway struct {
	Issuer *devidp.DevIssuer
	// AdminScope and StatusScope are the scope names the template's routes
	// require (its parameters; httpapi's defaults unless set).
	AdminScope, StatusScope string
	// public matches the routes ("METHOD /path", with the mux's wildcards)
	// that need no token; routes every route.
	public, routes *http.ServeMux
	lambda         lambda.Handler
	now            func() time.Time
	throttle       *throttle
}

// NewGateway wraps an API handler as the Lambda runtime would run it.
func NewGateway(api http.Handler, issuer *devidp.DevIssuer, public []string) *Gateway {
	g := &Gateway{Issuer: issuer, public: http.NewServeMux(), routes: http.NewServeMux(), now: time.Now,
		AdminScope: httpapi.AdminScope, StatusScope: httpapi.StatusScope,
		lambda: algnhsa.New(api, &algnhsa.Options{RequestType: algnhsa.RequestTypeAPIGatewayV2})}
	for _, r := range public {
		g.public.HandleFunc(r, func(http.ResponseWriter, *http.Request) {})
	}
	for _, r := range httpapi.Routes() {
		g.routes.HandleFunc(r, func(http.ResponseWriter, *http.Request) {})
	}
	return g
}

// requiredScopes are the scopes of which the route r matches needs one at
// the gateway (the template's AuthorizationScopes), under g's names.
func (g *Gateway) requiredScopes(r *http.Request) []string {
	_, pattern := g.routes.Handler(r)
	need, _ := httpapi.RequiredScopes(pattern)
	for i, s := range need {
		switch s {
		case httpapi.AdminScope:
			need[i] = g.AdminScope
		case httpapi.StatusScope:
			need[i] = g.StatusScope
		}
	}
	return need
}

// headerBytes is the size API Gateway counts against maxHeaders: the
// request line and every header value.
func headerBytes(r *http.Request) int {
	n := len(r.Method) + 1 + len(r.URL.RequestURI()) + 1 + len(r.Proto)
	for _, vs := range r.Header {
		for _, v := range vs {
			n += len(v)
		}
	}
	return n
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/" || r.URL.Path == "/console/") {
		// Where a newcomer's browser lands: the support console.
		http.Redirect(w, r, "/console", http.StatusFound)
		return
	}
	if g.throttled(r) {
		gatewayError(w, http.StatusTooManyRequests, "Too Many Requests")
		return
	}
	if headerBytes(r) > maxHeaders {
		gatewayError(w, http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEvent))
	if err != nil {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: "$default", RawPath: r.URL.EscapedPath(), RawQueryString: r.URL.RawQuery,
		Headers: map[string]string{}, QueryStringParameters: map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID: "000000000000", APIID: "local", DomainName: r.Host, Stage: "$default",
			RequestID: fmt.Sprintf("local-%d", g.now().UnixNano()), Time: g.now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch: g.now().UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: r.Method, Path: r.URL.Path, Protocol: r.Proto, SourceIP: strings.Split(r.RemoteAddr, ":")[0], UserAgent: r.UserAgent(),
			},
		},
	}
	for k, v := range r.Header {
		ev.Headers[strings.ToLower(k)] = strings.Join(v, ",")
	}
	for k, v := range r.URL.Query() {
		ev.QueryStringParameters[k] = strings.Join(v, ",")
	}
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body, ev.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	}
	if _, pattern := g.public.Handler(r); pattern == "" {
		// As API Gateway's JWT authorizer: no valid token, no invocation.
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			gatewayError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		claims, err := g.Issuer.Verify(strings.TrimSpace(tok), g.now())
		if err != nil {
			gatewayError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		// As the route's AuthorizationScopes: one of them, or no invocation.
		if need := g.requiredScopes(r); len(need) > 0 && !slices.ContainsFunc(need, func(s string) bool { return slices.Contains(claims.Scopes, s) }) {
			gatewayError(w, http.StatusForbidden, "Forbidden")
			return
		}
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims.Values, Scopes: claims.Scopes},
		}
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	out, err := g.lambda.Invoke(r.Context(), payload)
	if err != nil {
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	respBody := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if respBody, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, bytes.NewReader(respBody))
}

// gatewayError answers as API Gateway itself does, before the function runs.
func gatewayError(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dlicense"`)
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`+"\n", message)
}

// Keys are the dev keys of a checkout: the identity provider's key (which
// signs member tokens) and the licence signing key. They live in
// .cache/dev/ (git-ignored), are made on first use and never leave the machine.
type Keys struct {
	Issuer  tokens.Key
	Signing tokens.Key
}

// LoadKeys reads the dev keys from dir, making them if absent.
func LoadKeys(dir string) (Keys, error) {
	issuer, err := loadKey(filepath.Join(dir, "issuer.key"), "dev-issuer")
	if err != nil {
		return Keys{}, err
	}
	signing, err := loadKey(filepath.Join(dir, "signing.key"), "dev-licence")
	if err != nil {
		return Keys{}, err
	}
	return Keys{Issuer: issuer, Signing: signing}, nil
}

// ServeConfig is the configuration of the local server: what the Lambda
// reads from its environment (setup.FromEnv: POLICY_FILE, SNAPSHOT_EVERY,
// STATE_CACHE, PLAN_CLAIM and the rest), with local
// defaults for what a dev machine lacks: the dev signing key, the table
// licensing-local, the issuer dlicense-local.
func ServeConfig(keys Keys) (setup.Config, error) {
	defaults := map[string]string{"TABLE_NAME": "licensing-local", "TOKEN_ISSUER": "dlicense-local"}
	if os.Getenv("SIGNING_KEYS_PARAMETER") == "" {
		defaults["SIGNING_KEYS"] = keys.Signing.Encode()
	}
	for name, v := range defaults {
		if os.Getenv(name) == "" {
			if err := os.Setenv(name, v); err != nil {
				return setup.Config{}, err
			}
		}
	}
	c, err := setup.FromEnv()
	if err != nil {
		return c, err
	}
	if c.SigningKeys == "" && c.SigningKeysParameter != "" {
		// The keys are read from SSM with this machine's credentials (a
		// profile, SSO…), as the operator commands read them: a Lambda's
		// come from its environment.
		creds, region, err := awsenv.Credentials(context.Background(), c.Dynamo.Region)
		if err != nil {
			return c, err
		}
		c.Dynamo.Credentials = creds
		if c.Dynamo.Region == "" {
			c.Dynamo.Region = region
		}
	}
	c.QuietMetrics = true
	return c, nil
}

// loadKey reads the key at path, or makes one: written whole to a temporary
// file, then linked into place, which fails if another process got there
// first; then the key on disk, whoever wrote it, is the one returned. So the
// server and a token command started together on an empty directory agree.
func loadKey(path, kid string) (tokens.Key, error) {
	if k, err := readKey(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	k, err := tokens.GenerateKey(kid)
	if err != nil {
		return tokens.Key{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return tokens.Key{}, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return tokens.Key{}, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(k.Encode() + "\n"); err != nil {
		tmp.Close()
		return tokens.Key{}, err
	}
	if err := tmp.Close(); err != nil {
		return tokens.Key{}, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return tokens.Key{}, err
	}
	return readKey(path)
}

func readKey(path string) (tokens.Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tokens.Key{}, err
	}
	keys, err := tokens.ParseKeys(strings.TrimSpace(string(b)))
	if err != nil {
		return tokens.Key{}, fmt.Errorf("%s: %w", path, err)
	}
	return keys[0], nil
}

// ModuleRoot finds the directory of go.mod from the working directory up.
func ModuleRoot() (string, error) { return dynamotest.ModuleRoot() }

// Shutdown stops srv, waiting up to five seconds for requests in flight.
func Shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}
