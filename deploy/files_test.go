package deploy

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The processes a deploy file runs.
const (
	serverKind  = "codename-server"
	gatewayKind = "codename-gateway"
	haproxyKind = "haproxy"
)

// deployFile is one YAML file under deploy/.
type deployFile struct {
	path string // relative to the repository
	text string
	docs []*yaml.Node
}

// compose reports whether the file is a Compose file rather than
// Kubernetes manifests.
func (f deployFile) compose() bool { return !strings.HasPrefix(f.path, "deploy/kubernetes/") }

// loadFiles parses every YAML file under deploy/, failing the test for any
// that does not parse.
func loadFiles(t *testing.T) []deployFile {
	t.Helper()
	var files []deployFile
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		// prometheus/ configures the monitoring, not the processes; its
		// own test is prometheus_test.go.
		if err == nil && d.IsDir() && p == "prometheus" {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() || (path.Ext(p) != ".yaml" && path.Ext(p) != ".yml") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		f := deployFile{path: "deploy/" + filepath.ToSlash(p), text: string(b)}
		dec := yaml.NewDecoder(strings.NewReader(f.text))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Errorf("%s does not parse: %v", f.path, err)
				break
			}
			f.docs = append(f.docs, &doc)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var compose, kube bool
	for _, f := range files {
		compose = compose || f.compose()
		kube = kube || !f.compose()
	}
	if !compose || !kube {
		t.Fatalf("found %d YAML files, want deploy/compose.yaml and the manifests in deploy/kubernetes/", len(files))
	}
	return files
}

// process is one service of a Compose file, or one container of a
// Deployment.
type process struct {
	file    deployFile
	name    string // the Compose service, or the Deployment
	kind    string
	env     map[string]string // its settings, flags given as their variables
	certs   bool              // whether /certs is mounted (from a Secret, in Kubernetes)
	labels  map[string]string // the pod's (Kubernetes)
	ports   map[string]int    // the container's named ports (Kubernetes)
	probes  map[string]*probe // readiness and liveness (Kubernetes)
	compose bool
	// replicas is how many copies of the process a Compose file runs.
	replicas int
}

func (p process) String() string { return p.file.path + ": " + p.name }

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
	TCPSocket *struct {
		Port any `yaml:"port"`
	} `yaml:"tcpSocket"`
}

type composeFile struct {
	Services map[string]struct {
		Image       string `yaml:"image"`
		Command     any    `yaml:"command"`
		Environment any    `yaml:"environment"`
		Volumes     []any  `yaml:"volumes"`
		Deploy      struct {
			Replicas *int `yaml:"replicas"`
		} `yaml:"deploy"`
	} `yaml:"services"`
}

type kubeObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
}

