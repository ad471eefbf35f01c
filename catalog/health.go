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

// Ready reports whether the service may answer image requests: at least
// one image is stored, and every configured image is servable with what
// derives from it (minimal template, nmstatectl) or failing. A failing or
// stalled image never holds the others back; one downloading for the
// first time does, as in the original. Images fetched on request (lazy
// mode, evicted for the disk budget) are not configured to be present: in
// lazy mode the service is ready once the store has been read.
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
		return c.firstPass
	}
	stored := false
	for _, e := range c.entries {
		// An image whose derived build fails still serves its full ISO,
		// PXE initrd and boot artifacts: it counts as serving.
		stored = stored || e.state == StateReady
		servable := e.state == StateReady && e.derivedOK
		if !servable && !e.failing && !e.evicted {
			return false
		}
	}
	return stored
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
	// Derived is "ok" once what derives from a stored image is built.
	Derived string `json:"derived,omitempty"`
	// Failing marks an image whose last attempt failed (Error says why);
	// it does not hold readiness back.
	Failing bool `json:"failing,omitempty"`
	Evicted bool `json:"evicted,omitempty"` // removed for the disk budget; fetched on request
	// Warning says what was not built although the image is servable
	// (e.g. no nmstatectl for static networking).
	Warning string `json:"warning,omitempty"`
	// Source is the kind of source (http, file, registry, peer) this
	// process fetched the stored image from; empty when it was stored
	// before the process started.
	Source string `json:"source,omitempty"`
}

// Health returns the JSON body of /health.
func (c *Catalog) Health() []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := struct {
		Ready   bool          `json:"ready"`
		Images  []ImageStatus `json:"images"`
		Scrub   ScrubStatus   `json:"scrub"`
		Sources SourcesStatus `json:"sources"`
	}{Ready: c.readyLocked(), Images: []ImageStatus{}, Scrub: c.scrub.status(), Sources: c.sources.status(c.cfg.Peers.Enabled())}
	for _, e := range c.entries {
		s := ImageStatus{OpenshiftVersion: e.img.OpenshiftVersion, Version: e.key.Version, Arch: e.key.Arch, Type: e.key.Type, State: e.state}
		s.Failing, s.Evicted = e.failing, e.evicted
		if e.failing {
			s.Error, s.RetryAt = e.err, e.retryAt
		}
		switch e.state {
		case StateDownloading:
			if e.total > 0 {
				pct := int(e.done * 100 / e.total)
				s.Percent = &pct
			}
		case StateReady:
			s.Digest, s.Source = e.rec.Digest.String(), e.source
			if e.derivedOK {
				s.Derived, s.Warning = "ok", e.warning
			}
		}
		out.Images = append(out.Images, s)
	}
	b, _ := json.Marshal(out)
	return b
}
