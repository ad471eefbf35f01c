// Package deploy holds isoedge's Kubernetes manifests: a kustomize base in
// base/ and overlays in overlays/. It has no code; its test decodes every
// manifest strictly and checks it against the configuration the binary reads.
package deploy
