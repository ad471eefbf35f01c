package proxy

import (
	"github.com/valyala/fasthttp"
	"go.uber.org/zap"
)

// zapPath logs the request path without its query: queries carry api_key
// and image_token, and some paths carry tokens too (/bytoken, /byapikey).
func zapPath(ctx *fasthttp.RequestCtx) zap.Field {
	return zap.String("path", redactPath(string(ctx.Path())))
}

func redactPath(p string) string {
	for _, pre := range []string{"/bytoken/", "/byapikey/"} {
		if len(p) > len(pre) && p[:len(pre)] == pre {
			rest := p[len(pre):]
			for i := 0; i < len(rest); i++ {
				if rest[i] == '/' {
					return pre + "REDACTED" + rest[i:]
				}
			}
			return pre + "REDACTED"
		}
	}
	return p
}

// errField logs an error. Errors from upstream and customize never hold
// credentials by construction.
func errField(err error) zap.Field { return zap.String("error", err.Error()) }
