// Command codename-client does what the original sample's client did: ask
// for one codename, or keep a bidi stream open and switch its category on a
// timer. It speaks gRPC over TLS (trusting a CA file) or cleartext h2c, sends
// any -H key:value metadata, and can call the legacy unpackaged method names
// (/CodenameCreator/...) that HAProxy rewrites.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
	"github.com/codename-gateway/codename-gateway/internal/envflag"
)

// about opens the help.
const about = "codename-client asks the CodenameCreator gRPC service for one codename, or keeps a stream of them open, as the original sample's client did."

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "codename-client:", err)
		os.Exit(1)
	}
}

// headers collects repeated -H key:value flags.
type headers []string

func (h *headers) String() string { return strings.Join(*h, ", ") }

func (h *headers) Set(s string) error {
	k, v, ok := strings.Cut(s, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("header %q: want key:value", s)
	}
	*h = append(*h, strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v))
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	fs := envflag.New(args[0], getenv, stdout)
	fs.About(about)
	addr := fs.String("addr", "CODENAME_CLIENT_ADDR", "localhost:8443", "HAProxy (or server) address")
	caFile := fs.String("ca", "CODENAME_CA_FILE", "", "PEM file of the CA to trust for TLS, such as .state/tls/ca.pem, the run command's (default: the system's roots)")
	plaintext := fs.Bool("plaintext", "CODENAME_PLAINTEXT", false, "use cleartext HTTP/2 (h2c) instead of TLS, as on HAProxy's cleartext port (localhost:8080)")
	category := fs.String("category", "CODENAME_CATEGORY", "animals", "category; with -stream, a comma-separated list to cycle through")
	stream := fs.Bool("stream", "CODENAME_STREAM", false, "keep a bidi stream open instead of asking once")
	every := fs.Duration("switch-every", "CODENAME_SWITCH_EVERY", 3*time.Second, "with -stream: how often to switch to the next category")
	count := fs.Int("n", "CODENAME_COUNT", 0, "with -stream: stop after this many codenames (0: until interrupted)")
	timeout := fs.Duration("timeout", "CODENAME_TIMEOUT", 10*time.Second, "deadline of a unary call")
	legacy := fs.Bool("legacy", "CODENAME_LEGACY", false, "call the original unpackaged method names (/CodenameCreator/...)")
	var md headers
	fs.Repeated(&md, "H", "CODENAME_METADATA", "metadata to send, as key:value (repeatable; in the variable, separated by commas)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}

	creds, err := transportCredentials(*plaintext, *caFile)
	if err != nil {
		return err
	}
	hint := &tlsHint{TransportCredentials: creds, addr: *addr, caFile: *caFile, plaintext: *plaintext}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(hint))
	if err != nil {
		return err
	}
	defer conn.Close()
	var cc grpc.ClientConnInterface = conn
	if *legacy {
		cc = legacyConn{conn}
	}
	client := codenamev1.NewCodenameCreatorClient(cc)
	ctx = metadata.AppendToOutgoingContext(ctx, md...)

	categories := strings.Split(*category, ",")
	if !*stream {
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		res, err := client.GetCodename(ctx, &codenamev1.NameRequest{Category: categories[0]})
		if err != nil {
			return hint.explain(err)
		}
		fmt.Fprintln(stdout, res.GetName())
		return nil
	}
	return hint.explain(keepGetting(ctx, client, categories, *every, *count, stdout, stderr))
}

// keepGetting prints codenames from one stream, switching to the next
// category every `every`, until count codenames arrived or ctx ends.
func keepGetting(ctx context.Context, client codenamev1.CodenameCreatorClient, categories []string, every time.Duration, count int, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.KeepGettingCodenames(ctx)
	if err != nil {
		return err
	}
	sendErr := make(chan error, 1)
	go func() {
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for i := 0; ; i++ {
			c := categories[i%len(categories)]
			fmt.Fprintf(stderr, "category: %s\n", c)
			if err := stream.Send(&codenamev1.NameRequest{Category: c}); err != nil {
				sendErr <- err
				return
			}
			if len(categories) == 1 {
				return
			}
			select {
			case <-ticker.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	for n := 0; count == 0 || n < count; n++ {
		res, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil // interrupted by the user
			}
			return err
		}
		fmt.Fprintln(stdout, res.GetName())
	}
	cancel()
	select {
	case err := <-sendErr:
		if !errors.Is(err, io.EOF) && ctx.Err() == nil {
			return err
		}
	default:
	}
	return nil
}

func transportCredentials(plaintext bool, caFile string) (credentials.TransportCredentials, error) {
	if plaintext {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("-ca %s: no such file; the run command (scripts/run.sh) makes its CA at .state/tls/ca.pem in the repository's folder: give that path, or use -plaintext -addr localhost:8080 for the cleartext port", caFile)
		}
		if err != nil {
			return nil, fmt.Errorf("-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate found", caFile)
		}
	}
	return credentials.NewTLS(cfg), nil
}

// legacyConn calls the methods by the names the original, unpackaged sample
// used ("/CodenameCreator/GetCodename"), to show HAProxy's rewrite at work.
type legacyConn struct{ *grpc.ClientConn }

func legacyMethod(m string) string {
	return strings.Replace(m, "/codename.v1.CodenameCreator/", "/CodenameCreator/", 1)
}

func (c legacyConn) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	return c.ClientConn.Invoke(ctx, legacyMethod(method), args, reply, opts...)
}

func (c legacyConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	return c.ClientConn.NewStream(ctx, desc, legacyMethod(method), opts...)
}
