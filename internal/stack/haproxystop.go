package stack

import "regexp"

// haproxyStopLine matches what HAProxy's master says, on every version we
// run (2.6, 3.0, 3.2), when it is stopped as it should be: SIGTERM, which
// it passes on to its workers. It reports each worker killed by that
// signal as an ALERT (exit code 143, "Terminated"), and its own exit as
// WARNINGs, after the version notices it prints before its first
// warning. No signal stops it in silence: SIGUSR1 (soft stop) adds a
// WARNING for every proxy, and -q would also hide the alerts that matter,
// such as a worker that crashed. So when the stack itself stops HAProxy,
// these lines, and only these, are dropped: a Ctrl-C prints nothing
// alarming, and anything else HAProxy says still shows.
var haproxyStopLine = regexp.MustCompile(`^\[(NOTICE|WARNING|ALERT)\] +\(\d+\) : (` +
	`haproxy version is .*|` +
	`path to executable is .*|` +
	`Exiting Master process\.\.\.|` +
	`(Current|Former) worker \(?\d+\)? exited with code 143 \(Terminated\)|` +
	`All workers exited\. Exiting\.\.\. \(0\))$`)
