package dynamotest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestStartStop is the one integration test: it starts a real server from the
// module's git-ignored .cache, talks to it, and checks Stop leaves nothing.
func TestStartStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a JVM")
	}
	if _, err := exec.LookPath("java"); err != nil {
		ciRule(t, "java not found: %v", err)
	}
	root := moduleRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t0 := time.Now()
	srv, err := Start(ctx, Options{CacheDir: filepath.Join(root, ".cache")})
	if err != nil {
		ciRule(t, "Start: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	t.Logf("started %s (pid %d) in %v", srv.Endpoint(), srv.PID(), time.Since(t0).Round(time.Millisecond))

	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("Endpoint() = %q, want http://127.0.0.1:PORT", srv.Endpoint())
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if !probe(ctx, client, srv.Endpoint()) {
		t.Fatalf("ListTables on %s failed", srv.Endpoint())
	}
	if owned, known := listensOn(srv.PID(), port(t, srv)); known && !owned {
		t.Errorf("listensOn(%d, %d) = false, want the server's own socket", srv.PID(), port(t, srv))
	}

	pid, scratch := srv.PID(), srv.scratch
	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop() = %v, want nil", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+fmt.Sprint(port(t, srv)))
	if err != nil {
		t.Errorf("port still taken after Stop: %v", err)
	} else {
		l.Close()
	}
	if _, err := os.Stat(scratch); !os.IsNotExist(err) {
		t.Errorf("scratch dir %s after Stop: %v, want not exist", scratch, err)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop() = %v, want nil", err)
	}
}

// TestStopIdempotent uses a process that ignores SIGTERM, so it also covers
// the escalation to SIGKILL, and calls Stop concurrently and again.
func TestStopIdempotent(t *testing.T) {
	srv, err := launch("sh", func(string) []string {
		return []string{"-c", `trap "" TERM; echo up; exec sleep 60`}
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.grace = 100 * time.Millisecond
	pid := srv.PID()
	// Stop only once the trap is set, or SIGTERM would end it at once.
	for deadline := time.Now().Add(5 * time.Second); srv.out.String() != "up\n"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output = %q, want %q", srv.out.String(), "up\n")
		}
	}

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := srv.Stop(); err != nil {
				t.Errorf("Stop() = %v, want nil", err)
			}
		})
	}
	wg.Wait()
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop() again = %v, want nil", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	if ws, ok := srv.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("process ended by %v, want SIGKILL after ignoring SIGTERM", srv.cmd.ProcessState)
	}
}

func TestExtractEmulator(t *testing.T) {
	tests := []struct {
		name    string
		entries []tar.Header
		wantErr string   // substring; "" for success
		want    []string // files under dst
	}{
		{
			name: "emulator only",
			entries: []tar.Header{
				{Name: "package/package.json", Typeflag: tar.TypeReg},
				{Name: "package/emulator/", Typeflag: tar.TypeDir},
				{Name: "package/emulator/DynamoDBLocal.jar", Typeflag: tar.TypeReg},
				{Name: "package/emulator/DynamoDBLocal_lib/a.jar", Typeflag: tar.TypeReg},
			},
			want: []string{"DynamoDBLocal.jar", "DynamoDBLocal_lib/a.jar"},
		},
		{
			name:    "dot-dot inside prefix",
			entries: []tar.Header{{Name: "package/emulator/../../../evil", Typeflag: tar.TypeReg}},
			wantErr: "unsafe path",
		},
		{
			name:    "dot-dot outside prefix",
			entries: []tar.Header{{Name: "../evil", Typeflag: tar.TypeReg}},
			wantErr: "unsafe path",
		},
		{
			name:    "absolute",
			entries: []tar.Header{{Name: "/tmp/evil", Typeflag: tar.TypeReg}},
			wantErr: "unsafe path",
		},
		{
			name: "symlink",
			entries: []tar.Header{
				{Name: "package/emulator/link", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
			},
			wantErr: "unsupported entry",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			err := extractEmulator(bytes.NewReader(tarball(t, tt.entries)), dst)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("extractEmulator() = %v, want error containing %q", err, tt.wantErr)
				}
				if _, err := os.Stat(filepath.Join(parent, "evil")); !os.IsNotExist(err) {
					t.Errorf("file written outside dst: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("extractEmulator() = %v, want nil", err)
			}
			var got []string
			filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					rel, _ := filepath.Rel(dst, p)
					got = append(got, filepath.ToSlash(rel))
				}
				return err
			})
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("extracted %v, want %v", got, tt.want)
			}
		})
	}
}

func TestVerifyIntegrity(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.tgz")
	if err := os.WriteFile(p, []byte("not the tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := verifyIntegrity(p, integrity); err == nil || !strings.Contains(err.Error(), "integrity mismatch") {
		t.Errorf("verifyIntegrity(wrong file) = %v, want integrity mismatch", err)
	}
}

// fakeT records what Require asks of a test.
type fakeT struct{ fatal, skip string }

func (f *fakeT) Helper()                        {}
func (f *fakeT) Fatalf(format string, a ...any) { f.fatal = fmt.Sprintf(format, a...) }
func (f *fakeT) Skipf(format string, a ...any)  { f.skip = fmt.Sprintf(format, a...) }

func TestRequire(t *testing.T) {
	tests := []struct {
		endpoint, ci        string
		want                string
		wantFatal, wantSkip bool
	}{
		{endpoint: "http://127.0.0.1:1234", ci: "true", want: "http://127.0.0.1:1234"},
		{endpoint: "http://127.0.0.1:1234", ci: "", want: "http://127.0.0.1:1234"},
		{endpoint: "", ci: "true", wantFatal: true},
		{endpoint: "", ci: "", wantSkip: true},
		{endpoint: "", ci: "1", wantSkip: true},
	}
	for _, tt := range tests {
		t.Setenv(EndpointEnv, tt.endpoint)
		t.Setenv("CI", tt.ci)
		var ft fakeT
		got := Require(&ft)
		if got != tt.want || (ft.fatal != "") != tt.wantFatal || (ft.skip != "") != tt.wantSkip {
			t.Errorf("Require() with %s=%q CI=%q = %q, fatal %q, skip %q; want %q, fatal %v, skip %v",
				EndpointEnv, tt.endpoint, tt.ci, got, ft.fatal, ft.skip, tt.want, tt.wantFatal, tt.wantSkip)
		}
	}
}

// ciRule fails the test under CI=true and skips it otherwise.
func ciRule(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func port(t *testing.T, srv *Server) int {
	t.Helper()
	_, p, err := net.SplitHostPort(strings.TrimPrefix(srv.Endpoint(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

func tarball(t *testing.T, entries []tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		var body []byte
		if h.Typeflag == tar.TypeReg {
			body = []byte("content of " + h.Name)
			h.Size = int64(len(body))
		}
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