type kubeService struct {
	Spec struct {
		ClusterIP string            `yaml:"clusterIP"`
		Selector  map[string]string `yaml:"selector"`
		Ports     []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
}

type kubeDeployment struct {
	Spec struct {
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []struct {
					Name    string   `yaml:"name"`
					Image   string   `yaml:"image"`
					Command []string `yaml:"command"`
					Args    []string `yaml:"args"`
					Env     []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					Ports []struct {
						Name          string `yaml:"name"`
						ContainerPort int    `yaml:"containerPort"`
					} `yaml:"ports"`
					ReadinessProbe *probe `yaml:"readinessProbe"`
					LivenessProbe  *probe `yaml:"livenessProbe"`
					VolumeMounts   []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name   string `yaml:"name"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// headless is a Kubernetes Service, by name.
type headless struct {
	file     deployFile
	headless bool
	selector map[string]string
	ports    map[int]any // port: targetPort
}

// system is what the deploy files run.
type system struct {
	procs    []process
	services map[string]headless
}

// readSystem gathers the processes and Services of every deploy file.
func readSystem(t *testing.T, code codeFacts) system {
	t.Helper()
	s := system{services: map[string]headless{}}
	for _, f := range loadFiles(t) {
		for _, doc := range f.docs {
			if f.compose() {
				s.procs = append(s.procs, composeProcesses(t, f, doc, code)...)
				continue
			}
			var obj kubeObject
			if err := doc.Decode(&obj); err != nil {
				t.Fatalf("%s: %v", f.path, err)
			}
			switch obj.Kind {
			case "Service":
				var svc kubeService
				if err := doc.Decode(&svc); err != nil {
					t.Fatalf("%s: %v", f.path, err)
				}
				h := headless{file: f, headless: svc.Spec.ClusterIP == "None", selector: svc.Spec.Selector, ports: map[int]any{}}
				for _, p := range svc.Spec.Ports {
					h.ports[p.Port] = p.TargetPort
				}
				s.services[obj.Metadata.Name] = h
			case "Deployment":
				s.procs = append(s.procs, kubeProcesses(t, f, obj.Metadata.Name, doc, code)...)
			}
		}
	}
	return s
}

func composeProcesses(t *testing.T, f deployFile, doc *yaml.Node, code codeFacts) []process {
	t.Helper()
	var c composeFile
	if err := doc.Decode(&c); err != nil {
		t.Fatalf("%s: %v", f.path, err)
	}
	var procs []process
	for name, svc := range c.Services {
		p := process{file: f, name: name, env: map[string]string{}, compose: true, replicas: 1}
		if svc.Deploy.Replicas != nil {
			p.replicas = *svc.Deploy.Replicas
		}
		switch env := svc.Environment.(type) {
		case map[string]any:
			for k, v := range env {
				p.env[k] = scalar(v)
			}
		case []any:
			for _, kv := range env {
				k, v, _ := strings.Cut(scalar(kv), "=")
				p.env[k] = v
			}
		}
		var argv []string
		switch cmd := svc.Command.(type) {
		case string:
			argv = strings.Fields(cmd)
		case []any:
			for _, a := range cmd {
				argv = append(argv, scalar(a))
			}
		}
		for _, v := range svc.Volumes {
			p.certs = p.certs || strings.Contains(scalar(v), ":/certs")
		}
		p.kind = kindOf(t, p, svc.Image, argv)
		addFlags(t, p, argv, code)
		procs = append(procs, p)
	}
	return procs
}

func kubeProcesses(t *testing.T, f deployFile, name string, doc *yaml.Node, code codeFacts) []process {
	t.Helper()
	var d kubeDeployment
	if err := doc.Decode(&d); err != nil {
		t.Fatalf("%s: %v", f.path, err)
	}
	pod := d.Spec.Template.Spec
	secrets := map[string]bool{}
	for _, v := range pod.Volumes {
		secrets[v.Name] = v.Secret != nil && v.Secret.SecretName != ""
	}
	var procs []process
	for _, c := range pod.Containers {
		p := process{file: f, name: name + "/" + c.Name, env: map[string]string{}, labels: d.Spec.Template.Metadata.Labels,
			ports: map[string]int{}, probes: map[string]*probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}}
		for _, e := range c.Env {
			p.env[e.Name] = e.Value
		}
		for _, port := range c.Ports {
			if port.Name != "" {
				p.ports[port.Name] = port.ContainerPort
			}
		}
		for _, m := range c.VolumeMounts {
			p.certs = p.certs || (m.MountPath == "/certs" && secrets[m.Name])
		}
		argv := append(slices.Clone(c.Command), c.Args...)
		p.kind = kindOf(t, p, c.Image, argv)
		addFlags(t, p, argv, code)
		procs = append(procs, p)
	}
	return procs
}

// kindOf tells which process runs: HAProxy's image, or a binary of this
// repository as the command.
func kindOf(t *testing.T, p process, image string, argv []string) string {
	t.Helper()
	if image == "haproxy" || strings.HasPrefix(image, "haproxy:") {
		return haproxyKind
	}
	if len(argv) > 0 && (path.Base(argv[0]) == serverKind || path.Base(argv[0]) == gatewayKind) {
		return path.Base(argv[0])
	}
	t.Fatalf("%s: cannot tell what runs (image %q, command %q): want haproxy, %s or %s", p, image, argv, serverKind, gatewayKind)
	return ""
}

// addFlags puts the binary's flags in argv into p.env as the variables
// they stand for, so that a setting is checked however it is given.
func addFlags(t *testing.T, p process, argv []string, code codeFacts) {
	t.Helper()
	if p.kind == haproxyKind || len(argv) == 0 {
		return
	}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if !strings.HasPrefix(a, "-") {
			t.Fatalf("%s: argument %q is not a flag", p, a)
		}
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok {
			if i+1 == len(argv) {
				t.Fatalf("%s: flag %s has no value", p, a)
			}
			i++
			value = argv[i]
		}
		v, known := code.flags[p.kind][name]
		if !known {
			t.Fatalf("%s: %s has no flag -%s with a variable", p, p.kind, name)
		}
		p.env[v] = value
	}
}

func scalar(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		b, _ := yaml.Marshal(v)
		return strings.TrimSpace(string(b))
	}
}

// selects reports whether a Service's selector matches a pod's labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// resolvePort is a probe's or Service's port as a number: given as one,
// or as the name of one of the container's ports.
func resolvePort(p process, port any) (int, bool) {
	switch port := port.(type) {
	case int:
		return port, true
	case string:
		if n, err := strconv.Atoi(port); err == nil {
			return n, true
		}
		n, ok := p.ports[port]
		return n, ok
	}
	return 0, false
}

// listenPort splits a listen address: whether it takes connections from
// other hosts (no host, or every address), and its port (0 if none).
func listenPort(addr string) (everywhere bool, port int) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return false, 0
	}
	port, _ = strconv.Atoi(portText)
	return host == "" || host == "0.0.0.0" || host == "::", port
}
