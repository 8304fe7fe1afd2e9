package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Issue 12 point 4: how close the project's HAProxy config comes to a bare
// HAProxy, and how it stands against nginx and Caddy, all in front of the
// same gRPC server under the same load.

// haproxyBin is one HAProxy binary the yardsticks run.
type haproxyBin struct {
	// label names it in the figures.
	label string
	// path is a name on PATH, or a path from the repository root.
	path string
	// optional binaries are left out, with a note, when not installed;
	// the system's one is required.
	optional bool
}

// haproxyBins are the system's HAProxy (Debian 12's 2.6) and the newer
// ones scripts/setup.sh test installs from Debian's archive.
var haproxyBins = []haproxyBin{
	{label: "system haproxy", path: "haproxy"},
	{label: "bin/haproxy-3.0", path: "bin/haproxy-3.0", optional: true},
	{label: "bin/haproxy-3.2", path: "bin/haproxy-3.2", optional: true},
}

// The yardsticks' figures; those of an HAProxy binary end with its label.
const (
	figDirectRate = "gRPC calls/s direct to the server (yardstick runs)"
	figDirectP99  = "p99 gRPC latency direct to the server (yardstick runs)"
	figNginxRate  = "gRPC calls/s through nginx grpc_pass"
	figNginxCPU   = "nginx CPU per gRPC call (master + workers)"
	figNginxP99   = "p99 gRPC latency through nginx"
	figCaddyRate  = "gRPC calls/s through Caddy reverse_proxy"
	figCaddyCPU   = "Caddy CPU per gRPC call"
	figCaddyP99   = "p99 gRPC latency through Caddy"
)

func figBareRate(b string) string { return "gRPC calls/s through the bare HAProxy config, " + b }
func figBareCPU(b string) string  { return "HAProxy CPU per gRPC call, bare config, " + b }
func figBareP99(b string) string  { return "p99 gRPC latency through the bare HAProxy config, " + b }
func figProjRate(b string) string {
	return "gRPC calls/s through the project's config (every feature on), " + b
}
func figProjCPU(b string) string {
	return "HAProxy CPU per gRPC call, project's config (every feature on), " + b
}
func figProjP99(b string) string {
	return "p99 gRPC latency through the project's config (every feature on), " + b
}
func figProjOverBare(b string) string {
	return "HAProxy CPU per gRPC call, project's config / bare config, " + b
}
func figProjVsPeerRate(b string) string {
	return "gRPC calls/s, project's config / the better of nginx and Caddy, " + b
}
func figProjVsPeerP99(b string) string {
	return "p99 gRPC latency, project's config / the better of nginx and Caddy, " + b
}
func figWithout(b string, f feature) string {
	return "HAProxy CPU per gRPC call without " + f.name + ", " + b
}

// yardstickSpecs are the yardsticks' rows of the table, in order.
func yardstickSpecs() []figure {
	rate := func(name string) figure { return figure{name: name, unit: " calls/s", target: noTarget()} }
	cpu := func(name string) figure { return figure{name: name, unit: " µs", digits: 1, target: noTarget()} }
	p99 := func(name string) figure { return figure{name: name, unit: " ms", digits: 3, target: noTarget()} }
	specs := []figure{
		rate(figDirectRate), p99(figDirectP99),
		rate(figNginxRate), cpu(figNginxCPU), p99(figNginxP99),
		rate(figCaddyRate), cpu(figCaddyCPU), p99(figCaddyP99),
	}
	for _, b := range haproxyBins {
		specs = append(specs,
			rate(figBareRate(b.label)), cpu(figBareCPU(b.label)), p99(figBareP99(b.label)),
			rate(figProjRate(b.label)), cpu(figProjCPU(b.label)), p99(figProjP99(b.label)),
			// The targets: at most 1.25 times the bare config's
			// CPU, and ahead of nginx and Caddy on calls/s and on p99.
			figure{name: figProjOverBare(b.label), digits: 2, target: atMost(1.25)},
			figure{name: figProjVsPeerRate(b.label), digits: 2, target: atLeast(1)},
			figure{name: figProjVsPeerP99(b.label), digits: 2, target: atMost(1)},
		)
		for _, f := range features {
			specs = append(specs, cpu(figWithout(b.label, f)))
		}
	}
	return specs
}

