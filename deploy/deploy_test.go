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
	"os/exec"
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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
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
	runAsUser       = 1001
	// shutdownTimeout is how long main.run waits for open downloads after
	// SIGTERM; the grace period must be longer.
	shutdownTimeout = 30
)

// kustomization mirrors the fields of kustomize.config.k8s.io/v1beta1
// Kustomization that these manifests use. Anything else fails to decode.
type kustomization struct {
	APIVersion   string            `json:"apiVersion"`
	Kind         string            `json:"kind"`
	Namespace    string            `json:"namespace,omitempty"`
	NamePrefix   string            `json:"namePrefix,omitempty"`
	Resources    []string          `json:"resources,omitempty"`
	CommonLabels map[string]string `json:"commonLabels,omitempty"`
	Labels       []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels,omitempty"`
	Patches []kustomizePatch `json:"patches,omitempty"`
	Images  []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
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
	case "kustomize.config.k8s.io/v1beta1 Kustomization":
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
// e.first, e.int64, e.bool, e.duration, e.get, stringMap), found by parsing
// config/*.go. A manifest naming anything else sets a variable nobody reads.
func configVars(t *testing.T) map[string]bool {
	t.Helper()
	lookups := map[string]bool{"str": true, "first": true, "int64": true, "bool": true, "duration": true, "get": true, "stringMap": true}
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
// binary reads (also in its CLUSTER-IMAGE_ form) and none is set twice.
func checkEnvNames(t *testing.T, where string, spec corev1.PodSpec, vars map[string]bool) {
	t.Helper()
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		seen := map[string]bool{}
		for _, e := range c.Env {
			if !vars[strings.TrimPrefix(e.Name, "CLUSTER-IMAGE_")] {
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
// as the data volume claim, leaves headroom on that volume.
func checkBudget(t *testing.T, where string, sts *appsv1.StatefulSet) {
	t.Helper()
	var budget string
	for _, c := range sts.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == "DATA_DIR_MAX_BYTES" {
				budget = e.Value
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
		if pvc.Name != "data" {
			continue
		}
		size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		// At least one RHCOS ISO (~1.2 GB) of headroom for a download in flight.
		if n+(1<<30) > size.Value() {
			t.Errorf("%s: DATA_DIR_MAX_BYTES %d leaves less than 1 GiB free on the %s data volume", where, n, size.String())
		}
	}
}

// TestKustomizations checks that every kustomization's files exist and that
// every YAML file under deploy/ is used by one.
func TestKustomizations(t *testing.T) {
	docs := loadTree(t)
	used := map[string]bool{}
	found := 0
	for _, d := range docs {
		k, ok := d.obj.(*kustomization)
		if !ok {
			continue
		}
		found++
		used[d.file] = true
		dir := filepath.Dir(d.file)
		if len(k.Resources) == 0 {
			t.Errorf("%s: no resources", d.where)
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
				if _, err := os.Stat(filepath.Join(p, "kustomization.yaml")); err != nil {
					t.Errorf("%s: resource directory %s has no kustomization.yaml", d.where, r)
				}
			default:
				used[filepath.ToSlash(p)] = true
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
	if found < 2 {
		t.Errorf("found %d kustomizations, want base and at least one overlay", found)
	}
	for _, d := range docs {
		if !used[d.file] {
			t.Errorf("%s is not used by any kustomization", d.file)
			used[d.file] = true
		}
	}
}

func insideDeploy(p string) bool {
	rel := filepath.Clean(p)
	return rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// TestBase checks the base's resources as a whole, without kustomize: the
// base is written out in full (selectors included) so it is complete.
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
	for _, d := range docs {
		for _, r := range base.Resources {
			if d.file == filepath.ToSlash(filepath.Join("base", r)) {
				objs = append(objs, d)
			}
		}
	}
	b := checkBundle(t, "base", objs)
	if b.sts == nil {
		return
	}
	if got := ptrVal(b.sts.Spec.Replicas, 1); got != 3 {
		t.Errorf("base: replicas %d, want 3", got)
	}
	if b.pdb != nil && (b.pdb.Spec.MinAvailable == nil || b.pdb.Spec.MinAvailable.IntValue() != 2) {
		t.Errorf("base: PDB minAvailable %v, want 2", b.pdb.Spec.MinAvailable)
	}
	want := map[string]string{"cpu": "250m", "memory": "128Mi"}
	for k, v := range want {
		if q := b.ctr.Resources.Requests[corev1.ResourceName(k)]; q.Cmp(resource.MustParse(v)) != 0 {
			t.Errorf("base: request %s %s, want %s", k, q.String(), v)
		}
	}
	want = map[string]string{"cpu": "2", "memory": "256Mi"}
	for k, v := range want {
		if q := b.ctr.Resources.Limits[corev1.ResourceName(k)]; q.Cmp(resource.MustParse(v)) != 0 {
			t.Errorf("base: limit %s %s, want %s", k, q.String(), v)
		}
	}
}

// TestKustomizeBuild renders every kustomization with kustomize (or
// kubectl kustomize) and checks the result as a whole.
func TestKustomizeBuild(t *testing.T) {
	var build func(dir string) ([]byte, error)
	if p, err := exec.LookPath("kustomize"); err == nil {
		build = func(dir string) ([]byte, error) { return run(p, "build", dir) }
	} else if p, err := exec.LookPath("kubectl"); err == nil {
		build = func(dir string) ([]byte, error) { return run(p, "kustomize", dir) }
	} else {
		fmt.Println("deploy: neither kustomize nor kubectl in PATH: skipping kustomize build")
		t.Skip("neither kustomize nor kubectl in PATH")
	}
	for _, d := range loadTree(t) {
		if _, ok := d.obj.(*kustomization); !ok {
			continue
		}
		dir := filepath.Dir(d.file)
		t.Run(dir, func(t *testing.T) {
			out, err := build(dir)
			if err != nil {
				t.Fatal(err)
			}
			var objs []doc
			for i, raw := range splitDocs(out) {
				od, err := decodeDoc(fmt.Sprintf("%s (built)#%d", dir, i), raw)
				if err != nil {
					t.Error(err)
					continue
				}
				objs = append(objs, od)
			}
			b := checkBundle(t, dir, objs)
			if b.sts == nil {
				return
			}
			for _, o := range objs {
				m := objectMeta(o.obj)
				if m != nil && m.Labels["app.kubernetes.io/name"] != appName {
					t.Errorf("%s: %s %s lacks label app.kubernetes.io/name=%s", o.where, o.kind, m.Name, appName)
				}
			}
			if strings.HasPrefix(dir, "overlays/edge-site") {
				checkEdgeSite(t, b)
			}
		})
	}
}

func run(name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

func objectMeta(obj any) *metav1.ObjectMeta {
	switch o := obj.(type) {
	case *appsv1.StatefulSet:
		return &o.ObjectMeta
	case *corev1.Service:
		return &o.ObjectMeta
	case *corev1.ConfigMap:
		return &o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return &o.ObjectMeta
	case *serviceMonitor:
		return &o.ObjectMeta
	}
	return nil
}

// checkEdgeSite checks what the edge-site overlay promises.
func checkEdgeSite(t *testing.T, b bundle) {
	t.Helper()
	if got := ptrVal(b.sts.Spec.Replicas, 1); got != 1 {
		t.Errorf("edge-site: replicas %d, want 1", got)
	}
	if b.cfg != nil {
		if b.cfg.Fetch != config.FetchLazy {
			t.Errorf("edge-site: OS_IMAGES_FETCH %q, want lazy", b.cfg.Fetch)
		}
		if b.cfg.DataDirMaxBytes <= 0 {
			t.Error("edge-site: DATA_DIR_MAX_BYTES not set")
		}
	}
	checkBudget(t, "edge-site (built)", b.sts)
	if q := b.dataSize; q.Cmp(resource.MustParse("20Gi")) >= 0 {
		t.Errorf("edge-site: data volume %s, want smaller than the base's 20Gi", q.String())
	}
}

// bundle is a complete set of resources, as applied to a cluster.
type bundle struct {
	sts      *appsv1.StatefulSet
	ctr      *corev1.Container
	pdb      *policyv1.PodDisruptionBudget
	cfg      *config.Config
	dataSize resource.Quantity
}

// checkBundle checks a complete set of resources (the base's files, or a
// kustomize build) for consistency with each other and with the binary.
func checkBundle(t *testing.T, name string, objs []doc) bundle {
	t.Helper()
	var b bundle
	var services []*corev1.Service
	var monitors []*serviceMonitor
	configMaps := map[string]*corev1.ConfigMap{}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *appsv1.StatefulSet:
			if b.sts != nil {
				t.Errorf("%s: more than one StatefulSet", name)
			}
			b.sts = v
		case *corev1.Service:
			services = append(services, v)
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
			checkOSImages(t, o.where, v)
		case *policyv1.PodDisruptionBudget:
			if b.pdb != nil {
				t.Errorf("%s: more than one PodDisruptionBudget", name)
			}
			b.pdb = v
		case *serviceMonitor:
			monitors = append(monitors, v)
		case *kustomization:
			t.Errorf("%s: a Kustomization among the resources", o.where)
		}
	}
	if b.sts == nil {
		t.Errorf("%s: no StatefulSet", name)
		return b
	}
	sts := b.sts
	pod := sts.Spec.Template.Spec
	podLabels := labels.Set(sts.Spec.Template.Labels)
	where := name + ": StatefulSet " + sts.Name

	// Workload shape.
	if sts.Name != appName {
		t.Errorf("%s: name %q, want %q", where, sts.Name, appName)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("%s: podManagementPolicy %q, want Parallel", where, sts.Spec.PodManagementPolicy)
	}
	if !selects(t, where, sts.Spec.Selector, podLabels) {
		t.Errorf("%s: selector %v does not match the pod labels %v", where, sts.Spec.Selector, podLabels)
	}
	if g := ptrVal(pod.TerminationGracePeriodSeconds, 30); g <= shutdownTimeout {
		t.Errorf("%s: terminationGracePeriodSeconds %d, want more than the %ds shutdown timeout", where, g, shutdownTimeout)
	}
	for _, c := range pod.Containers {
		if c.Name == containerName {
			b.ctr = &c
		}
	}
	if b.ctr == nil {
		t.Errorf("%s: no container %q", where, containerName)
		return b
	}
	ctr := b.ctr
	if ctr.Image == "" {
		t.Errorf("%s: container has no image", where)
	}

	// Environment: every name is read by the binary, and the values load.
	checkEnvNames(t, where, pod, configVars(t))
	env := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm := configMaps[ref.Name]
			if cm == nil {
				t.Errorf("%s: %s refers to ConfigMap %s, which is not part of %s", where, e.Name, ref.Name, name)
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Errorf("%s: %s refers to key %s missing from ConfigMap %s", where, e.Name, ref.Key, ref.Name)
				continue
			}
			env[e.Name] = v
		default:
			// Secret or field references cannot be resolved here.
			t.Logf("%s: %s comes from a reference that is not checked", where, e.Name)
		}
	}
	cfg, err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Errorf("%s: the container's environment does not load: %v", where, err)
		return b
	}
	b.cfg = cfg
	if cfg.Sample {
		t.Errorf("%s: no OS_IMAGES: the binary would serve its built-in sample", where)
	}
	if cfg.DataDir != config.DefaultDataDir || cfg.DataTempDir != config.DefaultDataTempDir {
		t.Errorf("%s: DATA_DIR %q, DATA_TEMP_DIR %q; want %s and %s (the image's volumes)", where, cfg.DataDir, cfg.DataTempDir, config.DefaultDataDir, config.DefaultDataTempDir)
	}

	// Ports and listeners, following main.listeners (the original's table):
	// with HTTP_LISTEN_PORT set, LISTEN_PORT is used only for HTTPS.
	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports[portImage] != portImageNumber || ports[portPXE] != portPXENumber || len(ports) != 2 {
		t.Errorf("%s: container ports %v, want %s=%d and %s=%d", where, ports, portImage, portImageNumber, portPXE, portPXENumber)
	}
	listening := listeners(cfg) // port → TLS
	for pname, num := range ports {
		if _, ok := listening[strconv.Itoa(int(num))]; !ok {
			t.Errorf("%s: container port %s (%d) is not listened on with this environment (listeners %v)", where, pname, num, listening)
		}
	}
	if cfg.ListenPort != strconv.Itoa(portImageNumber) || cfg.HTTPListenPort != strconv.Itoa(portPXENumber) {
		t.Errorf("%s: LISTEN_PORT %q and HTTP_LISTEN_PORT %q, want %d and %d", where, cfg.ListenPort, cfg.HTTPListenPort, portImageNumber, portPXENumber)
	}
	imageTLS := listening[strconv.Itoa(portImageNumber)]
	if pxeTLS, ok := listening[strconv.Itoa(portPXENumber)]; ok && pxeTLS {
		t.Errorf("%s: port %s must be plain HTTP for iPXE", where, portPXE)
	}
	wantScheme := corev1.URISchemeHTTP
	if imageTLS {
		wantScheme = corev1.URISchemeHTTPS
	}

	// Probes.
	checkProbe(t, where+" liveness", ctr.LivenessProbe, "/live", wantScheme, ports, 30)
	checkProbe(t, where+" readiness", ctr.ReadinessProbe, "/health", wantScheme, ports, -1)

	// Volumes: DATA_DIR on the claim, DATA_TEMP_DIR on a bounded emptyDir,
	// key pair on a read-only mount; nothing else is written.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	claims := map[string]corev1.PersistentVolumeClaim{}
	for _, c := range sts.Spec.VolumeClaimTemplates {
		claims[c.Name] = c
	}
	if m, ok := mounts[cfg.DataDir]; !ok {
		t.Errorf("%s: nothing mounted at DATA_DIR %s", where, cfg.DataDir)
	} else if c, ok := claims[m.Name]; !ok {
		t.Errorf("%s: DATA_DIR %s is volume %s, not a volumeClaimTemplate", where, cfg.DataDir, m.Name)
	} else {
		if m.ReadOnly {
			t.Errorf("%s: DATA_DIR mounted read-only", where)
		}
		if !slices.Contains(c.Spec.AccessModes, corev1.ReadWriteOnce) {
			t.Errorf("%s: claim %s access modes %v, want ReadWriteOnce", where, c.Name, c.Spec.AccessModes)
		}
		b.dataSize = c.Spec.Resources.Requests[corev1.ResourceStorage]
		if b.dataSize.IsZero() {
			t.Errorf("%s: claim %s requests no storage", where, c.Name)
		}
	}
	if m, ok := mounts[cfg.DataTempDir]; !ok {
		t.Errorf("%s: nothing mounted at DATA_TEMP_DIR %s", where, cfg.DataTempDir)
	} else if v, ok := volumes[m.Name]; !ok || v.EmptyDir == nil {
		t.Errorf("%s: DATA_TEMP_DIR %s is not an emptyDir volume", where, cfg.DataTempDir)
	} else if v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.IsZero() {
		t.Errorf("%s: emptyDir %s has no sizeLimit", where, v.Name)
	} else if m.ReadOnly {
		t.Errorf("%s: DATA_TEMP_DIR mounted read-only", where)
	}
	for _, f := range []string{cfg.HTTPSCertFile, cfg.HTTPSKeyFile, cfg.AssistedServiceCAFile, cfg.OSImageCAFile} {
		if f == "" {
			continue
		}
		if m, ok := mountFor(ctr.VolumeMounts, f); !ok {
			t.Errorf("%s: %s is on no volume", where, f)
		} else if _, ok := volumes[m.Name]; !ok {
			t.Errorf("%s: mount %s refers to no volume %s", where, m.MountPath, m.Name)
		}
	}
	if cfg.IgnitionDir != "" {
		if _, ok := mountFor(ctr.VolumeMounts, cfg.IgnitionDir); !ok {
			t.Errorf("%s: IGNITION_DIR %s is on no volume", where, cfg.IgnitionDir)
		}
	}
	for _, m := range ctr.VolumeMounts {
		_, vol := volumes[m.Name]
		_, claim := claims[m.Name]
		if !vol && !claim {
			t.Errorf("%s: mount %s refers to no volume %s", where, m.MountPath, m.Name)
		}
	}

	checkSecurity(t, where, pod.SecurityContext, ctr.SecurityContext)

	// Resources: both set, requests within limits.
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := ctr.Resources.Requests[r]
		lim, okLim := ctr.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("%s: %s request and limit must both be set", where, r)
		} else if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above limit %s", where, r, req.String(), lim.String())
		}
	}

	// Services: select the pods, ports match the container's.
	byName := map[string]*corev1.Service{}
	for _, s := range services {
		byName[s.Name] = s
		sw := name + ": Service " + s.Name
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
			t.Errorf("%s: selector %v does not match the pod labels %v", sw, s.Spec.Selector, podLabels)
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.IntVal == 0 && target.StrVal == "" {
				target = intstr.FromInt32(p.Port)
			}
			num, ok := resolvePort(target, ports)
			if !ok {
				t.Errorf("%s: port %s targets %s, which the container does not expose", sw, p.Name, target.String())
				continue
			}
			if ports[p.Name] != num || p.Port != num {
				t.Errorf("%s: port %s (%d → %s) does not match container port %s=%d", sw, p.Name, p.Port, target.String(), p.Name, ports[p.Name])
			}
		}
	}
	if svc := byName[appName]; svc == nil {
		t.Errorf("%s: no Service %s", name, appName)
	} else {
		got := map[string]int32{}
		for _, p := range svc.Spec.Ports {
			got[p.Name] = p.Port
		}
		if got[portImage] != portImageNumber || got[portPXE] != portPXENumber {
			t.Errorf("%s: Service %s ports %v, want %s=%d and %s=%d", name, appName, got, portImage, portImageNumber, portPXE, portPXENumber)
		}
	}
	if gov := byName[sts.Spec.ServiceName]; gov == nil {
		t.Errorf("%s: serviceName %q is not a Service of %s", where, sts.Spec.ServiceName, name)
	} else if gov.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("%s: governing Service %s is not headless", where, gov.Name)
	}

	// PodDisruptionBudget: selects the pods, lets one go, keeps the rest.
	if b.pdb == nil {
		t.Errorf("%s: no PodDisruptionBudget", name)
	} else {
		pw := name + ": PodDisruptionBudget " + b.pdb.Name
		if !selects(t, pw, b.pdb.Spec.Selector, podLabels) {
			t.Errorf("%s: selector %v does not match the pod labels %v", pw, b.pdb.Spec.Selector, podLabels)
		}
		replicas := int(ptrVal(sts.Spec.Replicas, 1))
		var allowed int
		switch pdb := b.pdb.Spec; {
		case pdb.MinAvailable != nil && pdb.MaxUnavailable != nil:
			t.Errorf("%s: both minAvailable and maxUnavailable", pw)
		case pdb.MinAvailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(pdb.MinAvailable, replicas, true)
			if err != nil {
				t.Errorf("%s: minAvailable: %v", pw, err)
			}
			allowed = replicas - v
		case pdb.MaxUnavailable != nil:
			v, err := intstr.GetScaledValueFromIntOrPercent(pdb.MaxUnavailable, replicas, false)
			if err != nil {
				t.Errorf("%s: maxUnavailable: %v", pw, err)
			}
			allowed = v
		default:
			t.Errorf("%s: neither minAvailable nor maxUnavailable", pw)
		}
		if allowed < 1 {
			t.Errorf("%s: with %d replicas no pod may be evicted: node drains would block", pw, replicas)
		}
		if replicas > 1 && allowed >= replicas {
			t.Errorf("%s: with %d replicas all may be evicted at once", pw, replicas)
		}
	}

	// ServiceMonitor: selects exactly the Service with the image-service
	// port and scrapes /metrics there every 30s with the right scheme.
	if len(monitors) != 1 {
		t.Errorf("%s: %d ServiceMonitors, want 1", name, len(monitors))
	}
	for _, sm := range monitors {
		mw := name + ": ServiceMonitor " + sm.Name
		var selected []*corev1.Service
		for _, s := range services {
			if selects(t, mw, &sm.Spec.Selector, labels.Set(s.Labels)) {
				selected = append(selected, s)
			}
		}
		if len(selected) != 1 {
			names := []string{}
			for _, s := range selected {
				names = append(names, s.Name)
			}
			t.Errorf("%s: selects Services %v, want exactly one (pods would be scraped once per Service)", mw, names)
		}
		if len(sm.Spec.Endpoints) != 1 {
			t.Errorf("%s: %d endpoints, want 1", mw, len(sm.Spec.Endpoints))
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Port != portImage || ep.Path != "/metrics" || ep.Interval != "30s" {
				t.Errorf("%s: endpoint port %q path %q interval %q, want %s /metrics 30s", mw, ep.Port, ep.Path, ep.Interval, portImage)
			}
			for _, s := range selected {
				ok := false
				for _, p := range s.Spec.Ports {
					ok = ok || (p.Name == ep.Port && p.Port == ports[portImage])
				}
				if !ok {
					t.Errorf("%s: Service %s has no port %s on %d", mw, s.Name, ep.Port, ports[portImage])
				}
			}
			scheme := ep.Scheme
			if scheme == "" {
				scheme = "http"
			}
			if want := strings.ToLower(string(wantScheme)); scheme != want {
				t.Errorf("%s: scheme %q, but port %s serves %s", mw, scheme, portImage, want)
			}
			if scheme == "https" && ep.TLSConfig == nil {
				t.Errorf("%s: https without tlsConfig: the serving certificate names no pod IP", mw)
			}
		}
	}
	return b
}

