//go:build abuse

package abuse

import (
	"bufio"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/isoedge/isoedge/internal/fixture"
)

// scaleIgnition is a ~60 KB ignition config for id: one file of
// pseudo-random content (base64), distinct per id, so every InfraEnv's
// ignition archive is ~45 KB and none compresses away.
func scaleIgnition(id string) []byte {
	seed := sha256.Sum256([]byte(id))
	raw := make([]byte, 44<<10)
	_, _ = rand.NewChaCha8(seed).Read(raw)
	b, _ := json.Marshal(map[string]any{
		"ignition": map[string]string{"version": "3.2.0"},
		"storage": map[string]any{"files": []map[string]any{{
			"path":     "/etc/abuse/" + id,
			"contents": map[string]string{"source": "data:;base64," + base64.StdEncoding.EncodeToString(raw)},
		}}},
	})
	return b
}

// BenchmarkScaleInfraEnvs asks for the first byte of 20,000 distinct
// InfraEnvs' ISOs (60 KB ignition each) over one keep-alive connection:
// every answer must be right and the binary's VmHWM stay within 128 MiB.
// Run it once: -run '^$' -bench BenchmarkScaleInfraEnvs -benchtime=1x.
func BenchmarkScaleInfraEnvs(b *testing.B) {
	const envs = 20000
	r := newRig(b, fixture.Options{}, nil, nil)
	r.as.ignition = scaleIgnition
	r.startReady(b)
	want := r.base.data[0]

	c, err := net.Dial("tcp", r.svc.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	b.ResetTimer()
	start := time.Now()
	for n := 0; n < b.N; n++ {
		for i := 0; i < envs; i++ {
			id := infraEnvID(0x100000 + i)
			_ = c.SetDeadline(time.Now().Add(60 * time.Second))
			if _, err := fmt.Fprintf(c, "GET /byid/%s/4.17/x86_64/full.iso HTTP/1.1\r\nHost: isoedge\r\nRange: bytes=0-0\r\n\r\n", id); err != nil {
				b.Fatalf("request %d: %v", i, err)
			}
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				b.Fatalf("request %d: %v", i, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusPartialContent || len(body) != 1 || body[0] != want {
				b.Fatalf("InfraEnv %d: %d %q %v, want 206 with the byte %#x", i, resp.StatusCode, body, err, want)
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	kb, err := r.svc.vmHWM()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(kb)/1024, "VmHWM-MiB")
	b.ReportMetric(float64(envs*b.N)/elapsed.Seconds(), "requests/s")
	if kb > memLimitKB {
		b.Errorf("VmHWM %.1f MiB after %d InfraEnvs, over 128 MiB", float64(kb)/1024, envs*b.N)
	}
}
