package proxy

// metricFamily documents one metric family exposed on /metrics.
type metricFamily struct {
	name string
	typ  string // Prometheus type: counter, gauge or histogram
	by   string // what registers it; "proxy" means proxy.New does
	help string // the # HELP text
}

// metricFamilies lists every family isoedge exposes, wherever it is
// registered: /metrics writes each one's HELP and TYPE from here. A family
// registered on the shared set must have a line here and a row in README's
// Metrics table; TestMetricsDocumented fails otherwise.
var metricFamilies = []metricFamily{
	{"assisted_image_service_http_request_duration_seconds", "histogram", "proxy", "Time from the start of a request until its response body is sent, by route pattern, method and status code."},
	{"assisted_image_service_http_response_size_bytes", "histogram", "proxy", "Response body bytes sent, by route pattern, method and status code."},
	{"assisted_image_service_http_requests_inflight", "gauge", "proxy", "Requests in progress, by route pattern."},
	{"isoedge_served_bytes_total", "counter", "proxy", "Response body bytes sent, by route pattern."},
	{"isoedge_body_bytes_total", "counter", "proxy", "Stored-image bytes of response bodies by how they left the process: sendfile (file to socket in the kernel) or copy (through user space)."},
	{"isoedge_image_streams_active", "gauge", "proxy", "Request slots in use (MAX_CONCURRENT_REQUESTS)."},
	{"isoedge_snapshot_requests_total", "counter", "proxy", "Image requests by how their built download was found: hit (snapshot cache), miss (built by this request) or coalesced (waited for an identical request's build)."},
	{"isoedge_build_info", "gauge", "proxy", "Always 1; the labels name the running build."},
	{"isoedge_base_image_ready", "gauge", "populator", "1 when the base image is stored and served, else 0."},
	{"isoedge_base_image_download_bytes", "gauge", "populator", "Bytes of the base image downloaded so far."},
	{"isoedge_scrub_bytes_total", "counter", "populator", "Stored bytes re-verified against their digest by the background scrub."},
	{"isoedge_scrub_blobs_total", "counter", "populator", "Stored blobs the scrub re-verified, by result: ok, or damaged (quarantined and fetched or built again)."},
	{"isoedge_image_fetch_bytes_total", "counter", "populator", "Bytes of OS images fetched into the store, by source kind: http, file, registry or peer (a sibling replica)."},
	{"isoedge_peer_fills_served_total", "counter", "populator", "Base image blobs sent whole to sibling replicas."},
	{"isoedge_peer_fallbacks_total", "counter", "populator", "Image fills that went to the image's source because the sibling replicas asked were down, slow or sent wrong bytes."},
	{"isoedge_scrub_last_completed_timestamp_seconds", "gauge", "populator", "Unix time the last complete scrub pass ended; 0 before the first."},
	{"isoedge_upstream_request_duration_seconds", "histogram", "upstream.Metered", "Duration of assisted-service calls, by call."},
	{"isoedge_upstream_errors_total", "counter", "upstream.Metered", "Failed assisted-service calls, by call and reason (HTTP status code, unavailable, bad_response or other)."},
}
