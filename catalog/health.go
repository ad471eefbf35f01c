package catalog

import (
	"encoding/json"
	"time"
)

// Base image states reported by /health.
const (
	StatePending     = "pending"
	StateDownloading = "downloading"
	StateReady       = "ready"
	StateFailed      = "failed"
	StateEvicting    = "evicting"
)

// Ready reports whether the first pass over the images is done and at
// least one image is ready.
func (c *Catalog) Ready() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.readyLocked()
}

func (c *Catalog) readyLocked() bool {
	if len(c.entries) == 0 {
		return false
	}
	if c.cfg.Lazy {
		// Nothing is fetched until asked for: ready once the store is read.
		return c.firstPass
	}
	all := true
	for _, e := range c.entries {
		if e.state != StateReady {
			all = false
		}
	}
	if all {
		return true
	}
	if !c.firstPass {
		return false
	}
	for _, e := range c.entries {
		if e.state == StateReady {
			return true
		}
	}
	return false
}

func (c *Catalog) readyCount() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, e := range c.entries {
		if e.state == StateReady {
			n++
		}
	}
	return n
}

// ImageStatus is one entry of the /health body.
type ImageStatus struct {
	OpenshiftVersion string    `json:"openshift_version"`
	Version          string    `json:"version"`
	Arch             string    `json:"cpu_architecture"`
	Type             string    `json:"type"`
	State            string    `json:"state"`
	Percent          *int      `json:"percent,omitempty"`
	Error            string    `json:"error,omitempty"`
	RetryAt          time.Time `json:"retry_at,omitzero"`
	Digest           string    `json:"digest,omitempty"`
	Derived          string    `json:"derived,omitempty"` // minimal template: "ok" or why it failed
	Warning          string    `json:"warning,omitempty"` // e.g. no nmstatectl for static networking
}

// Health returns the JSON body of /health.
func (c *Catalog) Health() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := struct {
		Ready  bool          `json:"ready"`
		Images []ImageStatus `json:"images"`
	}{Ready: c.readyLocked(), Images: []ImageStatus{}}
	for _, e := range c.entries {
		s := ImageStatus{OpenshiftVersion: e.img.OpenshiftVersion, Version: e.key.Version, Arch: e.key.Arch, Type: e.key.Type, State: e.state}
		switch e.state {
		case StateDownloading:
			if e.total > 0 {
				pct := int(e.done * 100 / e.total)
				s.Percent = &pct
			}
		case StateFailed:
			s.Error, s.RetryAt = e.err, e.retryAt
		case StateReady:
			s.Digest, s.Derived, s.Warning = e.rec.Digest.String(), e.derived, e.warning
		}
		out.Images = append(out.Images, s)
	}
	b, _ := json.Marshal(out)
	return b
}
