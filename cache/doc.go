// Package cache stores base images by content and remembers what they are.
//
// It has three parts. Store is a content-addressed blob store on the local
// filesystem: bytes go in through a Writer, which hashes while writing and
// commits by renaming the finished file to its SHA-256 address, so a blob
// path either holds complete, verified bytes or does not exist. Index is a
// small bbolt database next to the blobs that maps a base image
// (type, RHCOS version, arch) to its digest and keeps opaque per-blob
// metadata, such as an ISO layout encoded by another package. Hot is a typed
// in-memory cache in front of lookups that are too slow for every request.
//
// The order of writes is always bytes first, then the index: a crash can
// leave an orphan blob, which Store.Sweep removes, but never an index record
// that points at missing bytes.
//
// The package deliberately knows nothing about ISOs, HTTP or upstream
// servers; callers encode their own values into Index.PutMeta. Blobs are
// served by handing out one *os.File per reader, so the kernel can send them
// with sendfile.
package cache
