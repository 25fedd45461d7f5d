// Command dlicense-invoke runs one function's bootstrap as `sam local
// invoke` does, without Docker: built as `sam build` builds it, inside the
// AWS Lambda Runtime Interface Emulator, with the environment the template
// gives the function, on DynamoDB Local ($DYNAMODB_ENDPOINT: `make invoke`
// starts one unless it is set), and prints the function's answer.
//
//	dlicense-invoke -function ApiFunction -event events/views.json
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dlicense/dlicense/infra/dev/local"
	"github.com/dlicense/dlicense/infra/dynamo"
	"github.com/dlicense/dlicense/infra/dynamo/dynamotest"
	"github.com/dlicense/dlicense/infra/invoke"
)

func main() {
	function := flag.String("function", "", "the template's function: ApiFunction, StreamsFunction or JobsFunction")
	event := flag.String("event", "", "the event file (events/…), or - for standard input")
	logs := flag.Bool("logs", false, "print the function's log too (to standard error)")
	samEnv := flag.String("sam-env", "", "instead: write the env-vars file of sam local invoke and start-api to this `file`")
	endpoint := flag.String("endpoint", "http://host.docker.internal:8000", "with -sam-env: DynamoDB Local as SAM's containers reach it")
	flag.Parse()
	if *samEnv != "" {
		if err := writeSAMEnv(*samEnv, *endpoint); err != nil {
			fmt.Fprintln(os.Stderr, "dlicense-invoke:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*function, *event, *logs); err != nil {
		fmt.Fprintln(os.Stderr, "dlicense-invoke:", err)
		os.Exit(1)
	}
}

func run(function, eventFile string, showLogs bool) error {
	if function == "" || eventFile == "" {
		return errors.New("usage: dlicense-invoke -function ApiFunction|StreamsFunction|JobsFunction -event events/<file>.json")
	}
	if _, ok := invoke.Packages[function]; !ok {
		return fmt.Errorf("no function %q: ApiFunction, StreamsFunction or JobsFunction", function)
	}
	var event []byte
	var err error
	if eventFile == "-" {
		event, err = readAll(os.Stdin)
	} else {
		event, err = os.ReadFile(eventFile)
	}
	if err != nil {
		return err
	}
	endpoint, ok := dynamotest.EndpointFromEnv()
	if !ok {
		return errors.New("no DynamoDB Local: set DYNAMODB_ENDPOINT (make run-dynamodb prints it) or run it through make invoke")
	}
	root, err := local.ModuleRoot()
	if err != nil {
		return err
	}
	ctx := context.Background()
	table := os.Getenv("TABLE_NAME")
	if table == "" {
		table = "licensing-local" // make run-dynamodb's
	}
	db, err := dynamo.NewClient(ctx, dynamo.Config{Table: table, Endpoint: endpoint})
	if err != nil {
		return err
	}
	in, err := dynamotest.TableFromTemplate(filepath.Join(root, "template.yaml"), dynamotest.TableLogicalID, table)
	if err != nil {
		return err
	}
	if err := dynamotest.CreateTable(ctx, db, in); err != nil {
		return err
	}
	keys, err := local.LoadKeys(filepath.Join(root, ".cache", "dev"))
	if err != nil {
		return err
	}
	dir := filepath.Join(root, ".cache", "invoke")
	fmt.Fprintf(os.Stderr, "building %s and the Runtime Interface Emulator (as sam build does)…\n", function)
	if err := invoke.Build(ctx, root, dir, function); err != nil {
		return err
	}
	env, err := invoke.TemplateEnv(filepath.Join(root, "template.yaml"), function,
		invoke.Local{Table: table, StackName: "dlicense-local", Region: "eu-west-1", AccountID: "000000000000"})
	if err != nil {
		return err
	}
	env = invoke.ForLocal(env, endpoint, keys.Signing.Encode(), "eu-west-1")
	fmt.Fprintf(os.Stderr, "environment (template.yaml's, one region, on DynamoDB Local at %s, table %s): %s\n", endpoint, table, invoke.Names(env))
	e, err := invoke.Start(filepath.Join(dir, "aws-lambda-rie"), filepath.Join(dir, function, "bootstrap"), invoke.Environ(env))
	if err != nil {
		return err
	}
	defer e.Stop()
	ictx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := e.Invoke(ictx, event)
	took := time.Since(e.Started)
	if showLogs || err != nil {
		fmt.Fprint(os.Stderr, e.Logs())
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "answered in %v from the process start (a cold start)\n", took.Round(time.Millisecond))
	var pretty bytes.Buffer
	if json.Indent(&pretty, out, "", "  ") == nil {
		out = pretty.Bytes()
	}
	fmt.Println(string(out))
	return nil
}

func readAll(f *os.File) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(f)
	return b.Bytes(), err
}

// writeSAMEnv writes the env-vars file of `sam local invoke` and `sam
// local start-api` (--env-vars): each function's template environment made
// to run on DynamoDB Local at endpoint, table licensing-local (make
// run-dynamodb's), signing with this checkout's dev key. It holds that key:
// it is written under .cache/ (git-ignored), never committed.
func writeSAMEnv(path, endpoint string) error {
	root, err := local.ModuleRoot()
	if err != nil {
		return err
	}
	keys, err := local.LoadKeys(filepath.Join(root, ".cache", "dev"))
	if err != nil {
		return err
	}
	out := map[string]map[string]string{}
	for function := range invoke.Packages {
		env, err := invoke.TemplateEnv(filepath.Join(root, "template.yaml"), function,
			invoke.Local{Table: "licensing-local", StackName: "dlicense-local", Region: "eu-west-1", AccountID: "000000000000"})
		if err != nil {
			return err
		}
		out[function] = invoke.ForLocal(env, endpoint, keys.Signing.Encode(), "eu-west-1")
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s: DynamoDB Local at %s for ApiFunction, StreamsFunction and JobsFunction\n", path, endpoint)
	return nil
}
