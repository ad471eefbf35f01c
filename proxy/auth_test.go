package proxy

import (
	"fmt"
	"net/url"
	"testing"

	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
)

func credCtx(query url.Values, authorization string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	uri := "/images/x"
	if len(query) > 0 {
		uri += "?" + query.Encode()
	}
	ctx.Request.SetRequestURI(uri)
	if authorization != "" {
		ctx.Request.Header.Set("Authorization", authorization)
	}
	return ctx
}

// TestCredentialPrecedence checks every combination of the five inbound
// credential forms against §C.2: the first present wins, exactly one is
// forwarded.
func TestCredentialPrecedence(t *testing.T) {
	type source struct {
		name string
		want upstream.Credential
	}
	order := []source{
		{"path api_key", upstream.Credential{Kind: upstream.CredAPIKey, Value: "path-key"}},
		{"query api_key", upstream.Credential{Kind: upstream.CredAPIKey, Value: "query-key"}},
		{"path token", upstream.Credential{Kind: upstream.CredImageToken, Value: "path-token"}},
		{"query image_token", upstream.Credential{Kind: upstream.CredImageToken, Value: "query-token"}},
		{"Authorization", upstream.Credential{Kind: upstream.CredAuthorization, Value: "Bearer a b"}},
	}
	for mask := 0; mask < 1<<len(order); mask++ {
		var names []string
		want := upstream.Credential{}
		for i := len(order) - 1; i >= 0; i-- {
			if mask&(1<<i) != 0 {
				want = order[i].want
				names = append([]string{order[i].name}, names...)
			}
		}
		t.Run(fmt.Sprintf("%02d %v", mask, names), func(t *testing.T) {
			q := url.Values{}
			var pathKey, pathToken, auth string
			if mask&1 != 0 {
				pathKey = "path-key"
			}
			if mask&2 != 0 {
				q.Set("api_key", "query-key")
			}
			if mask&4 != 0 {
				pathToken = "path-token"
			}
			if mask&8 != 0 {
				q.Set("image_token", "query-token")
			}
			if mask&16 != 0 {
				auth = "Bearer a b"
			}
			got := credential(credCtx(q, auth), pathKey, pathToken)
			if got != want {
				t.Fatalf("credential = %v %q, want %v %q", got.Kind, got.Value, want.Kind, want.Value)
			}
		})
	}
}

func TestCredentialValues(t *testing.T) {
	tests := []struct {
		name  string
		query url.Values
		auth  string
		want  upstream.Credential
	}{
		{"query value is decoded", url.Values{"api_key": {"a+b/c=="}}, "", upstream.Credential{Kind: upstream.CredAPIKey, Value: "a+b/c=="}},
		{"empty api_key falls through", url.Values{"api_key": {""}, "image_token": {"t"}}, "", upstream.Credential{Kind: upstream.CredImageToken, Value: "t"}},
		{"empty image_token falls through", url.Values{"image_token": {""}}, "Basic dXNlcjpwYXNz", upstream.Credential{Kind: upstream.CredAuthorization, Value: "Basic dXNlcjpwYXNz"}},
		{"Authorization verbatim", nil, "Bearer   spaced  token", upstream.Credential{Kind: upstream.CredAuthorization, Value: "Bearer   spaced  token"}},
		{"unrelated query", url.Values{"version": {"4.18"}}, "", upstream.Credential{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := credential(credCtx(tt.query, tt.auth), "", "")
			if got != tt.want {
				t.Fatalf("credential = %v %q, want %v %q", got.Kind, got.Value, tt.want.Kind, tt.want.Value)
			}
		})
	}
}
