package deploy

import (
	"maps"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var (
	// certPath is a file a deploy file takes from the certificates'
	// folder, as mounted (/certs) or as the run command keeps it
	// (.state/tls, in the instructions for creating the Secrets).
	certPath = regexp.MustCompile(`(?:/certs|\.state/tls)/([A-Za-z0-9*][A-Za-z0-9._*-]*)`)
	// clusterName is what may follow a Service's name in a DNS name:
	// <namespace>.svc[.<cluster domain>].
	clusterName = regexp.MustCompile(`^[^.]+\.svc(\.[^.]+)*\.?$`)
)

// TestFilesParse fails when a deploy file is not YAML, or a manifest is
// not a Kubernetes object.
func TestFilesParse(t *testing.T) {
	for _, f := range loadFiles(t) {
		if len(f.docs) == 0 {
			t.Errorf("%s: no YAML document", f.path)
		}
		for _, doc := range f.docs {
			var head struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Services   map[string]any
			}
			if err := doc.Decode(&head); err != nil {
				t.Errorf("%s: %v", f.path, err)
				continue
			}
			if f.compose() && len(head.Services) == 0 {
				t.Errorf("%s: a Compose file without services", f.path)
			}
			if !f.compose() && (head.APIVersion == "" || head.Kind == "") {
				t.Errorf("%s: a manifest without apiVersion and kind", f.path)
			}
		}
	}
}

// TestEnvironmentVariablesAreRead fails when a deploy file names a
// CODENAME_ variable that no binary and not haproxy.cfg reads, or gives a
// process one that this process does not read.
func TestEnvironmentVariablesAreRead(t *testing.T) {
	code := readCode(t)
	for _, f := range loadFiles(t) {
		for _, v := range variable.FindAllString(f.text, -1) {
			if !code.vars[v] {
				t.Errorf("%s names %s, which neither cmd/, internal/ nor haproxy/haproxy.cfg reads", f.path, v)
			}
		}
	}
	for _, p := range readSystem(t, code).procs {
		for v := range p.env {
			if strings.HasPrefix(v, "CODENAME_") && !code.read[p.kind][v] {
				t.Errorf("%s sets %s, which %s does not read", p, v, p.kind)
			}
		}
	}
}

// TestCertificateFilesAreIssued fails when a deploy file takes a
// certificate file that the test harness does not write, or the CA's key,
// which no process needs; or when a process names files under /certs
// without mounting them.
func TestCertificateFilesAreIssued(t *testing.T) {
	h := harnessCerts(t)
	t.Logf("the harness writes %v", slices.Sorted(maps.Keys(h.files)))
	for _, f := range loadFiles(t) {
		for _, m := range certPath.FindAllStringSubmatch(f.text, -1) {
			switch {
			case m[1] == h.caKey:
				t.Errorf("%s: %s is the CA's private key: no process needs it, keep it out of the deployment", f.path, m[0])
			case !h.files[m[1]]:
				t.Errorf("%s: %s is not a file the test harness writes", f.path, m[0])
			}
		}
	}
	for _, p := range readSystem(t, readCode(t)).procs {
		for v, val := range p.env {
			if strings.HasPrefix(val, "/certs/") && !p.certs {
				t.Errorf("%s: %s=%s, but nothing (from a Secret, in Kubernetes) is mounted at /certs", p, v, val)
			}
		}
	}
}

// TestDiscoveryMatchesServices fails when a name and port by which HAProxy
// or a gateway finds its replicas is not a headless Service (a Compose
// service) running those replicas on that port, or not a name the
// certificates are issued for.
func TestDiscoveryMatchesServices(t *testing.T) {
	code := readCode(t)
	s := readSystem(t, code)
	certNames := harnessCerts(t).names
	type target struct {
		from  process
		name  string // the variable
		value string // name:port
		want  string // the kind of process it should find
	}
	var targets []target
	for _, p := range s.procs {
		switch p.kind {
		case haproxyKind:
			for v, want := range map[string]string{"CODENAME_GRPC_DNS": serverKind, "CODENAME_GATEWAY_DNS": gatewayKind} {
				if p.env[v] == "" {
					t.Errorf("%s: %s unset: HAProxy finds the replicas in DNS, as in the host tests", p, v)
					continue
				}
				targets = append(targets, target{p, v, p.env[v], want})
			}
		case gatewayKind:
			v := code.envOf(t, gatewayKind, "grpc-addr")
			addr, ok := strings.CutPrefix(p.env[v], "dns:///")
			if !ok || strings.Contains(addr, ",") {
				t.Errorf("%s: %s=%q, want dns:///name:port, as in the host tests", p, v, p.env[v])
				continue
			}
			targets = append(targets, target{p, v, addr, serverKind})
		}
	}
	if len(targets) == 0 {
		t.Fatal("no process finds replicas by DNS")
	}
	for _, tg := range targets {
		host, portText, err := net.SplitHostPort(tg.value)
		port, perr := strconv.Atoi(portText)
		if err != nil || perr != nil {
			t.Errorf("%s: %s=%q, want name:port", tg.from, tg.name, tg.value)
			continue
		}
		label, rest, _ := strings.Cut(host, ".")
		if !certNames[label] {
			t.Errorf("%s: %s=%q: %s is not a name the harness issues a certificate for (%v), so not the one the host tests use", tg.from, tg.name, tg.value, label, certNames)
		}
		var found []process
		if tg.from.compose {
			if rest != "" {
				t.Errorf("%s: %s=%q, want a Compose service's name", tg.from, tg.name, tg.value)
			}
			for _, p := range s.procs {
				if p.compose && p.file.path == tg.from.file.path && p.name == host {
					found = append(found, p)
				}
			}
		} else {
			if rest != "" && !clusterName.MatchString(rest) {
				t.Errorf("%s: %s=%q, want a Service's name, alone or followed by .<namespace>.svc[.<cluster domain>]", tg.from, tg.name, tg.value)
			}
			svc, ok := s.services[label]
			switch {
			case !ok:
				t.Errorf("%s: %s=%q, but there is no Service %s", tg.from, tg.name, tg.value, label)
				continue
			case !svc.headless:
				t.Errorf("%s: Service %s is not headless (clusterIP: None): its name would not list the replicas", svc.file.path, label)
			}
			targetPort, ok := svc.ports[port]
			if !ok {
				t.Errorf("%s: %s=%q, but Service %s has no port %d", tg.from, tg.name, tg.value, label, port)
			}
			for _, p := range s.procs {
				if !p.compose && len(svc.selector) > 0 && selects(svc.selector, p.labels) {
					found = append(found, p)
					if tp, ok := resolvePort(p, targetPort); targetPort != nil && (!ok || tp != port) {
						t.Errorf("%s: Service %s sends port %d to %v, but a headless Service's clients dial the pod on %d", svc.file.path, label, port, targetPort, port)
					}
				}
			}
		}
		if len(found) == 0 {
			t.Errorf("%s: %s=%q finds no process", tg.from, tg.name, tg.value)
		}
		for _, p := range found {
			if p.kind != tg.want {
				t.Errorf("%s: %s=%q finds %s, which runs %s, want %s", tg.from, tg.name, tg.value, p, p.kind, tg.want)
				continue
			}
			v := code.envOf(t, p.kind, "addr")
			if _, listen := listenPort(p.env[v]); listen != port {
				t.Errorf("%s: %s=%q, but %s listens on %s=%q", tg.from, tg.name, tg.value, p, v, p.env[v])
			}
		}
	}
}

