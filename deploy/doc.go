// Package deploy holds the files that run the system outside the run
// command: compose.yaml for Docker Compose on one host, and kubernetes/
// for a cluster. It has no code; its test checks that those files use
// only what the code reads and the tests exercise: the environment
// variables of the binaries and haproxy/haproxy.cfg, the certificate files
// the test harness issues, discovery names and ports that match the
// Services they point at, and readiness probes on the admin listeners'
// /healthz. prometheus/ holds the scrape config, alert and recording
// rules and their unit tests, which prometheus_test.go runs with promtool.
package deploy