// yardstickKey is the API key every yardstick configuration is sent, and
// the project's config requires; rateLimit is the project's limit per
// client address and 10 s, far above what the load reaches, so that it is
// counted on every call and never refuses one.
const (
	yardstickKey       = "bench-yardstick-key"
	yardstickRateLimit = "1000000000"
)

// measureYardsticks measures, for each HAProxy binary in turn, in
// alternating rounds with the same h2load load against sys's gRPC server:
// the server direct, nginx, Caddy, the bare HAProxy config, the project's
// config (haproxyConfig) with every feature on, and the project's config
// with one feature off, for each feature. fromRepo says haproxyConfig is
// the repository's: a feature line missing from it is then an error, and
// with a config given to try a change only that feature's row.
func measureYardsticks(ctx context.Context, sys *system, root, work, haproxyConfig string, fromRepo bool, benchEnv []string, load unaryLoad, p plan) ([]figure, []string, error) {
	projectCfg, err := os.ReadFile(haproxyConfig)
	if err != nil {
		return nil, nil, err
	}
	nginxVersion, err := toolVersion(ctx, "nginx", "-v")
	if err != nil {
		return nil, nil, fmt.Errorf("nginx (scripts/setup.sh test installs it): %w", err)
	}
	caddyVersion, err := toolVersion(ctx, "caddy", "version")
	if err != nil {
		return nil, nil, fmt.Errorf("caddy (scripts/setup.sh test installs it): %w", err)
	}
	caddyVersion = "Caddy " + caddyVersion // it prints the bare number
	body, err := writeBodies(work)
	if err != nil {
		return nil, nil, err
	}
	md := []string{"x-api-key", yardstickKey}
	withKey := append(slices.Clone(grpcHeaders), "x-api-key: "+yardstickKey)

	nginx, err := startNginx(ctx, work, sys.grpcAddr(), md...)
	if err != nil {
		return nil, nil, err
	}
	defer nginx.stop()
	caddy, err := startCaddy(ctx, work, sys.grpcAddr(), md...)
	if err != nil {
		return nil, nil, err
	}
	defer caddy.stop()

	run := func(addr string, headers []string, px *proxy) func(context.Context, time.Duration) (sample, error) {
		return func(ctx context.Context, d time.Duration) (sample, error) {
			job := h2loadJob{url: "http://" + addr + grpcPath, conns: load.conns, streams: load.streams, duration: d,
				headers: headers, bodyFile: body.grpc, latencyLog: filepath.Join(work, "h2load-latency.log")}
			var extra []group
			if px != nil {
				extra = append(extra, group{name: procProxy, pids: px.cpu.pids})
			}
			return measureH2load(ctx, sys, job, extra...)
		}
	}
	rate, cpu := rateOf, cpuOf(procProxy)
	p99 := func(s sample) float64 { return float64(s.p99) / float64(time.Millisecond) }

	var figs []figure
	details := []string{
		fmt.Sprintf("Yardsticks (issue 12): h2load, 1 thread, %d connections × %d streams in flight, %v per run, GetCodename with an x-api-key header, against the stack's gRPC server; p99 from h2load's per-request log (time from sending to the end of the answer). One group of alternating rounds per HAProxy binary: direct, nginx, Caddy, the bare HAProxy config, the project's config with every feature on, then the project's config without each feature. Proxy CPU is read from /proc by PID: HAProxy's workers (the master's children), nginx's master and workers, Caddy's one process.",
			load.conns, load.streams, p.duration),
		fmt.Sprintf("The project's config with every feature on: the repository's haproxy.cfg (or -haproxy-config) with %s and %s=%s (never reached) set, the bench's raised per-source limits, cleartext to the server. The bare config: one cleartext bind, one `server ... proto h2` line, timeouts, no log, no rules, no checks. nginx: `listen ... http2` (h2c), `grpc_pass grpc://` to an upstream with keepalive, worker_processes auto, no access log. Caddy: `reverse_proxy h2c://`, protocols h1 h2c, no admin endpoint, no automatic HTTPS, no access log.",
			apiKeyEnv, rateLimitEnv, yardstickRateLimit),
		fmt.Sprintf("Yardstick versions: %s; %s.", nginxVersion, caddyVersion),
	}
	var directAll, nginxAll, caddyAll []sample
	for i, b := range haproxyBins {
		binary := b.path
		if strings.Contains(binary, "/") {
			binary = filepath.Join(root, binary)
		}
		if _, err := exec.LookPath(binary); err != nil {
			if !b.optional {
				return nil, nil, fmt.Errorf("%s: %w", b.label, err)
			}
			for _, f := range yardstickSpecs() {
				if strings.HasSuffix(f.name, ", "+b.label) {
					figs = append(figs, notMeasured(f.name, b.label+" is not installed (scripts/setup.sh test installs it)"))
				}
			}
			continue
		}
		version, err := toolVersion(ctx, binary, "-v")
		if err != nil {
			return nil, nil, err
		}
		version = shortHAProxyVersion(version)
		dir := filepath.Join(work, fmt.Sprintf("yardsticks-%d", i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, err
		}
		group, err := startGroup(ctx, sys, b.label, binary, dir, string(projectCfg), fromRepo, benchEnv, md)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.label, err)
		}
		configs := []config[sample]{
			{"direct", run(sys.grpcAddr(), withKey, nil)},
			{"nginx", run(nginx.addr, withKey, nginx)},
			{"Caddy", run(caddy.addr, withKey, caddy)},
			{b.label + " bare", run(group.bare.addr, withKey, group.bare)},
			{b.label + " project", run(group.full.addr, withKey, group.full)},
		}
		for j, f := range features {
			if px := group.without[j]; px != nil {
				headers := withKey
				if slices.Contains(f.unset, apiKeyEnv) {
					// No key required: none sent, as by the clients of such a deployment.
					headers = grpcHeaders
				}
				configs = append(configs, config[sample]{b.label + " without " + f.name, run(px.addr, headers, px)})
			}
		}
		samples, err := alternate(ctx, p.rounds, p.duration, p.warmUp, configs...)
		if stopErr := group.stop(); err == nil && stopErr != nil {
			err = stopErr
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.label, err)
		}
		direct, ng, cd, bare, full := samples[0], samples[1], samples[2], samples[3], samples[4]
		directAll, nginxAll, caddyAll = append(directAll, direct...), append(nginxAll, ng...), append(caddyAll, cd...)
		fullCPU := each(full, cpu)
		better := func(pick func(sample) float64, best func(a, b float64) float64) []float64 {
			out := make([]float64, len(ng))
			for r := range out {
				out[r] = best(pick(ng[r]), pick(cd[r]))
			}
			return out
		}
		figs = append(figs,
			measured(figBareRate(b.label), each(bare, rate), version),
			measured(figBareCPU(b.label), each(bare, cpu), version),
			measured(figBareP99(b.label), each(bare, p99), version),
			measured(figProjRate(b.label), each(full, rate), version),
			measured(figProjCPU(b.label), fullCPU, version),
			measured(figProjP99(b.label), each(full, p99), version),
			measured(figProjOverBare(b.label), pairedRatio(fullCPU, each(bare, cpu)), version),
			measured(figProjVsPeerRate(b.label), pairedRatio(each(full, rate), better(rate, math.Max)), version),
			measured(figProjVsPeerP99(b.label), pairedRatio(each(full, p99), better(p99, math.Min)), version),
		)
		costs := []string{}
		k := 5
		for j, f := range features {
			if group.without[j] == nil {
				figs = append(figs, notMeasured(figWithout(b.label, f), group.why[j]))
				continue
			}
			without := each(samples[k], cpu)
			k++
			saved := median(pairedDiff(fullCPU, without))
			figs = append(figs, measured(figWithout(b.label, f), without, fmt.Sprintf("every feature on minus this: %+.1f µs; %s", saved, version)))
			costs = append(costs, fmt.Sprintf("%s %.1f", f.name, saved))
		}
		details = append(details,
			fmt.Sprintf("%s (%s), medians: calls/s direct %.0f, nginx %.0f, Caddy %.0f, bare %.0f, project %.0f; proxy CPU µs per call nginx %.1f, Caddy %.1f, bare %.1f, project %.1f; p99 ms direct %.3f, nginx %.3f, Caddy %.3f, bare %.3f, project %.3f.",
				b.label, version,
				median(each(direct, rate)), median(each(ng, rate)), median(each(cd, rate)), median(each(bare, rate)), median(each(full, rate)),
				median(each(ng, cpu)), median(each(cd, cpu)), median(each(bare, cpu)), median(fullCPU),
				median(each(direct, p99)), median(each(ng, p99)), median(each(cd, p99)), median(each(bare, p99)), median(each(full, p99))),
			fmt.Sprintf("%s: HAProxy CPU µs per call saved by turning off one feature of the project's config (median of the paired differences): %s.",
				b.label, strings.Join(costs, "; ")),
		)
	}
	across := fmt.Sprintf("median over every round of the %d HAProxy groups", len(directAll)/max(1, p.rounds))
	figs = append(figs,
		measured(figDirectRate, each(directAll, rate), across),
		measured(figDirectP99, each(directAll, p99), across),
		measured(figNginxRate, each(nginxAll, rate), nginxVersion),
		measured(figNginxCPU, each(nginxAll, cpu), nginxVersion),
		measured(figNginxP99, each(nginxAll, p99), nginxVersion),
		measured(figCaddyRate, each(caddyAll, rate), caddyVersion),
		measured(figCaddyCPU, each(caddyAll, cpu), caddyVersion),
		measured(figCaddyP99, each(caddyAll, p99), caddyVersion),
	)
	return figs, details, nil
}

