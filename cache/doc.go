// Package cache stores base images by content and remembers what they are.
//
// It has four parts. Store is a content-addressed blob store on the local
// filesystem: bytes go in through a Writer, which hashes while writing and
// commits by renaming the finished file to its SHA-256 address, so a blob
// path either holds complete, verified bytes or does not exist. A download
// can be resumed (Store.Resume) only together with the validator (ETag or
// Last-Modified) of the source it came from, kept beside it. Records are
// small JSON files beside the blobs, one per base image (type, RHCOS
// version, arch → digest, URL): the durable answer to "which blob is
// which". Index is a bbolt database next to them, a rebuildable cache of
// the records plus opaque per-blob metadata, such as an ISO layout encoded
// by another package. Hot is a typed in-memory cache in front of lookups
// that are too slow for every request.
//
// The order of writes is always bytes first, then the record, then the
// index; removal goes the other way (paths.go draws both). A crash can
// leave an orphan blob, which Store.Sweep removes, or a record the index
// lacks, which the caller re-ingests; never an index entry or record that
// points at missing bytes, except after Store.Quarantine took rotten bytes
// out of service.
//
// The index file is checked before use (OpenIndex): one that bbolt cannot
// read safely is moved aside and replaced by an empty index, which the
// caller rebuilds from Store.Records without downloading again. No bbolt
// panic escapes an Index method. The check runs in a short-lived child
// process of the same executable (indexcheck.go), which is why importing
// this package adds an init function that, in that child only, checks a
// file and exits.
//
// A background scrub re-hashes blobs at a bounded rate (Store.Verify) and
// quarantines the ones that rotted.
//
// The package deliberately knows nothing about ISOs, HTTP or upstream
// servers; callers encode their own values into Index.PutMeta. Blobs are
// served by handing out one *os.File per reader, so the kernel can send them
// with sendfile.
package cache
