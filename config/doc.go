// Package config reads isoedge's configuration from the environment and
// validates it once, at startup.
//
// The variable names, their precedence and most defaults are those of
// openshift's assisted-image-service, so an existing deployment (OpenShift
// template, assisted-service operator, podman/compose files) works unchanged.
// As in the original, which uses envconfig v1.4.0 with the prefix
// "cluster-image", every variable NAME is first looked up as
// CLUSTER-IMAGE_NAME and, only when that one is unset, as NAME.
//
// Deliberate differences from the original, all of them fixes:
//
//   - String variables with a default (ASSISTED_SERVICE_SCHEME, DATA_DIR,
//     DATA_TEMP_DIR, LISTEN_PORT, LOG_LEVEL) get the default when unset OR
//     set to the empty string. The original keeps "" for a set-but-empty
//     variable, which for LISTEN_PORT or DATA_DIR only produces a confusing
//     failure later.
//   - ASSISTED_SERVICE_SCHEME defaults to "http" and must be "http" or
//     "https"; the original has no default and an empty scheme makes every
//     call to assisted-service fail with a 500.
//   - LOG_LEVEL (documented by the original's README) is read, with LOGLEVEL
//     (what the original's code reads) as a fallback.
//   - Every problem is reported by Load, naming the variable, instead of
//     surfacing later from a background goroutine. This includes the OS image
//     list (image type, sha256, and the entry checks below),
//     IMAGE_SERVICE_BASE_URL and a half-configured HTTPS key/certificate
//     pair.
//   - LISTEN_PORT and HTTP_LISTEN_PORT must be port numbers (1-65535); the
//     original passes any string to the listener. With an HTTPS key pair,
//     when both listeners are opened, they must differ.
//   - ASSISTED_SERVICE_HOST must be host or host:port (a DNS name, an IPv4
//     address or a bracketed IPv6 address; port 1-65535), since the client
//     builds scheme://HOST/… from it: no path, user info or whitespace.
//   - IMAGE_SERVICE_BASE_URL must be an absolute http or https URL with a
//     host and without user info, query or fragment, at most 1024 bytes.
//     The minimal ISO's rootfs URL built on it is written into grub.cfg and
//     isolinux.cfg, so '$', '\', quotes, '`', ';', whitespace and control
//     characters are refused (percent-encode them); the original accepts
//     anything url.Parse does, even "" (a relative rootfs URL).
//   - OS_IMAGES_REQUEST_HEADERS names must be HTTP field names and values
//     valid field values (no CR, LF, NUL…); the same name twice in
//     different case, the headers the download sets itself (Range,
//     If-Range, Host, framing), hop-by-hop headers, conditional ones and
//     Accept-Encoding are refused (see refusedHeaders). Errors name the
//     header, never its value. OS_IMAGES_REQUEST_QUERY_PARAMS keys must
//     not be empty.
//   - OS image entries: version and openshift_version must be non-empty
//     (the original allows ""), at most 128 bytes, without '/', '\', "..",
//     whitespace or control characters; cpu_architecture must be x86_64,
//     aarch64, arm64, ppc64le or s390x, case-sensitive. As in the original
//     it is matched verbatim, so aarch64 and arm64 stay two spellings and a
//     request must use the one configured. url must be http(s) with a host,
//     file with an absolute local path, or docker://. Two entries with the
//     same type, version and cpu_architecture must agree on url, sha256 and
//     path (only the first is ever fetched); entries that agree are
//     accepted, as the original deduplicates them.
//   - TLS_MIN_VERSION and TLS_CIPHER_SUITES, which the assisted-service
//     operator sets from the cluster's TLS security profile and the original
//     ignores, configure the HTTPS listener (Config.TLSConfig). The operator
//     writes VersionTLS1x and IANA suite names; OpenSSL names, as OpenShift's
//     profiles spell them, are accepted too. Suites Go cannot configure (DHE,
//     the TLS 1.3 suites) are skipped and listed in TLSSkippedCiphers; an
//     unknown name is an error.
//   - Without ASSISTED_SERVICE_HOST isoedge can run standalone, taking
//     ignition from IGNITION_DIR. When no image list is configured either,
//     a single built-in sample image is served (see SampleURL) and
//     IGNITION_DIR defaults to DATA_DIR/ignition, so the binary starts with
//     no configuration at all. The sample ignition is written only into
//     that default directory (Config.SampleIgnition), never into an
//     IGNITION_DIR the operator gave. The original's built-in list of seven 4.8–4.11
//     images on mirror.openshift.com is not reproduced.
//   - An OS image entry may take its file from a container image: a url
//     docker://HOST[:PORT]/REPO@sha256:HEX (or :TAG, flagged MovableTag)
//     with an optional "path" key (default /coreos/coreos-<arch>.iso, the
//     layout of openshift/machine-os-images); REGISTRY_AUTH_FILE names the
//     containers-auth.json with the registry credentials.
//
// Integer, boolean and duration variables that are set but empty are an
// error, as in the original (envconfig fails to parse ""). Integers are parsed
// with strconv.ParseInt base 0, again as envconfig does, so "0x10" and "1_000"
// are accepted.
//
// The package does not touch files or the network: it checks that values are
// well formed, not that CA files exist or hosts resolve. Those checks belong to
// the packages that use them. Config is plain data; use Config.Redacted to log
// it, since request headers and query parameters for OS image downloads may
// carry credentials.
package config
