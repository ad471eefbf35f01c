package upstream

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestCredentialNeverPrintsValue(t *testing.T) {
	const secret = "s3cr3t-value"
	tests := []struct {
		cred Credential
		want string
	}{
		{Credential{}, "none"},
		{Credential{CredAPIKey, secret}, "api_key(redacted)"},
		{Credential{CredImageToken, secret}, "image_token(redacted)"},
		{Credential{CredAuthorization, "Bearer " + secret}, "authorization(redacted)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.cred.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			js, err := json.Marshal(struct{ C Credential }{tt.cred})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{
				fmt.Sprintf("%v", tt.cred), fmt.Sprintf("%+v", tt.cred),
				fmt.Sprintf("%#v", tt.cred), fmt.Sprintf("%s", tt.cred), string(js),
			} {
				if strings.Contains(s, secret) {
					t.Errorf("formatted credential %q leaks the value", s)
				}
			}
		})
	}
}

func TestCredentialFingerprint(t *testing.T) {
	if got := (Credential{}).Fingerprint(); got != "" {
		t.Errorf("CredNone fingerprint = %q, want empty", got)
	}
	a := Credential{CredAPIKey, "x"}
	b := Credential{CredImageToken, "x"}
	if a.Fingerprint() == b.Fingerprint() {
		t.Error("same value with different kinds must have different fingerprints")
	}
	if a.Fingerprint() != (Credential{CredAPIKey, "x"}).Fingerprint() {
		t.Error("fingerprint is not stable")
	}
	if fp := a.Fingerprint(); len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "" {
		t.Errorf("fingerprint %q is not hex sha256", fp)
	}
	if a.Fingerprint() == (Credential{CredAPIKey, "y"}).Fingerprint() {
		t.Error("different values must have different fingerprints")
	}
}
