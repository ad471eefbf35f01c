//go:build abuse

package abuse

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const infraEnvPrefix = "/api/assisted-install/v2/infra-envs/"

// envBehaviour overrides how the fake assisted-service answers for one
// InfraEnv id.
type envBehaviour struct {
	ignStatus int     // non-zero: the ignition call answers this status, no Location, no body (202: a short body)
	kargs     *string // kernel_arguments string of the infra-env document
	ramdisk   []byte  // minimal-initrd body; nil answers 204
}

// assisted is a hostile assisted-service: by default it answers every
// InfraEnv id (whatever characters it holds) with a generated ignition, no
// kernel arguments and no ramdisk, for any credential. Per id behaviour,
// revoked credentials and the ignition generator can be switched while it
// runs; it counts calls by kind.
type assisted struct {
	t   testing.TB
	ln  net.Listener
	srv *http.Server

	mu         sync.Mutex
	ignition   func(id string) []byte
	envs       map[string]*envBehaviour
	revoked    map[string]bool
	ignitionAt map[string]time.Time // credential → when its last ignition answer was sent
	calls      map[string]int       // kind → count
	ids        map[string]int       // id → calls
}

func newAssisted(t testing.TB) *assisted {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &assisted{
		t: t, ln: ln,
		ignition:   defaultIgnition,
		envs:       map[string]*envBehaviour{},
		revoked:    map[string]bool{},
		ignitionAt: map[string]time.Time{},
		calls:      map[string]int{},
		ids:        map[string]int{},
	}
	a.srv = &http.Server{Handler: a}
	go a.srv.Serve(ln)
	t.Cleanup(func() { a.srv.Close() })
	return a
}

// hostPort is the ASSISTED_SERVICE_HOST value.
func (a *assisted) hostPort() string { return a.ln.Addr().String() }

// defaultIgnition is a small distinctive ignition config for id.
func defaultIgnition(id string) []byte {
	b, _ := json.Marshal(map[string]any{
		"ignition": map[string]string{"version": "3.2.0"},
		"storage": map[string]any{"files": []map[string]any{{
			"path": "/etc/abuse-infra-env", "contents": map[string]string{"source": "data:," + id},
		}}},
	})
	return append(b, '\n')
}

func (a *assisted) set(id string, b *envBehaviour) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.envs[id] = b
}

// revoke makes every call with credential cred answer 401.
func (a *assisted) revoke(cred string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.revoked[cred] = true
}

// ignitionSentAt is when the last ignition answer for cred was sent.
func (a *assisted) ignitionSentAt(cred string) time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ignitionAt[cred]
}

func (a *assisted) callCount(kind string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[kind]
}

// credentialOf is the credential a request carries, as isoedge forwards
// it: api_key query parameter, Image-Token header or Authorization header.
func credentialOf(r *http.Request) string {
	if k := r.URL.Query().Get("api_key"); k != "" {
		return k
	}
	if k := r.Header.Get("Image-Token"); k != "" {
		return k
	}
	return r.Header.Get("Authorization")
}

func (a *assisted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, infraEnvPrefix)
	if !ok || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	id, suffix, _ := strings.Cut(rest, "/")
	kind := "other"
	switch suffix {
	case "":
		kind = "infra-env"
	case "downloads/files":
		kind = "ignition"
	case "downloads/minimal-initrd":
		kind = "minimal-initrd"
	}
	cred := credentialOf(r)
	a.mu.Lock()
	a.calls[kind]++
	a.ids[id]++
	b := a.envs[id]
	revoked := a.revoked[cred]
	gen := a.ignition
	a.mu.Unlock()
	if b == nil {
		b = &envBehaviour{}
	}
	if revoked {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch kind {
	case "ignition":
		if b.ignStatus != 0 {
			if b.ignStatus == http.StatusAccepted {
				w.WriteHeader(b.ignStatus)
				fmt.Fprint(w, `{"status":"pending"}`)
				return
			}
			w.WriteHeader(b.ignStatus)
			return
		}
		if r.URL.Query().Get("file_name") != "discovery.ign" {
			http.Error(w, "bad file_name", http.StatusBadRequest)
			return
		}
		data := gen(id)
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		_, _ = w.Write(data)
		a.mu.Lock()
		a.ignitionAt[cred] = time.Now()
		a.mu.Unlock()
	case "minimal-initrd":
		if b.ramdisk == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", fmt.Sprint(len(b.ramdisk)))
		_, _ = w.Write(b.ramdisk)
	case "infra-env":
		doc := map[string]any{"id": id, "name": "abuse"}
		if b.kargs != nil {
			doc["kernel_arguments"] = *b.kargs
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	default:
		http.NotFound(w, r)
	}
}

// kargsJSON is the kernel_arguments string appending each argument.
func kargsJSON(args ...string) *string {
	type op struct {
		Operation string `json:"operation"`
		Value     string `json:"value"`
	}
	var list []op
	for _, a := range args {
		list = append(list, op{"append", a})
	}
	b, _ := json.Marshal(list)
	s := string(b)
	return &s
}
