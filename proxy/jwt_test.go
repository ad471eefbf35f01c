package proxy

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

const jwtHeader = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9" // {"alg":"RS256","typ":"JWT"}

func makeJWT(payload string, enc *base64.Encoding) string {
	return jwtHeader + "." + enc.EncodeToString([]byte(payload)) + ".c2lnbmF0dXJl"
}

func TestImageIDFromJWT(t *testing.T) {
	// A claim whose std encoding holds '+' and '/', so the std and URL
	// alphabets differ.
	const odd = `{"sub":"~~~???>>>"}`
	if s := base64.RawStdEncoding.EncodeToString([]byte(odd)); !strings.ContainsAny(s, "+/") {
		t.Fatalf("fixture %q encodes to %q, without + or /", odd, s)
	}
	// A payload whose length is not a multiple of 3, so padding is added.
	const padded = `{"infra_env_id":"abcd"}`
	if s := base64.StdEncoding.EncodeToString([]byte(padded)); !strings.HasSuffix(s, "=") {
		t.Fatalf("fixture %q encodes to %q, without padding", padded, s)
	}

	tests := []struct {
		name    string
		token   string
		want    string
		wantErr error // nil with wantAnyErr false: success
		anyErr  bool
	}{
		{"sub", makeJWT(`{"exp":1,"sub":"11111111-1111-1111-1111-111111111111"}`, base64.RawStdEncoding), "11111111-1111-1111-1111-111111111111", nil, false},
		{"infra_env_id", makeJWT(`{"infra_env_id":"22222222-2222-2222-2222-222222222222"}`, base64.RawStdEncoding), "22222222-2222-2222-2222-222222222222", nil, false},
		{"sub wins", makeJWT(`{"infra_env_id":"b","sub":"a"}`, base64.RawStdEncoding), "a", nil, false},
		{"empty sub falls back", makeJWT(`{"sub":"","infra_env_id":"b"}`, base64.RawStdEncoding), "b", nil, false},
		{"id not validated", makeJWT(`{"sub":"not-a-uuid"}`, base64.RawStdEncoding), "not-a-uuid", nil, false},
		{"std alphabet", makeJWT(odd, base64.RawStdEncoding), "~~~???>>>", nil, false},
		{"url alphabet", makeJWT(odd, base64.RawURLEncoding), "~~~???>>>", nil, false},
		{"std padded", makeJWT(padded, base64.StdEncoding), "abcd", nil, false},
		{"url padded", makeJWT(padded, base64.URLEncoding), "abcd", nil, false},
		{"more dots: second to last part", "a.b." + base64.RawStdEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + ".sig", "x", nil, false},

		{"not a JWT", "not a JWT", "", errJWTFormat, false},
		{"empty", "", "", errJWTFormat, false},
		{"one dot", "a.b", "", errJWTFormat, false},
		{"empty header", ".e30.sig", "", errJWTFormat, false},
		{"empty payload", "a..sig", "", errJWTFormat, false},
		{"empty signature", "a.e30.", "", errJWTFormat, false},
		{"only dots", "...", "", errJWTFormat, false},
		{"foo.bar.baz", "foo.bar.baz", "", nil, true},
		{"more dots, bad payload", "a.b.c.d", "", nil, true},
		{"mixed alphabets", jwtHeader + ".ab+_cd.sig", "", nil, true},
		{"not json", makeJWT(`hello`, base64.RawStdEncoding), "", nil, true},
		{"json array", makeJWT(`[]`, base64.RawStdEncoding), "", nil, true},
		{"numeric sub", makeJWT(`{"sub":5}`, base64.RawStdEncoding), "", nil, true},
		{"no claims", makeJWT(`{}`, base64.RawStdEncoding), "", errJWTNoID, false},
		{"other claims", makeJWT(`{"exp":1,"iss":"x"}`, base64.RawStdEncoding), "", errJWTNoID, false},
		{"null", makeJWT(`null`, base64.RawStdEncoding), "", errJWTNoID, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := imageIDFromJWT(tt.token)
			switch {
			case tt.anyErr:
				if err == nil {
					t.Fatalf("imageIDFromJWT(%q) = %q, want an error", tt.token, got)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("imageIDFromJWT(%q) error = %v, want %v", tt.token, err, tt.wantErr)
				}
			case err != nil:
				t.Fatalf("imageIDFromJWT(%q) error = %v", tt.token, err)
			}
			if got != tt.want {
				t.Fatalf("imageIDFromJWT(%q) = %q, want %q", tt.token, got, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), tt.token) && tt.token != "" {
				t.Fatalf("error %q repeats the token", err)
			}
		})
	}
}

func FuzzJWT(f *testing.F) {
	f.Add(makeJWT(`{"sub":"a"}`, base64.RawStdEncoding))
	f.Add(makeJWT(`{"infra_env_id":"b"}`, base64.URLEncoding))
	f.Add("foo.bar.baz")
	f.Add("not a JWT")
	f.Add("a..b.c.")
	f.Add("=.===.=")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := imageIDFromJWT(token)
		if err == nil && id == "" {
			t.Fatalf("imageIDFromJWT(%q) returned an empty id without error", token)
		}
		if err != nil && id != "" {
			t.Fatalf("imageIDFromJWT(%q) = %q with error %v", token, id, err)
		}
	})
}