// procProxy names the CPU group of the proxy under measurement.
const procProxy = "proxy"

// haproxyGroup is one binary's HAProxy processes: the bare config, the
// project's with every feature, and the project's without each feature
// (nil where that variant could not be made, why[i] saying why).
type haproxyGroup struct {
	bare, full *proxy
	without    []*proxy
	why        []string
}

// startGroup starts binary with the bare config, the project's config
// (cfg) with every feature on, and a variant of it without each feature,
// written into dir.
func startGroup(ctx context.Context, sys *system, label, binary, dir, cfg string, fromRepo bool, benchEnv, md []string) (_ *haproxyGroup, err error) {
	g := &haproxyGroup{without: make([]*proxy, len(features)), why: make([]string, len(features))}
	defer func() {
		if err != nil {
			err = errors.Join(err, g.stop())
		}
	}()
	if g.bare, err = startBareHAProxy(ctx, label+" bare", binary, dir, sys.grpcAddr(), md...); err != nil {
		return nil, err
	}
	projectCfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(projectCfg, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	every := []string{apiKeyEnv + "=" + yardstickKey, rateLimitEnv + "=" + yardstickRateLimit}
	if g.full, err = startProjectHAProxy(ctx, label+" project", binary, projectCfg, sys, benchEnv, every, md...); err != nil {
		return nil, err
	}
	for i, f := range features {
		variant, err := withoutLines(cfg, f.drop)
		if err != nil {
			if fromRepo {
				return nil, fmt.Errorf("haproxy/haproxy.cfg without %s: %w", f.name, err)
			}
			g.why[i] = "the config tried has no such lines: " + err.Error()
			continue
		}
		file := filepath.Join(dir, fmt.Sprintf("haproxy-without-%d.cfg", i))
		if err := os.WriteFile(file, []byte(variant), 0o644); err != nil {
			return nil, err
		}
		var env []string
		for _, kv := range every {
			if name, _, _ := strings.Cut(kv, "="); !slices.Contains(f.unset, name) {
				env = append(env, kv)
			}
		}
		callMD := md
		if slices.Contains(f.unset, apiKeyEnv) {
			callMD = nil
		}
		if g.without[i], err = startProjectHAProxy(ctx, label+" without "+f.name, binary, file, sys, benchEnv, env, callMD...); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// stop stops every HAProxy of the group.
func (g *haproxyGroup) stop() error {
	var errs []error
	for _, p := range append([]*proxy{g.bare, g.full}, g.without...) {
		if p != nil {
			if err := p.stop(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// haproxyVersion finds the version in `haproxy -v`'s first line.
var haproxyVersion = regexp.MustCompile(`HAProxy version (\S+)`)

func shortHAProxyVersion(line string) string {
	if m := haproxyVersion.FindStringSubmatch(line); m != nil {
		return "HAProxy " + m[1]
	}
	return line
}
