package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/codename-gateway/codename-gateway/internal/stack"
)

// haproxyBuild is what the HAProxy under test says of itself (`haproxy
// -vv`): its version and the features it was built with. Tests pin the
// behaviours that differ between versions on purpose with it.
type haproxyBuild struct {
	major, minor int
	version      string
	features     map[string]bool
}

// atLeast reports whether the version is major.minor or later.
func (b haproxyBuild) atLeast(major, minor int) bool {
	return b.major > major || b.major == major && b.minor >= minor
}

// cutStream reports whether err is what a gRPC client sees when this
// HAProxy cuts its stream because the server went (killed, or its host
// gone): 2.6 ends the stream without trailers, which grpc-go reports as
// INTERNAL; 3.0 and later reset it with CANCEL, which grpc-go reports as
// CANCELLED. Either way the client did not cancel it, and should
// reconnect.
func (b haproxyBuild) cutStream(err error) bool {
	st := status.Convert(err)
	if b.atLeast(3, 0) {
		return st.Code() == codes.Canceled && strings.Contains(st.Message(), "RST_STREAM with error code: CANCEL")
	}
	return st.Code() == codes.Internal && strings.Contains(st.Message(), "server closed the stream without sending trailers")
}

var (
	buildOnce sync.Once
	build     haproxyBuild
	buildErr  error
)

// haproxyUnderTest reads the build of stack.HAProxyBinary() once; a test
// fails if it cannot be read.
func haproxyUnderTest(t testing.TB) haproxyBuild {
	t.Helper()
	buildOnce.Do(func() {
		out, err := exec.Command(stack.HAProxyBinary(), "-vv").Output()
		if err != nil {
			buildErr = fmt.Errorf("%s -vv: %w", stack.HAProxyBinary(), err)
			return
		}
		build, buildErr = parseHAProxyBuild(string(out))
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return build
}

var (
	versionLine = regexp.MustCompile(`(?m)^HAProxy version ((\d+)\.(\d+)\S*)`)
	featureList = regexp.MustCompile(`(?m)^Feature list : (.*)$`)
)

func parseHAProxyBuild(vv string) (haproxyBuild, error) {
	v := versionLine.FindStringSubmatch(vv)
	f := featureList.FindStringSubmatch(vv)
	if v == nil || f == nil {
		return haproxyBuild{}, fmt.Errorf("no version or feature list in haproxy -vv:\n%s", vv)
	}
	b := haproxyBuild{version: v[1], features: map[string]bool{}}
	b.major, _ = strconv.Atoi(v[2])
	b.minor, _ = strconv.Atoi(v[3])
	for _, word := range strings.Fields(f[1]) {
		b.features[word[1:]] = word[0] == '+'
	}
	return b, nil
}

// TestHAProxyUnderTest names the HAProxy this run tests, so that the log
// of every run says which one it was.
func TestHAProxyUnderTest(t *testing.T) {
	b := haproxyUnderTest(t)
	if b.major < 2 || len(b.features) == 0 {
		t.Fatalf("implausible build: %+v", b)
	}
	t.Logf("HAProxy %s (%s), QUIC %v", b.version, stack.HAProxyBinary(), b.features["QUIC"])
}
