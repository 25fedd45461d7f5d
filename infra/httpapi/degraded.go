package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dlicense/dlicense/domain/kernel"
)

// What the API answers when the store is slow or gone (docs/reliability.md):
//
//   - grants (acquire, renew, release, sync, playback upload) and the
//     operators' routes: 503 STORE_UNAVAILABLE with Retry-After, nothing
//     decided without the member's log;
//   - heartbeats and starts: 202 with degraded true, so the player keeps
//     playing (unavailableView);
//   - member reads (screens, resume, history, recently watched): the last
//     answer this instance gave the member, or the route's empty answer,
//     marked stale (readOrStale);
//   - licence status: from the token itself, flagged (licenceStatus).

// degradable reports whether err is the store being unreachable or too
// slow for the request's budget: what a route may answer around.
func degradable(err error) bool {
	var e *kernel.Error
	if errors.As(err, &e) {
		return e.Kind == kernel.KindUnavailable && e.Code == kernel.CodeStoreUnavailable
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// degrade notes, for the request's log line and metrics, that r was
// answered without the store, and why.
func degrade(r *http.Request, err error) {
	slog.WarnContext(r.Context(), "answered without the store", "route", r.Pattern, "error", err)
	if o := outcomeOf(r.Context()); o != nil {
		o.mu.Lock()
		o.degraded++
		o.mu.Unlock()
	}
}

// MaxLastAnswers is how many member read answers an instance keeps for
// stale reads (a few MB at most).
const MaxLastAnswers = 512

// lastAnswers keeps the last answer of each member read (route, member and
// query) this instance gave, to answer it again, marked stale, when the
// store cannot be read. Lambda routes a member's requests to any instance,
// so it is a fallback that sometimes has an answer, never a cache that is
// read first.
type lastAnswers struct {
	mu    sync.Mutex
	byKey map[string]lastAnswer
	order []string // ring of keys, oldest at next
	next  int
}

type lastAnswer struct {
	body []byte
	at   time.Time
}

func (l *lastAnswers) put(key string, body []byte, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byKey == nil {
		l.byKey = map[string]lastAnswer{}
	}
	if _, ok := l.byKey[key]; !ok {
		if len(l.order) < MaxLastAnswers {
			l.order = append(l.order, key)
		} else {
			delete(l.byKey, l.order[l.next])
			l.order[l.next] = key
			l.next = (l.next + 1) % MaxLastAnswers
		}
	}
	l.byKey[key] = lastAnswer{body, at}
}

func (l *lastAnswers) get(key string) (lastAnswer, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.byKey[key]
	return a, ok
}

// readOrStale answers a member's read: 200 with what read returns (kept
// as the last answer), or, when the store cannot be read in time, the last
// answer this instance gave the same read, else empty, with "stale": true
// (and "stale_as_of", when it was read, for a kept answer). Other errors
// are answered as problems.
func (a *api) readOrStale(w http.ResponseWriter, r *http.Request, id Identity, read func() (any, error), empty func() any) {
	key := id.Member + "\x00" + r.URL.Path + "?" + r.URL.RawQuery
	v, err := read()
	if err == nil {
		body, err := json.Marshal(v)
		if err != nil {
			writeError(w, r, err)
			return
		}
		a.last.put(key, body, a.opts.Now().UTC())
		writeJSON(w, http.StatusOK, json.RawMessage(body))
		return
	}
	if !degradable(err) {
		writeError(w, r, err)
		return
	}
	degrade(r, err)
	answer := map[string]any{}
	if last, ok := a.last.get(key); ok {
		if json.Unmarshal(last.body, &answer) != nil {
			answer = map[string]any{}
		} else {
			answer["stale_as_of"] = last.at
		}
	}
	if len(answer) == 0 {
		b, _ := json.Marshal(empty())
		json.Unmarshal(b, &answer)
	}
	answer["stale"] = true
	writeJSON(w, http.StatusOK, answer)
}
