package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// The unary call measured, GetCodename, as REST and on the gRPC path
// (gRPC, gRPC-Web and Connect).
const (
	restPath = "/v1/codename?category=science"
	grpcPath = codenamev1.CodenameCreator_GetCodename_FullMethodName
)

// unaryLoad says how hard h2load pushes: the same for every configuration.
type unaryLoad struct {
	conns, streams int
}

// measureUnary measures unary GetCodename five ways, in alternating
// rounds, with the same h2load settings: gRPC direct to the server, gRPC
// through HAProxy, and through HAProxy and the gateway REST (GET
// /v1/codename), gRPC-Web and Connect JSON (POST on the gRPC path). sys's
// hops behind HAProxy are cleartext; tlsSys is a second stack whose hops
// are TLS, and the same gRPC and REST calls through its HAProxy run in the
// same rounds, so that TLS is weighed against cleartext side by side
// (issue 11 point 7). coSys is a third stack, the gateway inside the
// server (co-located), whose REST calls run in the same rounds too, so that
// the two gateway modes stand side by side against the same direct gRPC
// figure (issue 15 point 5). sys alone stays the reference of the figures
// that do not name TLS or the co-located mode.
func measureUnary(ctx context.Context, sys, tlsSys, coSys *system, load unaryLoad, p plan, workDir string) ([]figure, []string, error) {
	body, err := writeBodies(workDir)
	if err != nil {
		return nil, nil, err
	}
	// h2load only sees HTTP statuses; these make sure that what it gets
	// are real answers before any load, and the server's own counters
	// check every call after each run.
	if err := checkGRPC(ctx, sys.grpcAddr()); err != nil {
		return nil, nil, fmt.Errorf("direct: %w", err)
	}
	if err := checkGRPC(ctx, sys.proxyAddr()); err != nil {
		return nil, nil, fmt.Errorf("through HAProxy: %w", err)
	}
	if err := checkGRPC(ctx, tlsSys.proxyAddr()); err != nil {
		return nil, nil, fmt.Errorf("through HAProxy, TLS backends: %w", err)
	}
	restURL := "http://" + sys.proxyAddr() + restPath
	if err := checkREST(ctx, restURL); err != nil {
		return nil, nil, err
	}
	tlsRESTURL := "http://" + tlsSys.proxyAddr() + restPath
	if err := checkREST(ctx, tlsRESTURL); err != nil {
		return nil, nil, fmt.Errorf("TLS backends: %w", err)
	}
	coRESTURL := "http://" + coSys.proxyAddr() + restPath
	if err := checkREST(ctx, coRESTURL); err != nil {
		return nil, nil, fmt.Errorf("co-located gateway: %w", err)
	}

	browserURL := "http://" + sys.proxyAddr() + grpcPath
	if err := checkGRPCWeb(ctx, browserURL, body.grpc); err != nil {
		return nil, nil, fmt.Errorf("gRPC-Web: %w", err)
	}
	if err := checkConnect(ctx, browserURL, body.json); err != nil {
		return nil, nil, fmt.Errorf("Connect: %w", err)
	}
	run := func(sys *system, url string, headers []string, bodyFile string) func(context.Context, time.Duration) (sample, error) {
		return func(ctx context.Context, d time.Duration) (sample, error) {
			job := h2loadJob{url: url, conns: load.conns, streams: load.streams, duration: d, headers: headers, bodyFile: bodyFile}
			return measureH2load(ctx, sys, job)
		}
	}
	// HAProxy's listener is cleartext in both stacks (h2load speaks h2c to
	// it); only the hops behind it differ.
	samples, err := alternate(ctx, p.rounds, p.duration, p.warmUp,
		config[sample]{"gRPC direct", run(sys, "http://"+sys.grpcAddr()+grpcPath, grpcHeaders, body.grpc)},
		config[sample]{"gRPC through HAProxy", run(sys, "http://"+sys.proxyAddr()+grpcPath, grpcHeaders, body.grpc)},
		config[sample]{"REST through HAProxy and gateway", run(sys, restURL, nil, "")},
		config[sample]{"gRPC-Web through HAProxy and gateway", run(sys, browserURL, grpcWebHeaders, body.grpc)},
		config[sample]{"Connect JSON through HAProxy and gateway", run(sys, browserURL, connectHeaders, body.json)},
		config[sample]{"gRPC through HAProxy, TLS backends", run(tlsSys, "http://"+tlsSys.proxyAddr()+grpcPath, grpcHeaders, body.grpc)},
		config[sample]{"REST through HAProxy and gateway, TLS backends", run(tlsSys, tlsRESTURL, nil, "")},
		config[sample]{"REST through HAProxy, gateway co-located in the server", run(coSys, coRESTURL, nil, "")},
	)
	if err != nil {
		return nil, nil, err
	}
	direct, proxied, rest, grpcWeb, connectJSON, tlsProxied, tlsRest, coRest := samples[0], samples[1], samples[2], samples[3], samples[4], samples[5], samples[6], samples[7]
	rate, cpu := rateOf, cpuOf
	grpcRatio := pairedRatio(each(proxied, rate), each(direct, rate))
	restRatio := pairedRatio(each(rest, rate), each(direct, rate))
	hapCPU := each(proxied, cpu(procHAProxy))
	goCPU := each(rest, cpu(procGateway, procServer))
	// Co-located, the server is the only Go process: procGateway is
	// absent from its samples and adds nothing.
	coGoCPU := each(coRest, cpu(procServer))
	tlsHAPCPU := each(tlsProxied, cpu(procHAProxy))
	tlsGoCPU := each(tlsRest, cpu(procGateway, procServer))
	figs := []figure{
		measured(figGRPCRatio, grpcRatio, ""),
		measured(figHAProxyCPU, hapCPU, ""),
		measured(figRESTRatio, restRatio, ""),
		measured(figRESTCPU, goCPU, ""),
		measured(figCoRESTRatio, pairedRatio(each(coRest, rate), each(direct, rate)), ""),
		measured(figCoRESTCPU, coGoCPU, ""),
		measured(figGRPCWebRatio, pairedRatio(each(grpcWeb, rate), each(direct, rate)), ""),
		measured(figGRPCWebCPU, each(grpcWeb, cpu(procGateway, procServer)), ""),
		measured(figConnectRatio, pairedRatio(each(connectJSON, rate), each(direct, rate)), ""),
		measured(figConnectCPU, each(connectJSON, cpu(procGateway, procServer)), ""),
		measured(figTLSGRPCRatio, pairedRatio(each(tlsProxied, rate), each(proxied, rate)), ""),
		measured(figTLSRESTRatio, pairedRatio(each(tlsRest, rate), each(rest, rate)), ""),
		measured(figTLSHAProxyCPU, tlsHAPCPU, ""),
		measured(figTLSHAProxyCost, pairedDiff(tlsHAPCPU, hapCPU), ""),
		measured(figTLSRESTCPU, tlsGoCPU, ""),
		measured(figTLSRESTCost, pairedDiff(tlsGoCPU, goCPU), ""),
	}
	details := []string{
		fmt.Sprintf("Unary load: h2load, 1 thread, %d connections × %d streams in flight, %v per run, GetCodename{category: science}.", load.conns, load.streams, p.duration),
		fmt.Sprintf("Unary calls/s (median): gRPC direct %.0f, gRPC through HAProxy %.0f, through HAProxy and gateway REST %.0f, gRPC-Web %.0f, Connect JSON %.0f.",
			median(each(direct, rate)), median(each(proxied, rate)), median(each(rest, rate)), median(each(grpcWeb, rate)), median(each(connectJSON, rate))),
		fmt.Sprintf("Unary throughput through HAProxy and gateway / REST (median of each round's ratio): gRPC-Web %.2f, Connect JSON %.2f.",
			median(pairedRatio(each(grpcWeb, rate), each(rest, rate))), median(pairedRatio(each(connectJSON, rate), each(rest, rate)))),
		fmt.Sprintf("CPU µs per gRPC call direct (median): server %.1f.", median(each(direct, cpu(procServer)))),
		fmt.Sprintf("CPU µs per call of h2load itself (median): gRPC direct %.1f, gRPC through HAProxy %.1f, REST %.1f, gRPC-Web %.1f, Connect JSON %.1f.",
			median(each(direct, cpu(procLoad))), median(each(proxied, cpu(procLoad))), median(each(rest, cpu(procLoad))),
			median(each(grpcWeb, cpu(procLoad))), median(each(connectJSON, cpu(procLoad)))),
		fmt.Sprintf("CPU µs per gRPC call through HAProxy (median): HAProxy %.1f, server %.1f.",
			median(hapCPU), median(each(proxied, cpu(procServer)))),
		fmt.Sprintf("CPU µs per REST call (median): HAProxy %.1f, gateway %.1f, server %.1f.",
			median(each(rest, cpu(procHAProxy))), median(each(rest, cpu(procGateway))), median(each(rest, cpu(procServer)))),
		fmt.Sprintf("REST through HAProxy, gateway co-located in the server (a third stack, CODENAME_GATEWAY_MODE=colocated, in the same rounds): %.0f calls/s (median), %.2f of the separate gateway's (median of each round's ratio); CPU µs per call (median): HAProxy %.1f, server (with the gateway inside) %.1f.",
			median(each(coRest, rate)), median(pairedRatio(each(coRest, rate), each(rest, rate))), median(each(coRest, cpu(procHAProxy))), median(coGoCPU)),
		fmt.Sprintf("gRPC-Web and Connect JSON: POST %s with the headers %q and the same 5-byte-framed NameRequest as gRPC, and %q with the message in protobuf JSON; HAProxy routes both to the gateway, whose connect-go handlers forward them to the server.",
			grpcPath, grpcWebHeaders, connectHeaders),
		fmt.Sprintf("CPU µs per gRPC-Web call (median): HAProxy %.1f, gateway %.1f, server %.1f.",
			median(each(grpcWeb, cpu(procHAProxy))), median(each(grpcWeb, cpu(procGateway))), median(each(grpcWeb, cpu(procServer)))),
		fmt.Sprintf("CPU µs per Connect JSON call (median): HAProxy %.1f, gateway %.1f, server %.1f.",
			median(each(connectJSON, cpu(procHAProxy))), median(each(connectJSON, cpu(procGateway))), median(each(connectJSON, cpu(procServer)))),
		"TLS backends: a second stack, started with CODENAME_BACKEND_TLS=mutual (TLS with client certificates from HAProxy to the servers and the gateways, and from the gateways to the servers), measured in the same rounds as the cleartext one; HAProxy's listener is cleartext in both.",
		fmt.Sprintf("Unary calls/s with TLS backends (median): gRPC through HAProxy %.0f, REST through HAProxy and gateway %.0f.",
			median(each(tlsProxied, rate)), median(each(tlsRest, rate))),
		fmt.Sprintf("CPU µs per gRPC call through HAProxy, TLS backends (median): HAProxy %.1f, server %.1f.",
			median(tlsHAPCPU), median(each(tlsProxied, cpu(procServer)))),
		fmt.Sprintf("CPU µs per REST call, TLS backends (median): HAProxy %.1f, gateway %.1f, server %.1f.",
			median(each(tlsRest, cpu(procHAProxy))), median(each(tlsRest, cpu(procGateway))), median(each(tlsRest, cpu(procServer)))),
	}
	return figs, details, nil
}

