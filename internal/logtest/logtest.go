// Package logtest records what a component logs through log/slog, so that a
// test can check which records were logged and with what attributes: the
// one recorder behind the server's and the gateway's log tests.
package logtest

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// WaitLimit bounds WaitFor: far beyond the time a record takes to be
// logged, so that only a record that never comes fails the test.
const WaitLimit = 10 * time.Second

// Recorder is a slog.Handler that keeps every record it is given. Its
// zero value is ready; it is safe for concurrent use. It keeps no attributes
// or groups of derived loggers (With), only the records' own attributes.
type Recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *Recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *Recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *Recorder) WithGroup(string) slog.Handler            { return r }

func (r *Recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// Take returns the records logged since the last Take and forgets them.
func (r *Recorder) Take() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	recs := r.records
	r.records = nil
	return recs
}

// Find returns the records with message msg logged so far.
func (r *Recorder) Find(msg string) []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var found []slog.Record
	for _, rec := range r.records {
		if rec.Message == msg {
			found = append(found, rec)
		}
	}
	return found
}

// Has reports whether a record with message msg has been logged.
func (r *Recorder) Has(msg string) bool {
	return len(r.Find(msg)) > 0
}

// Count is how many records with message msg and all the given string
// attributes have been logged so far.
func (r *Recorder) Count(msg string, attrs map[string]string) int {
	n := 0
	for _, rec := range r.Find(msg) {
		if matches(rec, attrs) {
			n++
		}
	}
	return n
}

// WaitFor waits until a record with message msg and all the given string
// attributes has been logged, and fails the test if none is within
// WaitLimit: calls log as they finish, after the client has its answer.
func (r *Recorder) WaitFor(t testing.TB, msg string, attrs map[string]string) {
	t.Helper()
	poll.For(t, fmt.Sprintf("a log record %q with %v", msg, attrs), WaitLimit, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		if slices.ContainsFunc(r.records, func(rec slog.Record) bool { return rec.Message == msg && matches(rec, attrs) }) {
			return nil
		}
		return fmt.Errorf("last: %d records", len(r.records))
	})
}

// Attrs returns a record's attributes by key.
func Attrs(rec slog.Record) map[string]slog.Value {
	m := map[string]slog.Value{}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value
		return true
	})
	return m
}

// matches reports whether rec has every attribute of want, as a string.
func matches(rec slog.Record, want map[string]string) bool {
	n := 0
	rec.Attrs(func(a slog.Attr) bool {
		if v, ok := want[a.Key]; ok && a.Value.String() == v {
			n++
		}
		return true
	})
	return n == len(want)
}
