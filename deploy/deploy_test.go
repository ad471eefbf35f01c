package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// What the manifests must agree on.
const (
	appName         = "isoedge"
	containerName   = "isoedge"
	portImage       = "image-service"
	portPXE         = "http-pxe"
	portImageNumber = 8080
	portPXENumber   = 8081
	// shutdownTimeout is how long main.run waits for open downloads after
	// SIGTERM; the grace period must be longer.
	shutdownTimeout = 30
	// peersSuffix names the headless Service PEERS_DNS points at:
	// <StatefulSet name>-peers.
	peersSuffix = "-peers"
)

// notYetRead lists environment variables the manifests set although
// config/ does not read them yet, each with the reason.
var notYetRead = map[string]string{}

// kustomization mirrors the fields of kustomize.config.k8s.io/v1beta1
// Kustomization and v1alpha1 Component that these manifests use. Anything
// else fails to decode.
type kustomization struct {
	APIVersion   string            `json:"apiVersion"`
	Kind         string            `json:"kind"`
	Namespace    string            `json:"namespace,omitempty"`
	NamePrefix   string            `json:"namePrefix,omitempty"`
	Resources    []string          `json:"resources,omitempty"`
	Components   []string          `json:"components,omitempty"`
	CommonLabels map[string]string `json:"commonLabels,omitempty"`
	Labels       []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	Patches []kustomizePatch `json:"patches,omitempty"`
	Images  []kustomizeImage `json:"images,omitempty"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

type kustomizePatch struct {
	Path   string `json:"path,omitempty"`
	Patch  string `json:"patch,omitempty"`
	Target *struct {
		Group              string `json:"group,omitempty"`
		Version            string `json:"version,omitempty"`
		Kind               string `json:"kind,omitempty"`
		Name               string `json:"name,omitempty"`
		Namespace          string `json:"namespace,omitempty"`
		LabelSelector      string `json:"labelSelector,omitempty"`
		AnnotationSelector string `json:"annotationSelector,omitempty"`
	} `json:"target,omitempty"`
}

// jsonPatchOp is one operation of an inline JSON 6902 patch.
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	From  string `json:"from,omitempty"`
	Value any    `json:"value,omitempty"`
}

// serviceMonitor mirrors the monitoring.coreos.com/v1 ServiceMonitor fields
// used here (the prometheus-operator module is deliberately not a dependency).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port      string `json:"port"`
			Path      string `json:"path,omitempty"`
			Interval  string `json:"interval,omitempty"`
			Scheme    string `json:"scheme,omitempty"`
			TLSConfig *struct {
				InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
				ServerName         string `json:"serverName,omitempty"`
				CA                 *struct {
					Secret    *corev1.SecretKeySelector    `json:"secret,omitempty"`
					ConfigMap *corev1.ConfigMapKeySelector `json:"configMap,omitempty"`
				} `json:"ca,omitempty"`
			} `json:"tlsConfig,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// certificate mirrors the cert-manager.io/v1 Certificate fields used here
// (cert-manager is deliberately not a dependency).
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName string `json:"secretName"`
		IssuerRef  struct {
			Group string `json:"group,omitempty"`
			Kind  string `json:"kind,omitempty"`
			Name  string `json:"name"`
		} `json:"issuerRef"`
		CommonName  string   `json:"commonName,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			Encoding       string `json:"encoding,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
	} `json:"spec"`
}

// doc is one decoded YAML document.
type doc struct {
	where string // file:index, for messages
	file  string // path relative to the deploy directory
	kind  string
	obj   any // *appsv1.StatefulSet, *corev1.Service, …, *kustomization
}

// newObject returns the typed object for apiVersion/kind, or nil.
func newObject(apiVersion, kind string) any {
	switch apiVersion + " " + kind {
	case "apps/v1 StatefulSet":
		return &appsv1.StatefulSet{}
	case "v1 Service":
		return &corev1.Service{}
	case "v1 ConfigMap":
		return &corev1.ConfigMap{}
	case "policy/v1 PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}
	case "monitoring.coreos.com/v1 ServiceMonitor":
		return &serviceMonitor{}
	case "cert-manager.io/v1 Certificate":
		return &certificate{}
	case "kustomize.config.k8s.io/v1beta1 Kustomization", "kustomize.config.k8s.io/v1alpha1 Component":
		return &kustomization{}
	}
	return nil
}

