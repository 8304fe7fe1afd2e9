package e2e

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/codename-gateway/codename-gateway/internal/poll"
)

// errStatsLocked is a stats page that asks for a password (the tests of
// that set one).
var errStatsLocked = errors.New("HAProxy's stats page asks for a password")

// statsClient reads HAProxy's stats page.
var statsClient = &http.Client{Timeout: 5 * time.Second}

// statsCSV reads HAProxy's stats page at addr as CSV: one map of column
// name to value per proxy and server line.
func statsCSV(addr string) ([]map[string]string, error) {
	resp, err := statsClient.Get("http://" + addr + "/stats;csv")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, errStatsLocked
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(body), "# "))).ReadAll()
	if err != nil || len(rows) < 2 {
		return nil, fmt.Errorf("stats CSV: %v\n%s", err, body)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, name := range rows[0] {
			if i < len(r) {
				m[name] = r[i]
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// statsRows is statsCSV of the system's stats page, failing the test on
// any error.
func (s *system) statsRows(t *testing.T) []map[string]string {
	t.Helper()
	rows, err := statsCSV(s.cfg.StatsAddr)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// backendSessions returns how many requests each HAProxy backend has been
// given (the stats page's stot), to tell whether a request reached one.
func (s *system) backendSessions(t *testing.T) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, r := range s.statsRows(t) {
		if r["svname"] == "BACKEND" && strings.HasPrefix(r["pxname"], "be_") {
			n, _ := strconv.Atoi(r["stot"])
			got[r["pxname"]] = n
		}
	}
	return got
}

// unchecked reads the stats once and names the backend servers that are
// not UP after a passed layer-7 check: of servers ({backend, server}),
// each of which must be listed, or with none given, of every server line
// HAProxy checks (not one in maintenance, as an unresolved
// server-template slot is). A stats page that asks for a password cannot
// be read, and is taken as passed.
func (s *system) unchecked(servers ...[2]string) error {
	rows, err := statsCSV(s.cfg.StatsAddr)
	if errors.Is(err, errStatsLocked) {
		return nil
	}
	if err != nil {
		return err
	}
	state := map[[2]string]string{}
	var pending []string
	for _, r := range rows {
		px, sv, st, check := r["pxname"], r["svname"], r["status"], r["check_status"]
		state[[2]string{px, sv}] = st + " " + check
		if len(servers) > 0 || !strings.HasPrefix(px, "be_") || sv == "BACKEND" || strings.HasPrefix(st, "MAINT") || st == "no check" {
			continue
		}
		if st != "UP" || check != "L7OK" {
			pending = append(pending, fmt.Sprintf("%s/%s %s (%s)", px, sv, st, check))
		}
	}
	for _, sv := range servers {
		if got := state[sv]; got != "UP L7OK" {
			pending = append(pending, fmt.Sprintf("%s/%s %q", sv[0], sv[1], got))
		}
	}
	if len(pending) > 0 {
		return fmt.Errorf("not UP after a passed check: %s", strings.Join(pending, ", "))
	}
	return nil
}

// waitChecked waits until unchecked finds nothing, within limit; an
// HAProxy started alone that exits ends the wait.
func (s *system) waitChecked(limit time.Duration, servers ...[2]string) error {
	return poll.Check(limit, func() error {
		if s.edge != nil && s.edge.exited() {
			return fmt.Errorf("HAProxy exited: %w", poll.ErrGiveUp)
		}
		return s.unchecked(servers...)
	})
}
