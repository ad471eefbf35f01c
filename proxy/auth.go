package proxy

import (
	"github.com/isoedge/isoedge/upstream"
	"github.com/valyala/fasthttp"
)

// credential picks the one credential forwarded to assisted-service, in the
// original's order: api_key path segment, api_key query parameter, token
// path segment, image_token query parameter, Authorization header.
func credential(ctx *fasthttp.RequestCtx, pathAPIKey, pathToken string) upstream.Credential {
	args := ctx.QueryArgs()
	switch {
	case pathAPIKey != "":
		return upstream.Credential{Kind: upstream.CredAPIKey, Value: pathAPIKey}
	case len(args.Peek("api_key")) > 0:
		return upstream.Credential{Kind: upstream.CredAPIKey, Value: string(args.Peek("api_key"))}
	case pathToken != "":
		return upstream.Credential{Kind: upstream.CredImageToken, Value: pathToken}
	case len(args.Peek("image_token")) > 0:
		return upstream.Credential{Kind: upstream.CredImageToken, Value: string(args.Peek("image_token"))}
	case len(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)) > 0:
		return upstream.Credential{Kind: upstream.CredAuthorization, Value: string(ctx.Request.Header.Peek(fasthttp.HeaderAuthorization))}
	}
	return upstream.Credential{}
}
