package gateway

import (
	"net/http"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	codenamev1 "github.com/codename-gateway/codename-gateway/api/codename/v1"
)

// routeParams is, for each route of the runtime mux ("METHOD pattern"),
// the query parameters it reads. A parameter outside it is refused, as an
// unknown JSON field is: grpc-gateway ignores it, so a typo such as
// ?categroy=space would silently give the default.
type routeParams map[string][]string

// queryParams lists the parameters of every route: the generated ones from
// the HTTP rules of the service (a request field is a parameter unless the
// body or the path carries it), and the routes the gateway adds itself.
func queryParams() routeParams {
	rp := routeParams{
		http.MethodPost + " " + streamPattern: nil,          // the body is the request stream
		http.MethodGet + " " + streamPattern:  {"category"}, // WebSocket, Server-Sent Events
		http.MethodGet + " /healthz":          {"service"},  // grpc.health.v1's service name
	}
	methods := codenamev1.File_codename_v1_codename_proto.Services().ByName("CodenameCreator").Methods()
	for i := range methods.Len() {
		m := methods.Get(i)
		rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
		if rule == nil {
			continue
		}
		for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
			method, path := ruleRoute(r)
			if method == "" {
				continue
			}
			key := method + " " + path
			if _, own := rp[key]; own {
				continue // the gateway serves this route itself
			}
			rp[key] = fieldParams(m.Input(), r.GetBody(), pathVariables(path))
		}
	}
	return rp
}

// ruleRoute is the method and path template of an HTTP rule.
func ruleRoute(r *annotations.HttpRule) (method, path string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}

var pathVariable = regexp.MustCompile(`\{([^=}]+)`)

// pathVariables are the field paths a path template binds.
func pathVariables(path string) []string {
	var vars []string
	for _, m := range pathVariable.FindAllStringSubmatch(path, -1) {
		vars = append(vars, m[1])
	}
	return vars
}

// fieldParams are the query parameters that fill md when the body carries
// the field body ("*": all of them) and the path those in bound: each
// field by its proto name and its JSON name, a message's fields as
// parent.child, as grpc-gateway reads them.
func fieldParams(md protoreflect.MessageDescriptor, body string, bound []string) []string {
	if body == "*" {
		return nil
	}
	var params []string
	var walk func(md protoreflect.MessageDescriptor, prefix []string, seen []protoreflect.FullName)
	walk = func(md protoreflect.MessageDescriptor, prefix []string, seen []protoreflect.FullName) {
		if slices.Contains(seen, md.FullName()) {
			return // a recursive message: its deeper fields are not worth naming
		}
		fields := md.Fields()
		for i := range fields.Len() {
			f := fields.Get(i)
			if len(prefix) == 0 && (string(f.Name()) == body || slices.Contains(bound, string(f.Name()))) {
				continue
			}
			for _, name := range []string{string(f.Name()), f.JSONName()} {
				path := append(slices.Clone(prefix), name)
				// Well-known types (Timestamp, wrappers...) are one
				// parameter each, in their JSON form.
				if f.Message() != nil && !f.IsMap() && !f.IsList() && !strings.HasPrefix(string(f.Message().FullName()), "google.protobuf.") {
					walk(f.Message(), path, append(seen, md.FullName()))
					continue
				}
				params = append(params, strings.Join(path, "."))
			}
		}
	}
	walk(md, nil, nil)
	slices.Sort(params)
	return slices.Compact(params)
}