// splitDocs splits a multi-document YAML stream on "---" lines and drops
// documents that hold only comments or blank lines.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	content := false
	flush := func() {
		if content {
			docs = append(docs, bytes.Clone(cur.Bytes()))
		}
		cur.Reset()
		content = false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.SplitN(line[3:], "#", 2)[0]) == "" {
			flush()
			continue
		}
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			content = true
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

// decodeDoc decodes one document strictly into the type its kind names.
func decodeDoc(where string, data []byte) (doc, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return doc{}, fmt.Errorf("%s: %w", where, err)
	}
	obj := newObject(tm.APIVersion, tm.Kind)
	if obj == nil {
		return doc{}, fmt.Errorf("%s: unknown apiVersion/kind %q %q", where, tm.APIVersion, tm.Kind)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		return doc{}, fmt.Errorf("%s: %s: %w", where, tm.Kind, err)
	}
	return doc{where: where, kind: tm.Kind, obj: obj}, nil
}

// loadTree decodes every YAML document under the deploy directory.
func loadTree(t *testing.T) []doc {
	t.Helper()
	var docs []doc
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, raw := range splitDocs(data) {
			dc, err := decodeDoc(fmt.Sprintf("%s#%d", path, i), raw)
			if err != nil {
				t.Error(err)
				continue
			}
			dc.file = filepath.ToSlash(path)
			docs = append(docs, dc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) == 0 {
		t.Fatal("no YAML documents under deploy/")
	}
	return docs
}

// configVars returns the environment variables the config package reads:
// the ALL_CAPS string literals passed to its lookup helpers (e.str,
// e.first, e.int64, e.int, e.port, e.bool, e.duration, e.get, stringMap), found by parsing
// config/*.go. A manifest naming anything else sets a variable nobody reads.
func configVars(t *testing.T) map[string]bool {
	t.Helper()
	lookups := map[string]bool{"str": true, "first": true, "int64": true, "int": true, "port": true, "bool": true, "duration": true, "get": true, "stringMap": true}
	name := regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)
	files, err := filepath.Glob(filepath.Join("..", "config", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			var fn string
			switch f := call.Fun.(type) {
			case *ast.SelectorExpr:
				fn = f.Sel.Name
			case *ast.Ident:
				fn = f.Name
			}
			if !lookups[fn] {
				return true
			}
			for _, arg := range call.Args {
				lit, ok := arg.(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				if s, err := strconv.Unquote(lit.Value); err == nil && name.MatchString(s) {
					vars[s] = true
				}
			}
			return true
		})
	}
	// The scan must find what is known to be there, or it has gone stale.
	for _, v := range []string{"DATA_DIR", "DATA_TEMP_DIR", "LISTEN_PORT", "HTTP_LISTEN_PORT", "OS_IMAGES", "RHCOS_VERSIONS", "LOG_LEVEL", "LOGLEVEL", "OS_IMAGES_FETCH", "DATA_DIR_MAX_BYTES", "MAX_CONCURRENT_REQUESTS"} {
		if !vars[v] {
			t.Fatalf("scan of config/*.go did not find %s (found %v): update configVars", v, sortedKeys(vars))
		}
	}
	return vars
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// checkEnvNames checks that every env var of every container is one the
// binary reads (also in its CLUSTER-IMAGE_ form) or is listed in
// notYetRead, and that none is set twice.
func checkEnvNames(t *testing.T, where string, spec corev1.PodSpec, vars map[string]bool) {
	t.Helper()
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		seen := map[string]bool{}
		for _, e := range c.Env {
			name := strings.TrimPrefix(e.Name, "CLUSTER-IMAGE_")
			if _, later := notYetRead[name]; !vars[name] && !later {
				t.Errorf("%s: container %s sets %s, which isoedge does not read", where, c.Name, e.Name)
			}
			if seen[e.Name] {
				t.Errorf("%s: container %s sets %s twice", where, c.Name, e.Name)
			}
			seen[e.Name] = true
		}
		if len(c.EnvFrom) > 0 {
			t.Errorf("%s: container %s uses envFrom; name variables one by one so they can be checked", where, c.Name)
		}
	}
}

