// Package deploy holds isoedge's Kubernetes manifests: a kustomize base in
// base/, opt-in Components in components/ (TLS, ServiceMonitor, fsGroup) and
// overlays in overlays/, among them one that replaces a running
// assisted-image-service in place (README.md). It has no code; its tests
// decode every manifest strictly, render every kustomization and component
// with kustomize, and check the results against the configuration the
// binary reads and the original's names.
package deploy
