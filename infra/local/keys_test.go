package local_test

import (
	"sync"
	"testing"

	"github.com/dlicense/dlicense/infra/local"
)

// TestKeysUnderConcurrentFirstUse: the server and a token command started
// at the same moment on an empty key directory end up with the same keys,
// the ones on disk, and neither fails.
func TestKeysUnderConcurrentFirstUse(t *testing.T) {
	for round := range 30 {
		dir := t.TempDir()
		const users = 8
		got := make([]local.Keys, users)
		errs := make([]error, users)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range users {
			wg.Go(func() {
				<-start
				got[i], errs[i] = local.LoadKeys(dir)
			})
		}
		close(start)
		wg.Wait()
		disk, err := local.LoadKeys(dir)
		if err != nil {
			t.Fatal(err)
		}
		for i := range users {
			if errs[i] != nil {
				t.Fatalf("round %d: LoadKeys %d = %v", round, i, errs[i])
			}
			if got[i].Issuer.Encode() != disk.Issuer.Encode() || got[i].Signing.Encode() != disk.Signing.Encode() {
				t.Fatalf("round %d: user %d holds keys that are not the ones on disk", round, i)
			}
		}
	}
}