// checkOSImages parses every OS image list held in a ConfigMap.
func checkOSImages(t *testing.T, where string, cm *corev1.ConfigMap) {
	t.Helper()
	for _, key := range []string{"OS_IMAGES", "RHCOS_VERSIONS"} {
		if s, ok := cm.Data[key]; ok {
			if _, err := config.ParseOSImages(s); err != nil {
				t.Errorf("%s: ConfigMap %s key %s: %v", where, cm.Name, key, err)
			}
		}
	}
}

// TestManifests decodes every document strictly and checks what can be
// checked one document at a time (patches included).
func TestManifests(t *testing.T) {
	vars := configVars(t)
	for _, d := range loadTree(t) {
		switch o := d.obj.(type) {
		case *appsv1.StatefulSet:
			checkEnvNames(t, d.where, o.Spec.Template.Spec, vars)
			checkBudget(t, d.where, o)
		case *corev1.ConfigMap:
			checkOSImages(t, d.where, o)
		case *kustomization:
			for _, p := range o.Patches {
				if p.Patch == "" {
					continue
				}
				// Inline patches: an object (strategic merge) or a JSON 6902 list.
				if strings.HasPrefix(strings.TrimSpace(p.Patch), "-") {
					var ops []jsonPatchOp
					if err := yaml.UnmarshalStrict([]byte(p.Patch), &ops); err != nil {
						t.Errorf("%s: inline JSON patch: %v", d.where, err)
					}
					for _, op := range ops {
						if strings.Contains(op.Path, "/env") {
							t.Errorf("%s: inline JSON patch %s %s: set env in a strategic merge patch file so its names are checked", d.where, op.Op, op.Path)
						}
					}
					continue
				}
				pd, err := decodeDoc(d.where+" inline patch", []byte(p.Patch))
				if err != nil {
					t.Error(err)
				} else if sts, ok := pd.obj.(*appsv1.StatefulSet); ok {
					checkEnvNames(t, pd.where, sts.Spec.Template.Spec, vars)
				}
			}
		}
	}
}

// checkBudget checks that DATA_DIR_MAX_BYTES, when set in the same document
// as the volume claim mounted at DATA_DIR, leaves headroom on that volume.
func checkBudget(t *testing.T, where string, sts *appsv1.StatefulSet) {
	t.Helper()
	var budget string
	dataDir := config.DefaultDataDir
	var dataVolume string
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			switch e.Name {
			case "DATA_DIR_MAX_BYTES":
				budget = e.Value
			case "DATA_DIR":
				dataDir = e.Value
			}
		}
		for _, m := range c.VolumeMounts {
			if m.MountPath == dataDir {
				dataVolume = m.Name
			}
		}
	}
	if budget == "" {
		return
	}
	n, err := strconv.ParseInt(budget, 0, 64)
	if err != nil || n <= 0 {
		t.Errorf("%s: DATA_DIR_MAX_BYTES %q: want a positive integer", where, budget)
		return
	}
	for _, pvc := range sts.Spec.VolumeClaimTemplates {
		// A patch may carry the claim without the mount: then "data", the
		// base's name, is the one the budget is for.
		if pvc.Name != dataVolume && !(dataVolume == "" && pvc.Name == "data") {
			continue
		}
		size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		// At least one RHCOS ISO (~1.2 GB) of headroom for a download in flight.
		if n+(1<<30) > size.Value() {
			t.Errorf("%s: DATA_DIR_MAX_BYTES %d leaves less than 1 GiB free on the %s data volume", where, n, size.String())
		}
	}
}

