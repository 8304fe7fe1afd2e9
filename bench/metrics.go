package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// metrics is one scrape of a Prometheus text endpoint: each sample line's
// name with its labels, as written, mapped to its value.
type metrics map[string]float64

// scrape reads the Prometheus metrics that the gRPC server serves over
// HTTP/1.1 on its own port.
func scrape(ctx context.Context, addr string) (metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// sum adds the samples of metric name whose labels include every one of
// labels (each written as key="value").
func (m metrics) sum(name string, labels ...string) float64 {
	var total float64
	for k, v := range m {
		rest, ok := strings.CutPrefix(k, name)
		if !ok || (rest != "" && rest[0] != '{') {
			continue
		}
		all := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				all = false
				break
			}
		}
		if all {
			total += v
		}
	}
	return total
}

// handled counts the calls of a gRPC method the server finished, those that
// ended OK and those that did not: h2load sees only HTTP statuses, and a
// gRPC error travels with status 200, so this is where an error shows.
func (m metrics) handled(method string) (ok, failed float64) {
	const name = "grpc_server_handled_total"
	all := m.sum(name, `grpc_method="`+method+`"`)
	ok = m.sum(name, `grpc_method="`+method+`"`, `grpc_code="OK"`)
	return ok, all - ok
}
