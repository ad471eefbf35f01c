package deploy_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/isoedge/isoedge/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// kustomizeInstall is how to get the kustomize these tests render with;
// .ci/run installs it the same way (v5.8 needs a newer Go).
const kustomizeInstall = "GOFLAGS= GOBIN=/usr/local/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1"

// kustomizeBinary returns the kustomize to render with. Without one the
// test fails: only rendering proves the overlays and components.
func kustomizeBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kustomize")
	if err != nil {
		t.Fatalf("deploy: kustomize is not in PATH; install it with `%s`", kustomizeInstall)
	}
	out, err := run("", p, "version")
	if err != nil {
		t.Fatalf("deploy: %v; install kustomize with `%s`", err, kustomizeInstall)
	}
	if v := strings.TrimSpace(string(out)); !strings.HasPrefix(v, "v5.") {
		t.Fatalf("deploy: kustomize %q, want v5 (components, labels); install it with `%s`", v, kustomizeInstall)
	}
	return p
}

// renderCase is one rendering: a Kustomization directory under deploy/,
// with Components added in order by a throwaway kustomization.
type renderCase struct {
	resource   string
	components []string
}

func (c renderCase) String() string {
	return strings.Join(append([]string{c.resource}, c.components...), "+")
}

// Combinations rendered besides each kustomization alone and each component
// on the base: the documented order (servicemonitor before a tls component)
// and components on top of overlays.
var combinations = []renderCase{
	{resource: "base", components: []string{"components/servicemonitor", "components/tls"}},
	{resource: replaceOverlay, components: []string{"components/servicemonitor", "components/tls-service-ca"}},
	{resource: "overlays/edge-site", components: []string{"components/fsgroup", "components/tls-cert-manager"}},
}

// TestKustomizeBuild renders every kustomization, every component (on the
// base) and the combinations above with kustomize, decodes the output
// strictly and checks each result as a whole.
func TestKustomizeBuild(t *testing.T) {
	bin := kustomizeBinary(t)
	docs := loadTree(t)
	dirs := map[string]*kustomization{} // directory → Kustomization or Component
	var cases []renderCase
	for _, d := range docs {
		k, ok := d.obj.(*kustomization)
		if !ok {
			continue
		}
		dir := path.Dir(d.file)
		dirs[dir] = k
		if d.kind == "Component" {
			cases = append(cases, renderCase{resource: "base", components: []string{dir}})
		} else {
			cases = append(cases, renderCase{resource: dir})
		}
	}
	cases = append(cases, combinations...)
	base := dirs["base"]
	if base == nil || len(base.Images) != 1 {
		t.Fatal("base/kustomization.yaml must pin exactly one image with images:")
	}
	pinned := base.Images[0]
	for _, c := range cases {
		t.Run(c.String(), func(t *testing.T) {
			w := c.want(t, dirs)
			out := render(t, bin, c)
			var objs []doc
			for i, raw := range splitDocs(out) {
				od, err := decodeDoc(fmt.Sprintf("%s (built)#%d", c, i), raw)
				if err != nil {
					t.Error(err)
					continue
				}
				objs = append(objs, od)
			}
			for _, o := range objs {
				m := objectMeta(o.obj)
				if m != nil && m.Labels["app.kubernetes.io/name"] != appName {
					t.Errorf("%s: %s %s lacks label app.kubernetes.io/name=%s", o.where, o.kind, m.Name, appName)
				}
			}
			b := checkBundle(t, c.String(), objs, w)
			if b.ctr != nil {
				if want := pinnedImage(pinned); b.ctr.Image != want {
					t.Errorf("%s: image %q, want %q from base/kustomization.yaml", c, b.ctr.Image, want)
				}
			}
			switch {
			case c.resource == "base" && len(c.components) == 0:
				checkBaseValues(t, c.String(), b)
			case c.resource == "overlays/edge-site":
				checkEdgeSite(t, c.String(), b)
			case c.resource == replaceOverlay:
				checkReplaceOverlay(t, c.String(), objs, b)
			}
		})
	}
}

// want returns what the rendering must hold, from the components it
// includes (those named and those they and the kustomization include).
func (c renderCase) want(t *testing.T, dirs map[string]*kustomization) want {
	t.Helper()
	w := want{rendered: true}
	if c.resource == replaceOverlay {
		w.name = origName
	}
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		k := dirs[dir]
		if k == nil {
			t.Fatalf("%s: no kustomization or component in %s", c, dir)
		}
		if k.Kind == "Component" {
			switch path.Base(dir) {
			case "tls":
				w.tls = true
			case "tls-service-ca":
				w.serviceCA = true
			case "tls-cert-manager":
				w.certManager = true
			case "servicemonitor":
				w.monitor = true
			case "fsgroup":
				w.fsGroup = true
			default:
				t.Fatalf("component %s: say in renderCase.want what it promises", dir)
			}
		}
		for _, sub := range k.Components {
			visit(path.Clean(path.Join(dir, sub)))
		}
		for _, r := range k.Resources {
			if sub := path.Clean(path.Join(dir, r)); dirs[sub] != nil {
				visit(sub)
			}
		}
	}
	visit(c.resource)
	for _, comp := range c.components {
		visit(comp)
	}
	return w
}

// render builds c with kustomize: the kustomization directory itself, or a
// throwaway kustomization in a temporary directory that names it and the
// components by relative path (kustomize refuses absolute ones).
func render(t *testing.T, bin string, c renderCase) []byte {
	t.Helper()
	if len(c.components) == 0 {
		out, err := run("", bin, "build", c.resource)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	rel := func(dir string) string {
		r, err := filepath.Rel(tmp, filepath.Join(here, dir))
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
	k := kustomization{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Resources: []string{rel(c.resource)}}
	for _, comp := range c.components {
		k.Components = append(k.Components, rel(comp))
	}
	data, err := yaml.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "kustomization.yaml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(tmp, bin, "build", ".")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pinnedImage is the image reference kustomize writes for an images: entry.
func pinnedImage(i kustomizeImage) string {
	name := i.Name
	if i.NewName != "" {
		name = i.NewName
	}
	if i.Digest != "" {
		return name + "@" + i.Digest
	}
	return name + ":" + i.NewTag
}

// run runs a command in dir (the current directory when empty) and returns
// its standard output.
func run(dir, name string, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, stderr.String())
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
	case *certificate:
		return &o.ObjectMeta
	}
	return nil
}

// checkEdgeSite checks what the edge-site overlay promises.
func checkEdgeSite(t *testing.T, name string, b bundle) {
	t.Helper()
	if b.sts == nil {
		return
	}
	if got := ptrVal(b.sts.Spec.Replicas, 1); got != 1 {
		t.Errorf("%s: replicas %d, want 1", name, got)
	}
	if b.cfg != nil {
		if b.cfg.Fetch != config.FetchLazy {
			t.Errorf("%s: OS_IMAGES_FETCH %q, want lazy", name, b.cfg.Fetch)
		}
		if b.cfg.DataDirMaxBytes <= 0 {
			t.Errorf("%s: DATA_DIR_MAX_BYTES not set", name)
		}
	}
	checkBudget(t, name+" (built)", b.sts)
	if q := b.dataSize; q.Cmp(resource.MustParse("20Gi")) >= 0 {
		t.Errorf("%s: data volume %s, want smaller than the base's 20Gi", name, q.String())
	}
}
