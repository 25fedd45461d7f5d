// Package dynamotest is DynamoDB Local for tests, as httptest is a server
// for tests: it downloads, starts and stops DynamoDB Local (the Java
// emulator from the amplify-dynamodb-simulator npm package), and creates
// tables from template.yaml's definition, so that the stores' tests run
// against a real DynamoDB API on loopback. No Lambda links it.
package dynamotest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	maxAttempts  = 5
	stopGrace    = 5 * time.Second
	tailSize     = 8 << 10
	pollInterval = 50 * time.Millisecond
)

// Options configures Start.
type Options struct {
	// CacheDir holds the downloaded emulator (see Install); required.
	CacheDir string
	// Java is the java executable; "java" (looked up in PATH) when empty.
	Java string
	// StartTimeout bounds each start attempt; 60s when zero.
	StartTimeout time.Duration
	// Log, when set, receives install notes and the emulator's output.
	Log io.Writer
	// DataDir, when set, keeps the tables on disk there instead of in
	// memory: a server started again on it (Restart) has the same data.
	DataDir string
	// Port, when set, is the loopback port to listen on (else a free one).
	Port int
}

// Server is a running DynamoDB Local process started by Start; call Stop
// when done.
type Server struct {
	endpoint string
	cmd      *exec.Cmd
	scratch  string
	out      *outputTail
	done     chan struct{} // closed once the process has been reaped
	waitErr  error         // valid after done is closed
	grace    time.Duration

	stopOnce sync.Once
	stopErr  error

	opts Options     // as started, with the port chosen
	hung atomic.Bool // stopped by Hang, not yet resumed
}

// Endpoint returns the server's base URL, http://127.0.0.1:PORT.
func (s *Server) Endpoint() string { return s.endpoint }

// PID returns the process id of the java process.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Start installs DynamoDB Local if needed, runs it in memory on a free
// loopback port and returns once it answers ListTables. ctx bounds the
// install and the start only, not the server's life. A port taken between
// choosing and binding it is retried with another port.
func Start(ctx context.Context, opts Options) (*Server, error) {
	javaName := opts.Java
	if javaName == "" {
		javaName = "java"
	}
	// Before the download: without java the download would be wasted.
	java, err := exec.LookPath(javaName)
	if err != nil {
		return nil, fmt.Errorf("dynamotest: DynamoDB Local needs a Java runtime (17+), %q not found: %w", javaName, err)
	}
	if opts.CacheDir != "" && !installed(filepath.Join(opts.CacheDir, "dynamodb-local", Version)) && opts.Log != nil {
		fmt.Fprintf(opts.Log, "dynamotest: downloading %s@%s (about 56 MB) into %s\n", npmPackage, Version, opts.CacheDir)
	}
	jarDir, err := Install(ctx, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}

	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("dynamotest: %w", err)
		}
	}
	var errs []error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		port := opts.Port
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := launch(java, func(scratch string) []string { return javaArgs(jarDir, scratch, opts.DataDir, port) }, opts.Log)
		if err != nil {
			return nil, err
		}
		s.endpoint = "http://127.0.0.1:" + strconv.Itoa(port)
		s.opts = opts
		s.opts.Port = port
		retry, err := s.waitReady(ctx, port, timeout)
		if err == nil {
			return s, nil
		}
		s.Stop()
		if !retry || opts.Port != 0 {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("dynamotest: no free port after %d attempts: %w", maxAttempts, errors.Join(errs...))
}