// listeners mirrors main.listeners: the ports the binary listens on, each
// with whether it is TLS.
func listeners(cfg *config.Config) map[string]bool {
	haveTLS := cfg.HTTPSCertFile != "" && cfg.HTTPSKeyFile != "" && cfg.ListenPort != ""
	switch {
	case cfg.HTTPListenPort == "" && haveTLS:
		return map[string]bool{cfg.ListenPort: true}
	case cfg.HTTPListenPort == "":
		return map[string]bool{cfg.ListenPort: false}
	case !haveTLS:
		return map[string]bool{cfg.HTTPListenPort: false}
	default:
		return map[string]bool{cfg.ListenPort: true, cfg.HTTPListenPort: false}
	}
}

func checkProbe(t *testing.T, where string, p *corev1.Probe, path string, scheme corev1.URIScheme, ports map[string]int32, initialDelay int32) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s: want an httpGet probe", where)
		return
	}
	g := p.HTTPGet
	if g.Path != path {
		t.Errorf("%s: path %q, want %q", where, g.Path, path)
	}
	if n, ok := resolvePort(g.Port, ports); !ok || n != ports[portImage] {
		t.Errorf("%s: port %s, want the %s port", where, g.Port.String(), portImage)
	}
	s := g.Scheme
	if s == "" {
		s = corev1.URISchemeHTTP
	}
	if s != scheme {
		t.Errorf("%s: scheme %s, but the port serves %s", where, s, scheme)
	}
	if p.PeriodSeconds != 10 || p.FailureThreshold != 3 {
		t.Errorf("%s: period %ds failure threshold %d, want 10s and 3", where, p.PeriodSeconds, p.FailureThreshold)
	}
	if initialDelay >= 0 && p.InitialDelaySeconds != initialDelay {
		t.Errorf("%s: initialDelaySeconds %d, want %d", where, p.InitialDelaySeconds, initialDelay)
	}
}