// measureH2load runs one h2load job and reads the CPU each process of the
// stack (and of extra) used meanwhile, then checks with the server's
// counters that every call it finished in that time ended OK.
func measureH2load(ctx context.Context, sys *system, job h2loadJob, extra ...group) (sample, error) {
	before, err := scrape(ctx, sys.serverAdminAddr())
	if err != nil {
		return sample{}, err
	}
	groups := slices.Concat(sys.goGroups(), []group{sys.haproxy()}, extra)
	meter, err := startCPU(groups...)
	if err != nil {
		return sample{}, err
	}
	res, err := job.run(ctx)
	if err != nil {
		return sample{}, err
	}
	used, err := meter.stop()
	if err != nil {
		return sample{}, err
	}
	after, err := scrape(ctx, sys.serverAdminAddr())
	if err != nil {
		return sample{}, err
	}
	ok0, failed0 := before.handled("GetCodename")
	ok1, failed1 := after.handled("GetCodename")
	// The server may finish a few more calls than h2load counts (those in
	// flight when h2load stops), never fewer.
	if failed1 > failed0 || ok1-ok0 < float64(res.succeeded) {
		return sample{}, fmt.Errorf("%s: h2load counted %d answers, the server %v OK and %v failed calls",
			job.url, res.succeeded, ok1-ok0, failed1-failed0)
	}
	if res.failed > 0 {
		return sample{}, fmt.Errorf("%s: %d requests failed", job.url, res.failed)
	}
	used[procLoad] = res.cpu
	return sample{rate: float64(res.succeeded) / res.seconds, cpu: perOp(used, float64(res.succeeded)), p99: res.p99}, nil
}

// dial connects a gRPC client to addr in cleartext HTTP/2, which both the
// server and HAProxy's cleartext listener accept.
func dial(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// openCodenames starts a KeepGettingCodenames stream on conn and asks it
// for codenames of category.
func openCodenames(ctx context.Context, conn *grpc.ClientConn, category string) (codenamev1.CodenameCreator_KeepGettingCodenamesClient, error) {
	stream, err := codenamev1.NewCodenameCreatorClient(conn).KeepGettingCodenames(ctx)
	if err != nil {
		return nil, err
	}
	return stream, stream.Send(&codenamev1.NameRequest{Category: category})
}

// checkGRPC makes a few real gRPC calls to addr, with the metadata given as
// key-value pairs (such as an API key): each must end with status OK and
// carry a codename.
func checkGRPC(ctx context.Context, addr string, md ...string) error {
	conn, err := dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	client := codenamev1.NewCodenameCreatorClient(conn)
	for range 3 {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(ctx, md...), 5*time.Second)
		res, err := client.GetCodename(ctx, nameRequest)
		cancel()
		if err != nil {
			return fmt.Errorf("GetCodename: %w", err)
		}
		if res.GetName() == "" {
			return fmt.Errorf("GetCodename: empty name")
		}
	}
	return nil
}
