package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
)

// recorder is a slog.Handler that keeps the records it is given.
type recorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recorder) WithGroup(string) slog.Handler            { return r }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}

// waitFor waits until a record with message msg and all the given string
// attributes has been logged, and fails the test if none is within
// waitTimeout.
func (r *recorder) waitFor(t *testing.T, msg string, attrs map[string]string) {
	t.Helper()
	eventually(t, fmt.Sprintf("a log record %q with %v", msg, attrs), func() (bool, string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.ContainsFunc(r.records, func(rec slog.Record) bool { return matches(rec, msg, attrs) }), fmt.Sprintf("%d records", len(r.records))
	})
}

// find returns the records with message msg logged so far.
func (r *recorder) find(msg string) []slog.Record {
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

// attr returns the value of rec's attribute key as a string.
func attr(rec slog.Record, key string) (value string, ok bool) {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			value, ok = a.Value.String(), true
			return false
		}
		return true
	})
	return value, ok
}

// count is how many records with message msg and all the given string
// attributes have been logged so far.
func (r *recorder) count(msg string, attrs map[string]string) int {
	n := 0
	for _, rec := range r.find(msg) {
		if matches(rec, msg, attrs) {
			n++
		}
	}
	return n
}

func (r *recorder) has(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.records, func(rec slog.Record) bool { return rec.Message == msg })
}

func matches(rec slog.Record, msg string, want map[string]string) bool {
	if rec.Message != msg {
		return false
	}
	n := 0
	rec.Attrs(func(a slog.Attr) bool {
		if v, ok := want[a.Key]; ok && a.Value.String() == v {
			n++
		}
		return true
	})
	return n == len(want)
}