// resolvePort returns the container port number a name or number refers to.
func resolvePort(p intstr.IntOrString, ports map[string]int32) (int32, bool) {
	if p.Type == intstr.String {
		n, ok := ports[p.StrVal]
		return n, ok
	}
	for _, n := range ports {
		if n == p.IntVal {
			return n, true
		}
	}
	return 0, false
}

// mountFor returns the mount that holds path.
func mountFor(mounts []corev1.VolumeMount, path string) (corev1.VolumeMount, bool) {
	for _, m := range mounts {
		if rel, err := filepath.Rel(m.MountPath, path); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return m, true
		}
	}
	return corev1.VolumeMount{}, false
}

// selects reports whether a non-empty selector matches set.
func selects(t *testing.T, where string, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		t.Errorf("%s: empty selector", where)
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("%s: selector: %v", where, err)
		return false
	}
	return s.Matches(set)
}

// checkSecurity checks the effective security context (container settings
// override the pod's).
func checkSecurity(t *testing.T, where string, pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext) {
	t.Helper()
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if ctr == nil {
		ctr = &corev1.SecurityContext{}
	}
	runAsNonRoot := firstPtr(ctr.RunAsNonRoot, pod.RunAsNonRoot)
	uid := firstPtr(ctr.RunAsUser, pod.RunAsUser)
	seccomp := firstPtr(ctr.SeccompProfile, pod.SeccompProfile)
	if runAsNonRoot == nil || !*runAsNonRoot {
		t.Errorf("%s: runAsNonRoot must be true", where)
	}
	if uid == nil || *uid != runAsUser {
		t.Errorf("%s: runAsUser %v, want %d", where, uid, runAsUser)
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile %v, want RuntimeDefault", where, seccomp)
	}
	if ctr.ReadOnlyRootFilesystem == nil || !*ctr.ReadOnlyRootFilesystem {
		t.Errorf("%s: readOnlyRootFilesystem must be true", where)
	}
	if ctr.AllowPrivilegeEscalation == nil || *ctr.AllowPrivilegeEscalation {
		t.Errorf("%s: allowPrivilegeEscalation must be false", where)
	}
	if ctr.Privileged != nil && *ctr.Privileged {
		t.Errorf("%s: privileged", where)
	}
	if ctr.Capabilities == nil || !slices.Contains(ctr.Capabilities.Drop, "ALL") || len(ctr.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities %v, want drop ALL and add none", where, ctr.Capabilities)
	}
}

func firstPtr[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func ptrVal[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
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