// javaArgs makes scratch the JVM's temp dir too: the native sqlite library
// DynamoDB Local unpacks there is then removed by Stop even after a SIGKILL.
// The tables are in memory, or in dataDir when it is set.
func javaArgs(jarDir, scratch, dataDir string, port int) []string {
	storage := []string{"-inMemory"}
	if dataDir != "" {
		storage = []string{"-dbPath", dataDir}
	}
	return append([]string{
		// A heap for the whole test suite's tables; the full JIT, since
		// the suite runs for minutes.
		"-XX:+UseSerialGC", "-Xmx2g",
		"-Djava.io.tmpdir=" + scratch,
		"-Djava.library.path=" + filepath.Join(jarDir, "DynamoDBLocal_lib"),
		"-jar", filepath.Join(jarDir, jarName),
	}, append(storage, "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(port))...)
}

// launch starts name with args(scratch) in a fresh scratch directory, in its
// own process group so a Ctrl-C meant for the caller's command reaches it only
// through Stop.
func launch(name string, args func(scratch string) []string, log io.Writer) (*Server, error) {
	scratch, err := os.MkdirTemp("", "dynamodb-local-")
	if err != nil {
		return nil, fmt.Errorf("dynamotest: %w", err)
	}
	out := &outputTail{log: log, bindFailed: make(chan struct{})}
	cmd := exec.Command(name, args(scratch)...)
	cmd.Dir = scratch // it may write dynamodb-local-metadata.json into its cwd
	cmd.Env = append(os.Environ(), "DDB_LOCAL_TELEMETRY=0")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		os.RemoveAll(scratch)
		return nil, fmt.Errorf("dynamotest: start %s: %w", name, err)
	}
	s := &Server{cmd: cmd, scratch: scratch, out: out, done: make(chan struct{}), grace: stopGrace}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

// waitReady polls until the process we started serves ListTables on port.
// retry reports a bind failure, which another port may cure.
func (s *Server) waitReady(ctx context.Context, port int, timeout time.Duration) (retry bool, err error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	}
	for {
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("dynamotest: start: %w", ctx.Err())
		case <-s.done:
			return false, fmt.Errorf("dynamotest: java exited before DynamoDB Local was ready (%v):\n%s", s.waitErr, s.out.String())
		case <-s.out.bindFailed:
			// It hangs instead of exiting when the port is taken.
			return true, fmt.Errorf("port %d: bind failed", port)
		case <-deadline.C:
			return false, fmt.Errorf("dynamotest: DynamoDB Local not ready after %v:\n%s", timeout, s.out.String())
		case <-tick.C:
		}
		// Someone else may hold the port; only probe once it is ours.
		if owned, known := listensOn(s.PID(), port); known && !owned {
			continue
		}
		if probe(ctx, client, s.endpoint) {
			select {
			case <-s.out.bindFailed:
				return true, fmt.Errorf("port %d: bind failed", port)
			default:
				return false, nil
			}
		}
	}
}

// probe reports whether a DynamoDB API answers ListTables at endpoint. A
// dummy SigV4 header is enough for DynamoDB Local, which rejects unsigned
// requests.
func probe(ctx context.Context, client *http.Client, endpoint string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader("{}"))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=dummy/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"TableNames"`))
}

// Stop ends the server: SIGTERM to its process alone, SIGKILL if it is still
// alive after 5 seconds, then removes its scratch directory. It is safe to
// call more than once and from several goroutines; later calls return the
// first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	// The process is reaped only by our Wait goroutine, so until done is
	// closed the pid cannot have been reused: signalling it is safe.
	select {
	case <-s.done:
	default:
		if s.hung.Load() {
			_ = s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process would not hear SIGTERM
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(s.grace):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	if err := os.RemoveAll(s.scratch); err != nil {
		return fmt.Errorf("dynamotest: stop: %w", err)
	}
	return nil
}

// Hang stops the server's process (SIGSTOP) without ending it: its port
// still accepts connections, and nothing answers them. Resume makes it
// answer again. A hung server's Stop resumes it first.
func (s *Server) Hang() error {
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		return fmt.Errorf("dynamotest: hang: %w", err)
	}
	s.hung.Store(true)
	return nil
}

// Resume lets a hung server run again (SIGCONT).
func (s *Server) Resume() error {
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		return fmt.Errorf("dynamotest: resume: %w", err)
	}
	s.hung.Store(false)
	return nil
}

// Restart stops the server and starts another on the same port and data
// directory, as a store that went away and came back: with DataDir set,
// its tables and items are still there.
func (s *Server) Restart(ctx context.Context) (*Server, error) {
	if err := s.Stop(); err != nil {
		return nil, err
	}
	return Start(ctx, s.opts)
}

// freePort asks the kernel for an unused loopback port. It can be taken
// again before java binds it; Start retries when that happens.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dynamotest: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// outputTail keeps the last few KB of the process output for error messages,
// copies it to log, and signals the first bind failure it sees.
type outputTail struct {
	log        io.Writer
	mu         sync.Mutex
	buf        []byte
	bindFailed chan struct{}
	failed     bool
}

func (o *outputTail) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.log != nil {
		_, _ = o.log.Write(p)
	}
	o.buf = append(o.buf, p...)
	if !o.failed && (bytes.Contains(o.buf, []byte("Failed to bind")) || bytes.Contains(o.buf, []byte("BindException"))) {
		o.failed = true
		close(o.bindFailed)
	}
	if len(o.buf) > tailSize {
		o.buf = append(o.buf[:0], o.buf[len(o.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (o *outputTail) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(tail(o.buf, tailSize))
}

// tail returns at most the last n bytes of b, starting at a line boundary
// when it has to cut.
func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}
