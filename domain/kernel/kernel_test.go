package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidID(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"m-1", true}, {"A", true}, {"9.title_x:y-z", true}, {strings.Repeat("a", 64), true},
		{"", false}, {strings.Repeat("a", 65), false}, {"-m", false}, {".m", false},
		{"m 1", false}, {"m/1", false}, {"é", false}, {"m#1", false},
	} {
		if got := ValidID(tc.id); got != tc.want {
			t.Errorf("ValidID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestValidKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want bool
	}{
		{"k", true}, {"~!\"#$%&'()*+,-./", true}, {strings.Repeat("k", 128), true},
		{"", false}, {strings.Repeat("k", 129), false}, {"a b", false}, {"a\tb", false}, {"ké", false}, {"a\x7f", false},
	} {
		if got := ValidKey(tc.key); got != tc.want {
			t.Errorf("ValidKey(%q) = %v, want %v", tc.key, got, tc.want)
		}
	}
}

func TestPseudonymHidesTheMember(t *testing.T) {
	p := Pseudonym("member-42")
	if len(p) != 16 || strings.Contains(p, "member") {
		t.Errorf("Pseudonym(member-42) = %q, want 16 hex digits without the id", p)
	}
	if p != Pseudonym("member-42") || p == Pseudonym("member-43") {
		t.Errorf("Pseudonym is not a stable function of the id: %q", p)
	}
	if got := Pseudonym(""); got != "" {
		t.Errorf("Pseudonym(\"\") = %q, want \"\"", got)
	}
}

// refusal stands for a domain's own error type that knows its kind.
type refusal struct{}

func (refusal) Error() string   { return "refused" }
func (refusal) ErrorKind() Kind { return KindDenied }

func TestKindOf(t *testing.T) {
	invalid := Invalid("title_id", "bad title %s", "x")
	for _, tc := range []struct {
		name string
		err  error
		want Kind
	}{
		{"nil", nil, ""},
		{"plain", errors.New("disk on fire"), KindInternal},
		{"error", Errorf(KindNotFound, "X", "no"), KindNotFound},
		{"wrapped", fmt.Errorf("load: %w", invalid), KindInvalid},
		{"own kind", fmt.Errorf("decide: %w", refusal{}), KindDenied},
		{"unavailable", Unavailable("busy", errors.New("503")), KindUnavailable},
	} {
		if got := KindOf(tc.err); got != tc.want {
			t.Errorf("KindOf(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if invalid.Field != "title_id" || invalid.Code != CodeInvalidInput || invalid.Message != "bad title x" {
		t.Errorf("Invalid(...) = %+v, want field title_id, code %s, message formatted", invalid, CodeInvalidInput)
	}
	cause := errors.New("connection reset")
	if u := Unavailable("busy", cause); !errors.Is(u, cause) || u.Code != CodeStoreUnavailable || strings.Contains(u.Message, "reset") {
		t.Errorf("Unavailable(busy, cause) = %+v, want the cause kept apart from the message", u)
	}
}

func TestBackoffStopsWithTheContext(t *testing.T) {
	if err := Backoff(context.Background(), 0, 3); err != nil {
		t.Errorf("Backoff(base 0) = %v, want nil at once", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Backoff(ctx, time.Hour, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Backoff(cancelled, 1h) = %v, want context.Canceled", err)
	}
	if err := Backoff(context.Background(), time.Microsecond, 2); err != nil {
		t.Errorf("Backoff(1µs, attempt 2) = %v, want nil", err)
	}
}
