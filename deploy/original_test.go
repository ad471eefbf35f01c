package deploy_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/isoedge/isoedge/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// replaceOverlay is the overlay that takes over a running
// assisted-image-service.
const replaceOverlay = "overlays/replace-assisted-image-service"

// The original's values, from openshift/assisted-image-service
// deploy/template.yaml (the OpenShift template; read at commit a55e383,
// 2026-07-24). These values are unchanged since the template's first
// version (df7c375, 2021-11) except PV_SIZE's default: 10Gi until a13506f
// (2022-01), 15Gi since; a StatefulSet keeps the size it was created with,
// so the README says to check the live one. The StatefulSet fields
// Kubernetes will not change in place (selector, serviceName,
// podManagementPolicy, volumeClaimTemplates) must equal these, or the
// overlay cannot be applied over it; the names make the objects replace
// the original's instead of adding to them.
const (
	origName           = "assisted-image-service" // StatefulSet, Service, PDB, serviceName, claim template, volume
	origSelectorKey    = "service"
	origSelectorValue  = "image-service"
	origServiceLabel   = "name" // = origName; the template's ServiceMonitor selects it
	origServiceAccount = "assisted-service"
	origPortName       = "image-service" // the Service's port 8080
	origPort           = 8080
	origDataDir        = "/data"
	origDataTempDir    = "/data_temp"
	origClaimSize      = "15Gi" // the PV_SIZE parameter's default
)

// origEnv is the environment the template sets that isoedge reads, with
// the template's values (RHCOS_VERSIONS and IMAGE_SERVICE_BASE_URL are
// parameters, set per deployment).
var origEnv = map[string]string{
	"LISTEN_PORT":             "8080",
	"ASSISTED_SERVICE_SCHEME": "http",
	"ASSISTED_SERVICE_HOST":   "assisted-service:8090",
	"DATA_DIR":                origDataDir,
	"DATA_TEMP_DIR":           origDataTempDir,
}

// checkReplaceOverlay checks that the replace overlay renders the original
// template's names and immutable StatefulSet fields.
func checkReplaceOverlay(t *testing.T, name string, objs []doc, b bundle) {
	t.Helper()
	sts := b.sts
	if sts == nil || b.ctr == nil {
		return
	}
	where := name + ": StatefulSet " + sts.Name
	origSelector := map[string]string{origSelectorKey: origSelectorValue}

	// The StatefulSet: name, and the fields an update may not change.
	if sts.Name != origName {
		t.Errorf("%s: name %q, want the original's %q", where, sts.Name, origName)
	}
	if sts.Spec.ServiceName != origName {
		t.Errorf("%s: serviceName %q, want the original's %q", where, sts.Spec.ServiceName, origName)
	}
	if sel := sts.Spec.Selector; sel == nil || len(sel.MatchExpressions) > 0 || !maps.Equal(sel.MatchLabels, origSelector) {
		t.Errorf("%s: selector %v, want exactly the original's matchLabels %v", where, sel, origSelector)
	}
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Errorf("%s: podManagementPolicy %q, want the original's Parallel", where, sts.Spec.PodManagementPolicy)
	}
	checkOrigClaim(t, where, sts.Spec.VolumeClaimTemplates)
	if sts.Spec.Template.Spec.ServiceAccountName != origServiceAccount {
		t.Errorf("%s: serviceAccountName %q, want the original's %q (same SCC, same UID range)", where, sts.Spec.Template.Spec.ServiceAccountName, origServiceAccount)
	}

	// The data volume at the original's DATA_DIR, under the original's name.
	ok := false
	for _, m := range b.ctr.VolumeMounts {
		ok = ok || (m.Name == origName && m.MountPath == origDataDir)
	}
	if !ok {
		t.Errorf("%s: claim %s is not mounted at %s", where, origName, origDataDir)
	}
	for k, v := range origEnv {
		got, found := "", false
		for _, e := range b.ctr.Env {
			if e.Name == k {
				got, found = e.Value, true
			}
		}
		if !found || got != v {
			t.Errorf("%s: %s = %q (set %v), want the original's %q", where, k, got, found, v)
		}
	}
	if b.cfg != nil && b.cfg.DataDir != origDataDir {
		t.Errorf("%s: DATA_DIR %q, want %q", where, b.cfg.DataDir, origDataDir)
	}
	port := false
	for _, p := range b.ctr.Ports {
		port = port || (p.Name == origPortName && p.ContainerPort == origPort)
	}
	if !port {
		t.Errorf("%s: no container port %s=%d", where, origPortName, origPort)
	}

	// The Service and the PDB, by the original's names and selectors.
	if svc := b.services[origName]; svc == nil {
		t.Errorf("%s: no Service %s", name, origName)
	} else {
		if !maps.Equal(svc.Spec.Selector, origSelector) {
			t.Errorf("%s: Service %s selector %v, want the original's %v", name, origName, svc.Spec.Selector, origSelector)
		}
		if svc.Labels[origServiceLabel] != origName {
			t.Errorf("%s: Service %s lacks the original's label %s=%s", name, origName, origServiceLabel, origName)
		}
		found := false
		for _, p := range svc.Spec.Ports {
			found = found || (p.Name == origPortName && p.Port == origPort && p.Protocol == corev1.ProtocolTCP)
		}
		if !found {
			t.Errorf("%s: Service %s has no TCP port %s=%d", name, origName, origPortName, origPort)
		}
	}
	var pdbs []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		if p, ok := o.obj.(*policyv1.PodDisruptionBudget); ok {
			pdbs = append(pdbs, p)
		}
	}
	if len(pdbs) != 1 || pdbs[0].Name != origName {
		t.Errorf("%s: PodDisruptionBudgets %v, want one named %s (a second would add to the original's)", name, pdbNames(pdbs), origName)
	} else if sel := pdbs[0].Spec.Selector; sel == nil || !maps.Equal(sel.MatchLabels, origSelector) || len(sel.MatchExpressions) > 0 {
		t.Errorf("%s: PodDisruptionBudget selector %v, want the original's %v", name, sel, origSelector)
	}
	if peers := b.services[origName+peersSuffix]; peers == nil {
		t.Errorf("%s: no Service %s%s", name, origName, peersSuffix)
	}
}

