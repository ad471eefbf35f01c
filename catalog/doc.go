// Package catalog knows which images exist and what derives from them.
//
// It owns the lifecycle of the configured base images: populating the
// store (from a sibling replica when one has the image, else download
// through upstream.Fetcher; ingest checks, commit, retry with backoff,
// lazy fetch), the disk budget (least recently served images
// evicted, never one being served), and what is derived from a full ISO
// (its minimal ISO template and nmstatectl archive), each built once per
// content digest and recorded in the index. Requests ask it which stored
// blob and parsed layout an (OpenShift or RHCOS version, architecture,
// image type) resolves to, open blob files through it, and read readiness
// from it; all from memory.
//
// It deliberately knows nothing of HTTP: the proxy maps its errors
// (ErrNotReady) to status codes.
package catalog
