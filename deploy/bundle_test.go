package deploy_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/isoedge/isoedge/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// want is what a set of resources must hold, given what it was built from.
type want struct {
	name        string // StatefulSet and main Service name; appName when empty
	tls         bool   // a tls component: HTTPS on 8080, plain HTTP on 8081
	serviceCA   bool   // tls-service-ca: the Service asks OpenShift for the Secret
	certManager bool   // tls-cert-manager: a Certificate writes the Secret
	monitor     bool   // servicemonitor: one ServiceMonitor
	fsGroup     bool   // fsgroup: fsGroup 0
	rendered    bool   // built by kustomize, so the image carries its tag
}

// startupBudget is the least time the startup probe must allow before the
// liveness probe may restart the container: opening and sweeping a large
// store on a slow volume.
const startupBudget = 5 * time.Minute

// bundle is a complete set of resources, as applied to a cluster.
type bundle struct {
	sts       *appsv1.StatefulSet
	ctr       *corev1.Container
	pdb       *policyv1.PodDisruptionBudget
	cfg       *config.Config
	services  map[string]*corev1.Service
	dataSize  resource.Quantity
	tlsSecret string // Secret behind HTTPS_CERT_FILE/HTTPS_KEY_FILE
}

// checkBundle checks a complete set of resources (the base's files, or a
// kustomize build) for consistency with each other and with the binary.
func checkBundle(t *testing.T, name string, objs []doc, w want) bundle {
	t.Helper()
	if w.name == "" {
		w.name = appName
	}
	b := bundle{services: map[string]*corev1.Service{}}
	var services []*corev1.Service
	var monitors []*serviceMonitor
	var certs []*certificate
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
			b.services[v.Name] = v
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
		case *certificate:
			certs = append(certs, v)
		case *kustomization:
			t.Errorf("%s: a %s among the resources", o.where, o.kind)
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
	if sts.Name != w.name {
		t.Errorf("%s: name %q, want %q", where, sts.Name, w.name)
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
	checkSpread(t, where, pod, podLabels)
	for i, c := range pod.Containers {
		if c.Name == containerName {
			b.ctr = &pod.Containers[i]
		}
	}
	if b.ctr == nil {
		t.Errorf("%s: no container %q", where, containerName)
		return b
	}
	ctr := b.ctr
	checkImage(t, where, ctr.Image, w.rendered)

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
	// plain HTTP on LISTEN_PORT alone, or with a key pair HTTPS there and
	// plain HTTP on HTTP_LISTEN_PORT.
	ports := map[string]int32{}
	for _, p := range ctr.Ports {
		ports[p.Name] = p.ContainerPort
	}
	wantPorts := map[string]int32{portImage: portImageNumber}
	wantListen := map[string]bool{strconv.Itoa(portImageNumber): false}
	if w.tls {
		wantPorts[portPXE] = portPXENumber
		wantListen = map[string]bool{strconv.Itoa(portImageNumber): true, strconv.Itoa(portPXENumber): false}
	}
	if !maps.Equal(ports, wantPorts) {
		t.Errorf("%s: container ports %v, want %v", where, ports, wantPorts)
	}
	if got := listeners(cfg); !maps.Equal(got, wantListen) {
		t.Errorf("%s: listeners (port → TLS) %v, want %v", where, got, wantListen)
	}
	wantScheme := corev1.URISchemeHTTP
	if w.tls {
		wantScheme = corev1.URISchemeHTTPS
	}

	// Probes: the startup probe holds off liveness while the store opens.
	checkProbe(t, where+" startup", ctr.StartupProbe, "/live", wantScheme, ports, -1, -1)
	if p := ctr.StartupProbe; p != nil && time.Duration(p.PeriodSeconds*p.FailureThreshold)*time.Second < startupBudget {
		t.Errorf("%s startup: period %ds × failure threshold %d is less than %v", where, p.PeriodSeconds, p.FailureThreshold, startupBudget)
	}
	checkProbe(t, where+" liveness", ctr.LivenessProbe, "/live", wantScheme, ports, 0, 3)
	checkProbe(t, where+" readiness", ctr.ReadinessProbe, "/health", wantScheme, ports, -1, 3)

	b.dataSize, b.tlsSecret = checkVolumes(t, where, sts, cfg)
	if w.tls && b.tlsSecret == "" {
		t.Errorf("%s: HTTPS_CERT_FILE is not on a Secret volume", where)
	}
	checkSecurity(t, where, pod.SecurityContext, ctr.SecurityContext, w.fsGroup)
	checkResources(t, where, ctr, pod)
	checkServices(t, name, w, b, services, ports, podLabels, env["PEERS_DNS"])
	checkPDB(t, name, b, podLabels)
	checkMonitors(t, name, w, services, monitors, ports, wantScheme)
	checkTLSSource(t, name, w, b, certs)
	return b
}

// checkVolumes checks that DATA_DIR is on a claim, DATA_TEMP_DIR on a
// bounded emptyDir and the key pair on a volume; nothing else is written.
// It returns the data claim's size and the Secret holding the key pair.
func checkVolumes(t *testing.T, where string, sts *appsv1.StatefulSet, cfg *config.Config) (resource.Quantity, string) {
	t.Helper()
	pod := sts.Spec.Template.Spec
	var ctr corev1.Container
	for _, c := range pod.Containers {
		if c.Name == containerName {
			ctr = c
		}
	}
	var size resource.Quantity
	var secret string
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
		size = c.Spec.Resources.Requests[corev1.ResourceStorage]
		if size.IsZero() {
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
		m, ok := mountFor(ctr.VolumeMounts, f)
		if !ok {
			t.Errorf("%s: %s is on no volume", where, f)
			continue
		}
		v, ok := volumes[m.Name]
		if !ok {
			t.Errorf("%s: mount %s refers to no volume %s", where, m.MountPath, m.Name)
			continue
		}
		if f == cfg.HTTPSCertFile && v.Secret != nil {
			secret = v.Secret.SecretName
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
	return size, secret
}

// checkResources checks CPU, memory and ephemeral storage: requests and
// limits both set, requests within limits, and the ephemeral storage limit
// above the scratch emptyDir's sizeLimit, so that the sizeLimit is what
// evicts a runaway build.
func checkResources(t *testing.T, where string, ctr *corev1.Container, pod corev1.PodSpec) {
	t.Helper()
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage} {
		req, okReq := ctr.Resources.Requests[r]
		lim, okLim := ctr.Resources.Limits[r]
		if !okReq || !okLim || req.IsZero() {
			t.Errorf("%s: %s request and limit must both be set", where, r)
		} else if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above limit %s", where, r, req.String(), lim.String())
		}
	}
	lim := ctr.Resources.Limits[corev1.ResourceEphemeralStorage]
	for _, v := range pod.Volumes {
		if v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil && lim.Cmp(*v.EmptyDir.SizeLimit) <= 0 {
			t.Errorf("%s: ephemeral-storage limit %s not above emptyDir %s sizeLimit %s", where, lim.String(), v.Name, v.EmptyDir.SizeLimit.String())
		}
	}
}

// checkSpread checks that the replicas are spread over nodes without ever
// being left unscheduled for it.
func checkSpread(t *testing.T, where string, pod corev1.PodSpec, podLabels labels.Set) {
	t.Helper()
	for _, c := range pod.TopologySpreadConstraints {
		if c.TopologyKey != corev1.LabelHostname {
			continue
		}
		if c.MaxSkew != 1 {
			t.Errorf("%s: spread over nodes with maxSkew %d, want 1", where, c.MaxSkew)
		}
		if c.WhenUnsatisfiable != corev1.ScheduleAnyway {
			t.Errorf("%s: spread over nodes %s: a site with fewer nodes than replicas would leave pods pending", where, c.WhenUnsatisfiable)
		}
		if !selects(t, where+" spread", c.LabelSelector, podLabels) {
			t.Errorf("%s: spread selector %v does not match the pod labels %v", where, c.LabelSelector, podLabels)
		}
		return
	}
	t.Errorf("%s: no topologySpreadConstraint over %s", where, corev1.LabelHostname)
}

// checkImage checks that a rendered image names a version: a tag other than
// latest, or a digest.
func checkImage(t *testing.T, where, image string, rendered bool) {
	t.Helper()
	if image == "" {
		t.Errorf("%s: container has no image", where)
		return
	}
	if !rendered {
		return
	}
	last := imageTagPart(image)
	switch _, tag, hasTag := strings.Cut(last, ":"); {
	case strings.Contains(image, "@sha256:"):
	case !hasTag || tag == "" || tag == "latest":
		t.Errorf("%s: image %q is not pinned to a version", where, image)
	}
}

// imageTagPart returns an image reference's last path element (name, tag
// and digest), past any registry host:port.
func imageTagPart(image string) string {
	return image[strings.LastIndex(image, "/")+1:]
}

// checkServices checks that every Service selects the pods with ports the
// container has, that the main Service (named as the StatefulSet) serves
// the image-service port with client affinity, and that PEERS_DNS names a
// headless Service listing every replica, ready or not.
func checkServices(t *testing.T, name string, w want, b bundle, services []*corev1.Service, ports map[string]int32, podLabels labels.Set, peersDNS string) {
	t.Helper()
	sts := b.sts
	where := name + ": StatefulSet " + sts.Name
	for _, s := range services {
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
	if svc := b.services[w.name]; svc == nil {
		t.Errorf("%s: no Service %s", name, w.name)
	} else {
		got := map[string]int32{}
		for _, p := range svc.Spec.Ports {
			got[p.Name] = p.Port
		}
		if !maps.Equal(got, ports) {
			t.Errorf("%s: Service %s ports %v, want the container's %v", name, w.name, got, ports)
		}
		if svc.Spec.SessionAffinity != corev1.ServiceAffinityClientIP {
			t.Errorf("%s: Service %s sessionAffinity %q, want ClientIP (Range requests of one download on one replica)", name, w.name, svc.Spec.SessionAffinity)
		}
		if svc.Spec.ClusterIP == corev1.ClusterIPNone {
			t.Errorf("%s: Service %s is headless", name, w.name)
		}
	}
	if b.services[sts.Spec.ServiceName] == nil {
		t.Errorf("%s: serviceName %q is not a Service of %s", where, sts.Spec.ServiceName, name)
	}
	if wantPeers := sts.Name + peersSuffix; peersDNS != wantPeers {
		t.Errorf("%s: PEERS_DNS %q, want %q", where, peersDNS, wantPeers)
	} else if peers := b.services[peersDNS]; peers == nil {
		t.Errorf("%s: PEERS_DNS names %q, which is not a Service of %s", where, peersDNS, name)
	} else {
		if peers.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("%s: Service %s is not headless: its DNS name would resolve to one virtual IP", name, peers.Name)
		}
		if !peers.Spec.PublishNotReadyAddresses {
			t.Errorf("%s: Service %s does not publish replicas that are not ready", name, peers.Name)
		}
	}
}

// checkPDB checks that the PodDisruptionBudget selects the pods, lets one
// go and keeps the rest.
func checkPDB(t *testing.T, name string, b bundle, podLabels labels.Set) {
	t.Helper()
	if b.pdb == nil {
		t.Errorf("%s: no PodDisruptionBudget", name)
		return
	}
	pw := name + ": PodDisruptionBudget " + b.pdb.Name
	if !selects(t, pw, b.pdb.Spec.Selector, podLabels) {
		t.Errorf("%s: selector %v does not match the pod labels %v", pw, b.pdb.Spec.Selector, podLabels)
	}
	replicas := int(ptrVal(b.sts.Spec.Replicas, 1))
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

// checkMonitors checks the ServiceMonitor, when there must be one: it
// selects exactly one Service with the image-service port and scrapes
// /metrics there every 30s with the scheme the port serves.
func checkMonitors(t *testing.T, name string, w want, services []*corev1.Service, monitors []*serviceMonitor, ports map[string]int32, scheme corev1.URIScheme) {
	t.Helper()
	if n := len(monitors); w.monitor && n != 1 || !w.monitor && n != 0 {
		t.Errorf("%s: %d ServiceMonitors, want %d", name, n, map[bool]int{true: 1}[w.monitor])
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
			got := ep.Scheme
			if got == "" {
				got = "http"
			}
			if want := strings.ToLower(string(scheme)); got != want {
				t.Errorf("%s: scheme %q, but port %s serves %s", mw, got, portImage, want)
			}
			if got == "https" && ep.TLSConfig == nil {
				t.Errorf("%s: https without tlsConfig: the serving certificate names no pod IP", mw)
			}
		}
	}
}

// checkTLSSource checks that whatever should write the key pair's Secret
// writes the one the pods mount: OpenShift's service CA for the main
// Service, or a cert-manager Certificate.
func checkTLSSource(t *testing.T, name string, w want, b bundle, certs []*certificate) {
	t.Helper()
	const annotation = "service.beta.openshift.io/serving-cert-secret-name"
	for _, s := range b.services {
		v, ok := s.Annotations[annotation]
		switch {
		case ok && (!w.serviceCA || s.Name != w.name):
			t.Errorf("%s: Service %s has %s but only tls-service-ca sets it, on %s", name, s.Name, annotation, w.name)
		case ok && v != b.tlsSecret:
			t.Errorf("%s: Service %s: the service CA writes Secret %q, the pods mount %q", name, s.Name, v, b.tlsSecret)
		}
	}
	if svc := b.services[w.name]; w.serviceCA && svc != nil && svc.Annotations[annotation] == "" {
		t.Errorf("%s: Service %s lacks %s", name, w.name, annotation)
	}
	if n := len(certs); w.certManager && n != 1 || !w.certManager && n != 0 {
		t.Errorf("%s: %d Certificates, want %d", name, n, map[bool]int{true: 1}[w.certManager])
	}
	for _, c := range certs {
		cw := name + ": Certificate " + c.Name
		if c.Spec.SecretName != b.tlsSecret {
			t.Errorf("%s: writes Secret %q, the pods mount %q", cw, c.Spec.SecretName, b.tlsSecret)
		}
		if c.Spec.IssuerRef.Name == "" || c.Spec.IssuerRef.Kind == "" {
			t.Errorf("%s: issuerRef %+v: name and kind must be set", cw, c.Spec.IssuerRef)
		}
		if len(c.Spec.DNSNames) == 0 {
			t.Errorf("%s: no dnsNames", cw)
		}
		if c.Spec.Duration != "" {
			if d, err := time.ParseDuration(c.Spec.Duration); err != nil || d < 24*time.Hour {
				t.Errorf("%s: duration %q: want a Go duration of a day or more", cw, c.Spec.Duration)
			}
		}
	}
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

// checkProbe checks an httpGet probe on the image-service port. A negative
// initialDelay or failureThreshold is not checked.
func checkProbe(t *testing.T, where string, p *corev1.Probe, path string, scheme corev1.URIScheme, ports map[string]int32, initialDelay, failureThreshold int32) {
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
	if p.PeriodSeconds != 10 {
		t.Errorf("%s: period %ds, want 10s", where, p.PeriodSeconds)
	}
	if failureThreshold >= 0 && p.FailureThreshold != failureThreshold {
		t.Errorf("%s: failure threshold %d, want %d", where, p.FailureThreshold, failureThreshold)
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
// override the pod's). No UID or GID is pinned, so that OpenShift's
// restricted-v2 SCC can assign them; fsGroup only where the fsgroup
// component asks for it, and then 0 without a chown of the whole store on
// every start.
func checkSecurity(t *testing.T, where string, pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext, fsGroup bool) {
	t.Helper()
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if ctr == nil {
		ctr = &corev1.SecurityContext{}
	}
	if pod.RunAsUser != nil || ctr.RunAsUser != nil {
		t.Errorf("%s: runAsUser is set; OpenShift's restricted-v2 assigns it", where)
	}
	if pod.RunAsGroup != nil || ctr.RunAsGroup != nil {
		t.Errorf("%s: runAsGroup is set; the image runs in group 0", where)
	}
	switch {
	case !fsGroup && pod.FSGroup != nil:
		t.Errorf("%s: fsGroup %d is set; only the fsgroup component sets it", where, *pod.FSGroup)
	case fsGroup && (pod.FSGroup == nil || *pod.FSGroup != 0):
		t.Errorf("%s: fsGroup %s, want 0 (the group isoedge runs in)", where, ptrString(pod.FSGroup))
	case fsGroup && ptrVal(pod.FSGroupChangePolicy, "") != corev1.FSGroupChangeOnRootMismatch:
		t.Errorf("%s: fsGroupChangePolicy %s, want OnRootMismatch", where, ptrString(pod.FSGroupChangePolicy))
	}
	if len(pod.SupplementalGroups) > 0 {
		t.Errorf("%s: supplementalGroups %v pinned", where, pod.SupplementalGroups)
	}
	runAsNonRoot := firstPtr(ctr.RunAsNonRoot, pod.RunAsNonRoot)
	seccomp := firstPtr(ctr.SeccompProfile, pod.SeccompProfile)
	if runAsNonRoot == nil || !*runAsNonRoot {
		t.Errorf("%s: runAsNonRoot must be true", where)
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

// checkBaseValues checks the base's sizing: three replicas of which two stay
// up, as the original's template, and the requests and limits BENCHMARKS.md
// gives.
func checkBaseValues(t *testing.T, name string, b bundle) {
	t.Helper()
	if b.sts == nil || b.ctr == nil {
		return
	}
	if got := ptrVal(b.sts.Spec.Replicas, 1); got != 3 {
		t.Errorf("%s: replicas %d, want 3", name, got)
	}
	if b.pdb != nil && (b.pdb.Spec.MinAvailable == nil || b.pdb.Spec.MinAvailable.IntValue() != 2) {
		t.Errorf("%s: PDB minAvailable %v, want 2", name, b.pdb.Spec.MinAvailable)
	}
	if gov := b.services[b.sts.Spec.ServiceName]; gov != nil && gov.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("%s: governing Service %s is not headless: no per-pod DNS names", name, gov.Name)
	}
	want := map[string]string{"cpu": "250m", "memory": "128Mi"}
	for k, v := range want {
		if q := b.ctr.Resources.Requests[corev1.ResourceName(k)]; q.Cmp(resource.MustParse(v)) != 0 {
			t.Errorf("%s: request %s %s, want %s", name, k, q.String(), v)
		}
	}
	want = map[string]string{"cpu": "2", "memory": "256Mi"}
	for k, v := range want {
		if q := b.ctr.Resources.Limits[corev1.ResourceName(k)]; q.Cmp(resource.MustParse(v)) != 0 {
			t.Errorf("%s: limit %s %s, want %s", name, k, q.String(), v)
		}
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

// ptrString formats what p points at, or "unset".
func ptrString[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func ptrVal[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
