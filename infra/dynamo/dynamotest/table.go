package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/dlicense/dlicense/infra/dynamo"
)

// ModuleRoot is the directory of go.mod, found from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// TB is what Table needs of a *testing.T or *testing.B.
type TB interface {
	Helper()
	Fatalf(string, ...any)
	Skipf(string, ...any)
	Cleanup(func())
}

// Table creates a table of the test's own on DynamoDB Local, defined by the
// module's template.yaml, and deletes it when the test ends. Without
// DynamoDB Local it follows Require's rule (fail under CI, else skip).
func Table(t TB) (*dynamodb.Client, string) {
	t.Helper()
	db, name := TableOn(t, Require(t))
	t.Cleanup(func() { db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: &name}) })
	return db, name
}

// StartFor starts a DynamoDB Local of the test's own, one the test may hang,
// resume and restart, with opts (CacheDir the module's .cache when empty),
// and stops it when the test ends. Without Java it follows Require's rule:
// under CI it fails, else it skips.
func StartFor(t TB, opts Options) *Server {
	t.Helper()
	if opts.CacheDir == "" {
		root, err := ModuleRoot()
		if err != nil {
			t.Fatalf("%v", err)
		}
		opts.CacheDir = filepath.Join(root, ".cache")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv, err := Start(ctx, opts)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("DynamoDB Local of the test's own: %v (CI=true: it must not be skipped)", err)
		}
		t.Skipf("DynamoDB Local of the test's own: %v", err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// TableOn creates a table defined by the module's template.yaml on the
// DynamoDB Local at endpoint, and returns a client for it and its name.
func TableOn(t TB, endpoint string) (*dynamodb.Client, string) {
	t.Helper()
	ctx := context.Background()
	db, err := dynamo.NewClient(ctx, dynamo.Config{Endpoint: endpoint})
	if err != nil {
		t.Fatalf("DynamoDB Local client: %v", err)
	}
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("%v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "test-" + hex.EncodeToString(b)
	in, err := TableFromTemplate(filepath.Join(root, "template.yaml"), TableLogicalID, name)
	if err != nil {
		t.Fatalf("%v", err)
	}
	if err := CreateTable(ctx, db, in); err != nil {
		t.Fatalf("%v", err)
	}
	return db, name
}