// checkOrigClaim checks that the claim templates are exactly the
// original's: one, named as it, ReadWriteOnce, the template's size, and
// nothing the template does not set (labels, storage class, volume mode),
// since any difference is an update Kubernetes refuses.
func checkOrigClaim(t *testing.T, where string, claims []corev1.PersistentVolumeClaim) {
	t.Helper()
	if len(claims) != 1 {
		t.Errorf("%s: %d volumeClaimTemplates, want the original's one", where, len(claims))
		return
	}
	c := claims[0]
	if c.Name != origName {
		t.Errorf("%s: volumeClaimTemplate %q, want the original's %q", where, c.Name, origName)
	}
	if len(c.Labels) > 0 || len(c.Annotations) > 0 {
		t.Errorf("%s: volumeClaimTemplate labels %v annotations %v; the original's has none", where, c.Labels, c.Annotations)
	}
	if !slices.Equal(c.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}) {
		t.Errorf("%s: access modes %v, want the original's [ReadWriteOnce]", where, c.Spec.AccessModes)
	}
	size, ok := c.Spec.Resources.Requests[corev1.ResourceStorage]
	if !ok || size.Cmp(resource.MustParse(origClaimSize)) != 0 || len(c.Spec.Resources.Requests) != 1 || len(c.Spec.Resources.Limits) > 0 {
		t.Errorf("%s: claim resources %v, want the original's storage request %s alone", where, c.Spec.Resources, origClaimSize)
	}
	if c.Spec.StorageClassName != nil || c.Spec.VolumeMode != nil || c.Spec.Selector != nil || c.Spec.DataSource != nil || c.Spec.DataSourceRef != nil || c.Spec.VolumeName != "" {
		t.Errorf("%s: claim sets fields the original's does not: %+v", where, c.Spec)
	}
}

func pdbNames(ps []*policyv1.PodDisruptionBudget) []string {
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return names
}

// TestOriginalValues pins the original's values against the image's
// defaults, so that the overlay's DATA_DIR is also where the image and
// config/ look.
func TestOriginalValues(t *testing.T) {
	if origDataDir != config.DefaultDataDir || origDataTempDir != config.DefaultDataTempDir {
		t.Errorf("the original's DATA_DIR %s, DATA_TEMP_DIR %s differ from config's defaults %s, %s", origDataDir, origDataTempDir, config.DefaultDataDir, config.DefaultDataTempDir)
	}
	if origEnv["LISTEN_PORT"] != config.DefaultListenPort {
		t.Errorf("the original's LISTEN_PORT %s differs from config's default %s", origEnv["LISTEN_PORT"], config.DefaultListenPort)
	}
}
