package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/chromedp/chromedp"

	"github.com/dlicense/dlicense/infra/dev/devidp"
	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/httpapi"
	"github.com/dlicense/dlicense/infra/setup"
)

func TestMain(m *testing.M) {
	// The API logs a line per request; its warnings and errors are enough.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}

// stepTimeout bounds one browser step (a load, a wait for a drawing).
const stepTimeout = 30 * time.Second

// server is the local API in-process: the Lambda handler behind the dev
// gateway, on the embedded store, with the stream function fed on every
// append.
type server struct {
	url     string
	gateway http.Handler
	issuer  *devidp.DevIssuer
	parts   *local.App
}

func startServer(t *testing.T) *server {
	t.Helper()
	keys, err := local.LoadKeys(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := setup.Config{SigningKeys: keys.Signing.Encode(), Issuer: "dlicense-console", PlanClaim: "plan", QuietMetrics: true, WithdrawalRefresh: -1}
	parts, err := local.Build(context.Background(), "memory", cfg)
	if err != nil {
		t.Fatal(err)
	}
	local.FeedFromMemory(parts.Memory, lambda.NewHandler(parts.Processor().Handle), nil)
	s := &server{issuer: devidp.NewDevIssuer(local.DevIssuer, local.DevAudience, keys.Issuer), parts: parts}
	s.gateway = local.NewGateway(parts.Handler(), s.issuer, httpapi.PublicRoutes())
	srv := httptest.NewServer(s.gateway)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *server) token(t *testing.T, member, plan string, scopes ...string) string {
	t.Helper()
	tok, err := s.issuer.Mint(member, plan, scopes, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// call makes one request and decodes its JSON answer.
func (s *server) call(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	return resp.StatusCode, doc
}

// unavailable skips the test, or fails it under CI=true: CI must never
// pass without running the browser tests.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s, and CI=true: the console's browser tests must not be skipped in CI (install the Debian package chromium, as .ci/run does)", msg)
	}
	t.Skipf("%s; skipping the console's browser test (apt-get install chromium to run it)", msg)
}

// tab is a headless Chromium tab, with what the page wrote to its console.
type tab struct {
	ctx context.Context
	mu  sync.Mutex
	log []chromedp.ConsoleMessage
}

// browser starts headless Chromium for t (stopped when t ends).
func browser(t *testing.T) *tab {
	t.Helper()
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		unavailable(t, "no Chromium on PATH")
	}
	// Its profile and the files it makes in TMPDIR go in the test's own
	// temporary directory, removed with it: nothing left in /tmp.
	tmp := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(filepath.Join(tmp, "profile")), chromedp.Env("TMPDIR="+tmp))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		unavailable(t, "Chromium (%s) did not start: %v", path, err)
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	b := &tab{ctx: ctx}
	messages := chromedp.Console(ctx)
	go func() {
		for msg, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.log = append(b.log, msg)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs browser steps, within stepTimeout.
func (b *tab) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into v.
func eval[T any](t *testing.T, b *tab, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %.80s…: %v", expr, err)
	}
	return v
}

// wait polls a JavaScript predicate until it holds; idle (no call of the
// page in flight) is added to it.
func (b *tab) wait(t *testing.T, what, predicate string) {
	t.Helper()
	b.do(t, "wait for "+what, chromedp.Poll[chromedp.Void](`document.body.dataset.pending === "0" && (`+predicate+`)`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout)))
}

// open loads the console, uses token and opens member.
func (b *tab) open(t *testing.T, url, token, member string) {
	t.Helper()
	b.do(t, "load the console",
		chromedp.Navigate(url+"/console"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), token),
		chromedp.Click(chromedp.CSS(`#token-form button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById('token-state').textContent.startsWith('Token in use')`),
		chromedp.SetValue(chromedp.ID("member"), member),
		chromedp.Click(chromedp.CSS(`#member-form button[type=submit]`)),
	)
	b.wait(t, "the picture of "+member, fmt.Sprintf(`document.querySelector('svg#timeline[data-member=%q]') !== null`, member))
}

// shot saves a full-page PNG of the tab under dir (t.TempDir(), or
// $CONSOLE_SCREENSHOTS to keep them).
func (b *tab) shot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("html"))) // the whole page, as a PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// quiet fails t if the page threw or logged an error or a warning (a CSP
// violation, a failed load, an exception), but for those containing one
// of expected.
func (b *tab) quiet(t *testing.T, expected ...string) {
	t.Helper()
	time.Sleep(50 * time.Millisecond) // let the last messages arrive
	b.mu.Lock()
	defer b.mu.Unlock()
next:
	for _, m := range b.log {
		if m.IsException() || m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning {
			for _, e := range expected {
				if strings.Contains(m.Text, e) {
					continue next
				}
			}
			t.Errorf("the page's console: %s", m)
		}
	}
}

// show switches the console to a view.
func (b *tab) show(t *testing.T, view string) {
	t.Helper()
	b.do(t, "show "+view, chromedp.Click(chromedp.CSS(fmt.Sprintf(`nav button[data-view=%q]`, view))))
}
