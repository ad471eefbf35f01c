// Package upstream talks to the services isoedge depends on: assisted-service
// for per-InfraEnv data (discovery ignition, static-network ramdisk, kernel
// arguments) and the HTTP(S) or file servers that hold the base OS images.
//
// Source is the narrow interface the proxy uses for per-InfraEnv data. Client
// implements it against assisted-service, forwarding exactly one caller
// credential per call; LocalDir implements it from plain files for standalone
// sites. FetchSnapshot gathers everything one request needs with concurrent
// calls; a ramdisk comes as a Blob, in memory within a MemoryBudget or
// spilled to an unlinked file. Fetcher streams OS images for the cache to
// ingest, bounded in time and size, and resumes only against a validator.
// RegistrySource takes one file (an ISO) out of a container image in a
// registry (docker:// URLs), with the credentials of REGISTRY_AUTH_FILE, over
// https only; see RegistrySource.Fetch for how layers are read. Peers asks
// sibling replicas (PEERS, PEERS_DNS) for a base image blob, bounded like a
// download; its answers are hints the caller verifies by digest.
//
// Errors are values the proxy maps to status codes: StatusError carries an
// assisted-service 4xx/5xx through, GatewayError (ErrBadGateway) is any
// other status the call did not expect, ErrUnavailable means the service
// could not be reached in time, ErrBadResponse means it answered with
// something we cannot use. No error text ever holds a credential or a URL
// query string.
//
// The package deliberately does not cache, coalesce or retry: those
// decisions belong to the callers, which know the request and its deadline.
package upstream
