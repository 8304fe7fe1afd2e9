package gateway

import (
	"fmt"
	"net/url"
	"strings"
)

// ParseOrigins reads a comma-separated list of origins for
// Options.CORSOrigins. Each must be an origin exactly as a browser sends it
// in Origin (scheme and host, no path, no trailing slash), since it is
// compared as a string: a near miss would be an origin that silently never
// matches.
func ParseOrigins(list string) ([]string, error) {
	var origins []string
	for o := range strings.SplitSeq(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || o != strings.ToLower(o) {
			return nil, fmt.Errorf("CORS origin %q: want scheme://host[:port] in lower case, as browsers send it in Origin (for example https://app.example.com)", o)
		}
		origins = append(origins, o)
	}
	return origins, nil
}