// TestProbesOnAdminHealthz fails when a server's or gateway's readiness
// probe is not GET /healthz on its admin listener, which serves it in
// plain HTTP (cmd/codename-server, server.Serve's MetricsListener;
// cmd/codename-gateway's adminHandler), or a liveness probe is on neither
// of its listeners.
func TestProbesOnAdminHealthz(t *testing.T) {
	code := readCode(t)
	checked := 0
	for _, p := range readSystem(t, code).procs {
		if p.compose || p.kind == haproxyKind {
			continue
		}
		checked++
		adminVar, addrVar := code.envOf(t, p.kind, "admin-addr"), code.envOf(t, p.kind, "addr")
		everywhere, admin := listenPort(p.env[adminVar])
		_, listen := listenPort(p.env[addrVar])
		if admin == 0 || !everywhere {
			t.Errorf("%s: %s=%q, want :port, so that the kubelet reaches it on the pod's address", p, adminVar, p.env[adminVar])
			continue
		}
		if admin == listen {
			t.Errorf("%s: the admin listener and %s share port %d", p, addrVar, admin)
		}
		ready := p.probes["readiness"]
		if ready == nil || ready.HTTPGet == nil {
			t.Errorf("%s: no readiness probe by HTTP GET", p)
		} else if port, ok := resolvePort(p, ready.HTTPGet.Port); ready.HTTPGet.Path != "/healthz" || !ok || port != admin {
			t.Errorf("%s: readiness probe GET %s on port %v, want /healthz on the admin listener, %s=%q", p, ready.HTTPGet.Path, ready.HTTPGet.Port, adminVar, p.env[adminVar])
		}
		live := p.probes["liveness"]
		switch {
		case live == nil:
		case live.HTTPGet != nil:
			if port, ok := resolvePort(p, live.HTTPGet.Port); live.HTTPGet.Path != "/healthz" || !ok || port != admin {
				t.Errorf("%s: liveness probe GET %s on port %v, want /healthz on the admin listener, %s=%q", p, live.HTTPGet.Path, live.HTTPGet.Port, adminVar, p.env[adminVar])
			}
		case live.TCPSocket != nil:
			if port, ok := resolvePort(p, live.TCPSocket.Port); !ok || (port != admin && port != listen) {
				t.Errorf("%s: liveness probe on port %v, on which it does not listen", p, live.TCPSocket.Port)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no server or gateway in the Kubernetes manifests")
	}
}

// TestComposeSharesTheCores fails when a server or gateway of a Compose
// file is not told how many processes share the host's cores: every
// replica of every service of the file, as codename-stack tells its
// children (internal/tuning), since Compose gives a container every core
// unless asked otherwise.
func TestComposeSharesTheCores(t *testing.T) {
	code := readCode(t)
	procs := readSystem(t, code).procs
	total := map[string]int{}
	for _, p := range procs {
		if p.compose {
			total[p.file.path] += p.replicas
		}
	}
	checked := 0
	for _, p := range procs {
		if !p.compose || p.kind == haproxyKind {
			continue
		}
		checked++
		v := code.envOf(t, p.kind, "cpu-share")
		if got, want := p.env[v], strconv.Itoa(total[p.file.path]); got != want {
			t.Errorf("%s: %s=%q, want %s, the processes of %s", p, v, got, want, p.file.path)
		}
	}
	if checked == 0 {
		t.Fatal("found no server or gateway in the Compose file")
	}
}
