package progress

import (
	"strings"
	"testing"
	"time"
)

// TestLinesAreLines: off a terminal, progress is whole lines, never a
// carriage return, throttled, the last one says where it finished, and
// none is printed twice.
func TestLinesAreLines(t *testing.T) {
	var out strings.Builder
	b := Lines(&out, 100, "rebuilding", time.Hour)
	for i := 1; i <= 100; i++ {
		b.Set(i)
	}
	b.Describe("rebuilt")
	b.Finish()
	b.Finish()
	got := out.String()
	if strings.Contains(got, "\r") {
		t.Errorf("output has a carriage return: %q", got)
	}
	if want := "rebuilding: 1/100 (1%)\nrebuilt: 100/100 (100%)\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
	out.Reset()
	s := Lines(&out, -1, "listing", 0)
	s.Add(2)
	s.Add(3)
	s.Finish()
	if want := "listing: 2\nlisting: 5\n"; out.String() != want {
		t.Errorf("count output = %q, want %q", out.String(), want)
	}
}
