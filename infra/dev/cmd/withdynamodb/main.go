// Command withdynamodb runs a command with DynamoDB Local available at
// $DYNAMODB_ENDPOINT, then stops it:
//
//	withdynamodb [-cache DIR] [-v] -- command args...
//	withdynamodb [-cache DIR] [-v] [-data DIR] [-port N] -serve
//
// When $DYNAMODB_ENDPOINT is already set the command just runs. When
// DynamoDB Local cannot start, the command runs without the variable (its
// DynamoDB tests skip), unless CI=true, where that is an error. -serve keeps
// a server up until SIGINT or SIGTERM; with -data its tables are kept on
// disk there, so a server started again on the same -data and -port (after
// a kill, as in an outage drill) has them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
)

func main() {
	cache := flag.String("cache", "", "download cache `dir` (default .cache in the module root)")
	serve := flag.Bool("serve", false, "start DynamoDB Local and keep it up until interrupted")
	verbose := flag.Bool("v", false, "copy DynamoDB Local's output to stderr")
	data := flag.String("data", "", "with -serve: keep the tables on disk in `dir` (default: in memory)")
	port := flag.Int("port", 0, "with -serve: listen on this loopback `port` (default: a free one)")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: withdynamodb [-cache DIR] [-v] -- command args...\n       withdynamodb [-cache DIR] [-v] -serve")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	if *serve == (len(args) > 0) {
		flag.Usage()
		os.Exit(2)
	}

	// From here on signals are ours to handle: they must not kill this
	// process before it has stopped the server.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)

	if !*serve {
		if ep, ok := dynamotest.EndpointFromEnv(); ok {
			logf("%s already set (%s); not starting DynamoDB Local", dynamotest.EndpointEnv, ep)
			os.Exit(run(args, nil, sigs))
		}
	}

	opts := dynamotest.Options{CacheDir: *cache, Log: nil, DataDir: *data, Port: *port}
	if !*serve && (*data != "" || *port != 0) {
		flag.Usage()
		os.Exit(2)
	}
	if *data != "" {
		dir, err := filepath.Abs(*data) // DynamoDB Local runs elsewhere
		if err == nil {
			err = os.MkdirAll(dir, 0o700)
		}
		if err != nil {
			logf("-data: %v", err)
			os.Exit(1)
		}
		opts.DataDir = dir
	}
	if opts.CacheDir == "" {
		opts.CacheDir = defaultCache()
	}
	if *verbose {
		opts.Log = os.Stderr
	}
	srv, err := start(opts, sigs)
	if err != nil {
		if errors.Is(err, errInterrupted) {
			os.Exit(130)
		}
		if *serve || os.Getenv("CI") == "true" {
			logf("cannot start DynamoDB Local: %v", err)
			os.Exit(1)
		}
		logf("warning: cannot start DynamoDB Local, running without %s (DynamoDB tests will skip): %v", dynamotest.EndpointEnv, err)
		os.Exit(run(args, nil, sigs))
	}

	if *serve {
		fmt.Printf("export %s=%s\n", dynamotest.EndpointEnv, srv.Endpoint())
		logf("serving (pid %d); Ctrl-C to stop", srv.PID())
		<-sigs
		if err := srv.Stop(); err != nil {
			logf("%v", err)
		}
		return
	}
	code := run(args, []string{dynamotest.EndpointEnv + "=" + srv.Endpoint()}, sigs)
	if err := srv.Stop(); err != nil {
		logf("%v", err)
	}
	os.Exit(code)
}

var errInterrupted = errors.New("interrupted")

// start starts the server, giving up (and cleaning up) on a signal.
func start(opts dynamotest.Options, sigs <-chan os.Signal) (*dynamotest.Server, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		srv *dynamotest.Server
		err error
	}
	res := make(chan result, 1)
	t0 := time.Now()
	go func() {
		srv, err := dynamotest.Start(ctx, opts)
		res <- result{srv, err}
	}()
	select {
	case r := <-res:
		if r.err == nil {
			logf("DynamoDB Local at %s (pid %d, started in %.1fs)", r.srv.Endpoint(), r.srv.PID(), time.Since(t0).Seconds())
		}
		return r.srv, r.err
	case <-sigs:
		cancel()
		if r := <-res; r.err == nil {
			r.srv.Stop()
		}
		return nil, errInterrupted
	}
}

// run runs args with stdio passed through and extra added to the
// environment, forwards SIGINT and SIGTERM to it, and returns its exit code.
func run(args, extra []string, sigs <-chan os.Signal) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), extra...)
	if err := cmd.Start(); err != nil {
		logf("%v", err)
		return 127
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			// A terminal Ctrl-C has already reached the child (same process
			// group); a second SIGINT is harmless, a missed `kill` is not.
			_ = cmd.Process.Signal(s)
		case err := <-done:
			return exitCode(err)
		}
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		if err != nil {
			logf("%v", err)
			return 1
		}
		return 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// defaultCache is .cache in the module root, or in the working directory
// outside a module.
func defaultCache() string {
	if root, err := dynamotest.ModuleRoot(); err == nil {
		return filepath.Join(root, ".cache")
	}
	return ".cache"
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "withdynamodb: "+format+"\n", args...)
}
