package cache

import (
	"encoding/json"
	"strings"
	"testing"
)

// helloHex is sha256("hello").
const helloHex = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

func TestParseDigest(t *testing.T) {
	hello := DigestOf([]byte("hello"))
	tests := []struct {
		name    string
		in      string
		want    Digest
		wantErr bool
	}{
		{name: "prefixed", in: "sha256:" + helloHex, want: hello},
		{name: "bare", in: helloHex, want: hello},
		{name: "zero", in: strings.Repeat("0", 64), want: Digest{}},
		{name: "empty", in: "", wantErr: true},
		{name: "prefix only", in: "sha256:", wantErr: true},
		{name: "short", in: helloHex[:63], wantErr: true},
		{name: "long", in: helloHex + "0", wantErr: true},
		{name: "uppercase", in: strings.ToUpper(helloHex), wantErr: true},
		{name: "uppercase prefix", in: "SHA256:" + helloHex, wantErr: true},
		{name: "other algorithm", in: "sha512:" + helloHex, wantErr: true},
		{name: "double prefix", in: "sha256:sha256:" + helloHex, wantErr: true},
		{name: "non-hex", in: "g" + helloHex[1:], wantErr: true},
		{name: "path traversal", in: "../" + helloHex[3:], wantErr: true},
		{name: "space", in: " " + helloHex[1:], wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDigest(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDigest(%q) = %v, want error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDigest(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseDigest(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestDigestFormat(t *testing.T) {
	d := DigestOf([]byte("hello"))
	tests := []struct {
		name, got, want string
	}{
		{"String", d.String(), "sha256:" + helloHex},
		{"Hex", d.Hex(), helloHex},
		{"zero String", Digest{}.String(), "sha256:" + strings.Repeat("0", 64)},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	if d.IsZero() {
		t.Error("IsZero of a real digest = true")
	}
	if !(Digest{}).IsZero() {
		t.Error("IsZero of zero digest = false")
	}
}

func TestDigestJSON(t *testing.T) {
	type wrap struct {
		D Digest `json:"d"`
	}
	in := wrap{D: DigestOf([]byte("hello"))}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"d":"sha256:` + helloHex + `"}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var out wrap
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("round trip = %v, want %v", out.D, in.D)
	}
	if err := json.Unmarshal([]byte(`{"d":"sha256:nope"}`), &out); err == nil {
		t.Fatal("Unmarshal of a bad digest succeeded")
	}
}

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{
		"sha256:" + helloHex, helloHex, "", "sha256:", strings.ToUpper(helloHex),
		"sha512:" + helloHex, "../../etc/passwd", strings.Repeat("0", 64),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDigest(s)
		if err != nil {
			return
		}
		if s != d.String() && s != d.Hex() {
			t.Fatalf("accepted %q but it prints as %q", s, d.String())
		}
		back, err := ParseDigest(d.String())
		if err != nil || back != d {
			t.Fatalf("String() %q does not round-trip: %v, %v", d.String(), back, err)
		}
	})
}
