package benchreport

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Runner runs the measuring commands from the module root, copying their
// output to Log as they go.
type Runner struct {
	// Root is the module root; Go the go command ("go" if empty).
	Root string
	Go   string
	// WithDynamoDB is a built withdynamodb command, which runs a command
	// with a DynamoDB Local of its own.
	WithDynamoDB string
	// Log receives the commands and their output (the report does not).
	Log io.Writer
}

// Bench is one `go test -bench` run and what it printed.
type Bench struct {
	// Command is the command as a shell would show it.
	Command string
	Results []Result
	// Skipped says why the benchmarks did not run (no DynamoDB Local).
	Skipped string
	Took    time.Duration
}

func (r *Runner) goCmd() string {
	if r.Go != "" {
		return r.Go
	}
	return "go"
}

// Bench runs `go test` with args, under withdynamodb when dynamo is set,
// and parses its benchmark lines.
func (r *Runner) Bench(ctx context.Context, dynamo bool, args ...string) (Bench, error) {
	argv := append([]string{r.goCmd(), "test"}, args...)
	shown := "go test " + quoteArgs(args)
	if dynamo {
		argv = append([]string{r.WithDynamoDB, "--"}, argv...)
		shown = "go run ./infra/dev/cmd/withdynamodb -- " + shown
	}
	var out bytes.Buffer
	start := time.Now()
	err := r.run(ctx, argv, io.MultiWriter(&out, r.Log), io.MultiWriter(&out, r.Log))
	b := Bench{Command: shown, Results: Parse(out.String()), Took: time.Since(start)}
	if err != nil {
		return b, fmt.Errorf("%s: %w", shown, err)
	}
	if len(b.Results) == 0 {
		b.Skipped = "no benchmark ran"
		if s := skipReason(out.String()); s != "" {
			b.Skipped = s
		}
	}
	return b, nil
}

// skipReason finds a test's skip message in go test output.
func skipReason(out string) string {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); strings.Contains(line, "skipping") || strings.Contains(line, "not set") {
			if _, msg, ok := strings.Cut(line, ": "); ok {
				return msg
			}
			return line
		}
	}
	return ""
}

// run runs argv from the root with the given outputs.
func (r *Runner) run(ctx context.Context, argv []string, stdout, stderr io.Writer) error {
	fmt.Fprintf(r.Log, "\n$ %s\n", strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = r.Root
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Interrupt rather than kill: withdynamodb must stop the DynamoDB Local
	// it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 15 * time.Second
	return cmd.Run()
}

// Output runs argv from the root and returns its standard output; its
// standard error goes to Log.
func (r *Runner) Output(ctx context.Context, argv ...string) ([]byte, error) {
	var out bytes.Buffer
	if err := r.run(ctx, argv, &out, r.Log); err != nil {
		return out.Bytes(), fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
	}
	return out.Bytes(), nil
}

// BuildWithDynamoDB builds the withdynamodb command into dir.
func (r *Runner) BuildWithDynamoDB(ctx context.Context, dir string) error {
	r.WithDynamoDB = filepath.Join(dir, "withdynamodb")
	_, err := r.Output(ctx, r.goCmd(), "build", "-o", r.WithDynamoDB, "./infra/dev/cmd/withdynamodb")
	return err
}

// Size is the size of one function's bootstrap.
type Size struct {
	Function string
	Bytes    int64
}

// Sizes runs `make build` and returns the size of every bin/*/bootstrap.
func (r *Runner) Sizes(ctx context.Context) ([]Size, error) {
	if _, err := r.Output(ctx, "make", "build"); err != nil {
		return nil, err
	}
	paths, err := filepath.Glob(filepath.Join(r.Root, "bin", "*", "bootstrap"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var sizes []Size
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		sizes = append(sizes, Size{Function: filepath.Base(filepath.Dir(p)), Bytes: fi.Size()})
	}
	if len(sizes) == 0 {
		return nil, fmt.Errorf("make build left no bin/*/bootstrap")
	}
	return sizes, nil
}

// Machine describes where the figures were measured.
type Machine struct {
	Date      time.Time
	GoVersion string
	CPU       string
	Cores     int
	OS        string
}

// DetectMachine reads `go version`, the CPU model from /proc/cpuinfo and
// the number of cores.
func (r *Runner) DetectMachine(ctx context.Context) Machine {
	m := Machine{Date: time.Now().UTC(), GoVersion: runtime.Version(), CPU: "unknown", Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if out, err := exec.CommandContext(ctx, r.goCmd(), "version").Output(); err == nil {
		m.GoVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// quoteArgs joins args as a shell would need them typed.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " $^*?'\"") {
			a = "'" + a + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}