// TestKustomizations checks that every kustomization's and component's
// files exist and that every YAML file under deploy/ is used by one.
func TestKustomizations(t *testing.T) {
	docs := loadTree(t)
	used := map[string]bool{}
	kinds := map[string]string{} // directory → Kustomization or Component
	for _, d := range docs {
		if _, ok := d.obj.(*kustomization); ok {
			if filepath.Base(d.file) != "kustomization.yaml" {
				t.Errorf("%s: a %s must be in a file named kustomization.yaml", d.where, d.kind)
			}
			kinds[filepath.ToSlash(filepath.Dir(d.file))] = d.kind
		}
	}
	counts := map[string]int{}
	for _, d := range docs {
		k, ok := d.obj.(*kustomization)
		if !ok {
			continue
		}
		counts[d.kind]++
		used[d.file] = true
		dir := filepath.Dir(d.file)
		switch {
		case d.kind == "Kustomization" && len(k.Resources) == 0:
			t.Errorf("%s: no resources", d.where)
		case d.kind == "Component" && len(k.Resources)+len(k.Patches)+len(k.Components) == 0:
			t.Errorf("%s: a component that changes nothing", d.where)
		}
		for _, r := range k.Resources {
			if strings.Contains(r, "://") || strings.HasPrefix(r, "github.com/") {
				t.Errorf("%s: remote resource %s", d.where, r)
				continue
			}
			p := filepath.Join(dir, r)
			if !insideDeploy(p) {
				t.Errorf("%s: resource %s is outside deploy/", d.where, r)
			}
			fi, err := os.Stat(p)
			switch {
			case err != nil:
				t.Errorf("%s: resource %s: %v", d.where, r, err)
			case fi.IsDir():
				if kinds[filepath.ToSlash(p)] != "Kustomization" {
					t.Errorf("%s: resource directory %s holds no Kustomization", d.where, r)
				}
			default:
				used[filepath.ToSlash(p)] = true
			}
		}
		for _, c := range k.Components {
			p := filepath.Join(dir, c)
			if !insideDeploy(p) {
				t.Errorf("%s: component %s is outside deploy/", d.where, c)
			}
			if kinds[filepath.ToSlash(p)] != "Component" {
				t.Errorf("%s: component directory %s holds no Component", d.where, c)
			}
		}
		for _, p := range k.Patches {
			if (p.Path == "") == (p.Patch == "") {
				t.Errorf("%s: a patch needs exactly one of path and patch", d.where)
			}
			if p.Path == "" {
				continue
			}
			path := filepath.Join(dir, p.Path)
			if !insideDeploy(path) {
				t.Errorf("%s: patch %s is outside deploy/", d.where, p.Path)
			}
			if _, err := os.Stat(path); err != nil {
				t.Errorf("%s: patch %s: %v", d.where, p.Path, err)
			}
			used[filepath.ToSlash(path)] = true
		}
	}
	if counts["Kustomization"] < 2 {
		t.Errorf("found %d kustomizations, want base and at least one overlay", counts["Kustomization"])
	}
	if counts["Component"] < 1 {
		t.Error("found no components")
	}
	for _, d := range docs {
		if !used[d.file] {
			t.Errorf("%s is not used by any kustomization or component", d.file)
			used[d.file] = true
		}
	}
}

func insideDeploy(p string) bool {
	rel := filepath.Clean(p)
	return rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// TestBase checks the base's resources as a whole, without kustomize: the
// base is written out in full (selectors included) so it is complete, and
// kustomize only adds labels and the image tag.
func TestBase(t *testing.T) {
	docs := loadTree(t)
	var base *kustomization
	var objs []doc
	for _, d := range docs {
		if d.file == "base/kustomization.yaml" {
			base = d.obj.(*kustomization)
		}
	}
	if base == nil {
		t.Fatal("no base/kustomization.yaml")
	}
	if len(base.Components) > 0 {
		t.Errorf("base/kustomization.yaml: components %v; the base opts in to nothing", base.Components)
	}
	for _, d := range docs {
		for _, r := range base.Resources {
			if d.file == filepath.ToSlash(filepath.Join("base", r)) {
				objs = append(objs, d)
			}
		}
	}
	b := checkBundle(t, "base (files)", objs, want{})
	checkBaseValues(t, "base (files)", b)
	if b.ctr != nil && strings.ContainsAny(imageTagPart(b.ctr.Image), ":@") {
		t.Errorf("base/statefulset.yaml: image %q carries a tag or digest; set it with images: in base/kustomization.yaml only", b.ctr.Image)
	}
}

// TestSplitDocs pins the splitter the other tests rely on.
func TestSplitDocs(t *testing.T) {
	in := "# header only\n---\na: 1\n--- # comment\n\n# c\n---\nb: |\n  ---x\n  y\n"
	got := splitDocs([]byte(in))
	if len(got) != 2 || !strings.HasPrefix(string(got[0]), "a: 1") || !strings.Contains(string(got[1]), "---x") {
		t.Fatalf("splitDocs = %q", got)
	}
	if _, err := decodeDoc("x", []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\nbogus: 1\n")); err == nil {
		t.Error("an unknown field decoded")
	}
	if _, err := decodeDoc("x", []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n")); err == nil {
		t.Error("an unknown kind decoded")
	}
}
