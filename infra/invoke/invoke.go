// Package invoke runs a function's bootstrap the way SAM runs it: built as
// `sam build` builds it (the Makefile's Lambda build, for this machine's
// architecture), inside the AWS Lambda Runtime Interface Emulator (what
// `sam local` runs in its containers; a Go module, so no Docker is needed),
// and invokes it with an event.
package invoke

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
	"runtime"
	"strings"
	"sync"
	"time"
)

// Packages are the functions' main packages, by the template's logical id.
var Packages = map[string]string{
	"ApiFunction":     "./functions/api",
	"StreamsFunction": "./functions/streams",
	"JobsFunction":    "./functions/jobs",
}

// Tags are the build tags of the Lambda build (the Makefile's LAMBDA_TAGS).
const Tags = "lambda.norpc,nethttpomithttp2"

// Build builds, into dir, the Runtime Interface Emulator (dir/aws-lambda-rie)
// and the bootstrap of each function named (dir/<function>/bootstrap) from
// the module at root, for this machine's architecture, as the Makefile
// builds them for Lambda's.
func Build(ctx context.Context, root, dir string, functions ...string) error {
	goCmd := "go"
	if g := os.Getenv("GO"); g != "" {
		goCmd = g
	}
	run := func(env []string, args ...string) error {
		cmd := exec.CommandContext(ctx, goCmd, args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := run(nil, "build", "-o", filepath.Join(dir, "aws-lambda-rie"), "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"); err != nil {
		return err
	}
	for _, fn := range functions {
		pkg, ok := Packages[fn]
		if !ok {
			return fmt.Errorf("no function %q (functions: ApiFunction, StreamsFunction, JobsFunction)", fn)
		}
		env := []string{"GOOS=linux", "GOARCH=" + runtime.GOARCH, "CGO_ENABLED=0"}
		if err := run(env, "build", "-tags", Tags, "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, fn, "bootstrap"), pkg); err != nil {
			return err
		}
	}
	return nil
}

// Emulator is one function's bootstrap running in the Runtime Interface
// Emulator: one Lambda instance, serving one invocation at a time.
type Emulator struct {
	addr string
	cmd  *exec.Cmd
	logs lockedBuffer
	// Started is when its process started.
	Started time.Time
}

// lockedBuffer is a buffer the emulator's output goroutines write while
// Logs reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Start runs bootstrap in the emulator at rie with env (the function's
// environment; AWS_LAMBDA_FUNCTION_NAME and the like are set by the
// emulator), on free loopback ports. It does not wait for it to listen:
// Invoke does.
func Start(rie, bootstrap string, env []string) (*Emulator, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	addr, api := addrs[0], addrs[1]
	e := &Emulator{addr: addr}
	e.cmd = exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", api, bootstrap)
	e.cmd.Env = env
	e.cmd.Stdout, e.cmd.Stderr = &e.logs, &e.logs
	e.Started = time.Now()
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the emulator: %w", err)
	}
	return e, nil
}

// Invoke sends event to the function and returns its answer, trying to
// reach the emulator until ctx ends (a cold start: it may not listen yet).
func (e *Emulator) Invoke(ctx context.Context, event []byte) ([]byte, error) {
	url := "http://" + e.addr + "/2015-03-31/functions/function/invocations"
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(event))
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				return body, fmt.Errorf("the emulator answered %s: %s", resp.Status, body)
			}
			return body, nil
		}
		var op *net.OpError
		if !errors.As(err, &op) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the emulator did not answer: %w\n%s", ctx.Err(), e.Logs())
		case <-time.After(time.Millisecond):
		}
	}
}

// Addr is the emulator's address: its invoke API is
// POST /2015-03-31/functions/function/invocations there.
func (e *Emulator) Addr() string { return e.addr }

// Logs is what the emulator and the function printed.
func (e *Emulator) Logs() string { return e.logs.String() }

// Stop ends the emulator and the function.
func (e *Emulator) Stop() {
	if e.cmd.Process != nil {
		e.cmd.Process.Kill()
		e.cmd.Wait()
	}
}

// freeAddrs are n free loopback addresses, all held until all are found:
// two taken one after the other could be the same port.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out, nil
}
