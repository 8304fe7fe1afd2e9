package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// h2loadJob is one h2load run: a URL, how hard to push it, and what to send.
type h2loadJob struct {
	url string
	// conns HTTP/2 connections, each with up to streams requests in flight.
	conns, streams int
	duration       time.Duration
	// headers and body (a file) make a gRPC request out of h2load's GET.
	headers  []string
	bodyFile string
	// latencyLog, if set, is a file for h2load's per-request log, from
	// which the run's p99 latency is read (h2load itself reports only the
	// mean and the spread).
	latencyLog string
}

// h2loadResult is what h2load reports of a run.
type h2loadResult struct {
	// succeeded counts requests answered with a 2xx status.
	succeeded int
	// failed counts requests that failed, errored or timed out.
	failed  int
	seconds float64
	// cpu is the CPU time h2load itself used, in seconds: the load
	// generator shares the two cores with what it measures.
	cpu float64
	// p99 is the 99th percentile of the requests' times (from sending to
	// the end of the response), when the job asked for a latency log.
	p99 time.Duration
}

// The lines of h2load's summary that matter here.
var (
	h2loadFinished = regexp.MustCompile(`finished in ([0-9.]+)(s|ms)`)
	h2loadRequests = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2loadStatus   = regexp.MustCompile(`status codes: (\d+) 2xx`)
)

// run runs h2load in cleartext HTTP/2 (prior knowledge, as gRPC clients
// and HAProxy's h2c listener speak it), with one thread: there are two
// cores, and the processes under test need them more.
func (j h2loadJob) run(ctx context.Context) (h2loadResult, error) {
	args := []string{
		"-t", "1",
		"-c", strconv.Itoa(j.conns),
		"-m", strconv.Itoa(j.streams),
		"-D", fmt.Sprintf("%dms", j.duration.Milliseconds()),
	}
	for _, h := range j.headers {
		args = append(args, "-H", h)
	}
	if j.bodyFile != "" {
		args = append(args, "-d", j.bodyFile)
	}
	if j.latencyLog != "" {
		args = append(args, "--log-file", j.latencyLog)
	}
	args = append(args, j.url)
	cmd := exec.CommandContext(ctx, "h2load", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return h2loadResult{}, fmt.Errorf("h2load %v: %w\n%s", args, err, out)
	}
	fin, req, st := h2loadFinished.FindSubmatch(out), h2loadRequests.FindSubmatch(out), h2loadStatus.FindSubmatch(out)
	if fin == nil || req == nil || st == nil {
		return h2loadResult{}, fmt.Errorf("h2load %v: unexpected output:\n%s", args, out)
	}
	r := h2loadResult{cpu: (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()}
	r.seconds, _ = strconv.ParseFloat(string(fin[1]), 64)
	if string(fin[2]) == "ms" {
		r.seconds /= 1000
	}
	succeeded, _ := strconv.Atoi(string(req[1]))
	ok2xx, _ := strconv.Atoi(string(st[1]))
	// h2load's "succeeded" means the exchange completed; only a 2xx
	// answer is a success here.
	r.succeeded = min(succeeded, ok2xx)
	for _, f := range req[2:] {
		n, _ := strconv.Atoi(string(f))
		r.failed += n
	}
	r.failed += succeeded - r.succeeded
	if r.succeeded == 0 {
		return r, fmt.Errorf("h2load %v: no request succeeded:\n%s", args, out)
	}
	if j.latencyLog != "" {
		if r.p99, err = logPercentile(j.latencyLog, 0.99); err != nil {
			return r, fmt.Errorf("h2load %v: %w", args, err)
		}
	}
	return r, nil
}

// logPercentile reads an h2load --log-file (one request a line: start
// time in µs, HTTP status, µs until the end of the response, separated by
// tabs), removes it, and returns the q-quantile of the requests' times.
func logPercentile(path string, q float64) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	if err := os.Remove(path); err != nil {
		return 0, err
	}
	var times []time.Duration
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) < 3 {
			return 0, fmt.Errorf("%s: unexpected line %q", path, line)
		}
		us, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: unexpected line %q", path, line)
		}
		times = append(times, time.Duration(us)*time.Microsecond)
	}
	if len(times) == 0 {
		return 0, fmt.Errorf("%s: no request logged", path)
	}
	slices.Sort(times)
	return percentile(times, q), nil
}

// grpcHeaders make h2load's request a gRPC call: gRPC is a POST whose
// content type says gRPC and which accepts trailers (h2load turns a
// request with a body into a POST).
var grpcHeaders = []string{"content-type: application/grpc", "te: trailers"}

// nameRequest is what every unary call measured asks for.
var nameRequest = &codenamev1.NameRequest{Category: "science"}

// bodies are the files h2load sends as the body of a GetCodename call
// carrying nameRequest: for gRPC and gRPC-Web, one length-prefixed protobuf
// message, uncompressed; for Connect, the message in protobuf's JSON
// mapping, unframed.
type bodies struct{ grpc, json string }

// writeBodies writes the bodies into dir.
func writeBodies(dir string) (bodies, error) {
	msg, err := proto.Marshal(nameRequest)
	if err != nil {
		return bodies{}, err
	}
	js, err := protojson.Marshal(nameRequest)
	if err != nil {
		return bodies{}, err
	}
	b := bodies{grpc: filepath.Join(dir, "name-request.grpc"), json: filepath.Join(dir, "name-request.json")}
	return b, errors.Join(os.WriteFile(b.grpc, grpcFrame(0, msg), 0o644), os.WriteFile(b.json, js, 0o644))
}

// grpcFrame frames payload as gRPC over HTTP/2 and gRPC-Web do: a flag
// byte (0 for a message, uncompressed; 0x80 for gRPC-Web's trailers), then
// a 4-byte big-endian length.
func grpcFrame(flag byte, payload []byte) []byte {
	f := make([]byte, 5, 5+len(payload))
	f[0] = flag
	binary.BigEndian.PutUint32(f[1:], uint32(len(payload)))
	return append(f, payload...)
}
