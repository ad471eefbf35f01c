// Package customize turns a stored CoreOS live ISO into the images isoedge
// serves, without ever rewriting the base file.
//
// A base ISO is parsed once, at ingest, into a Layout: the byte extents of
// its embed areas (ignition, kernel arguments) and of the files the service
// hands out (kernel, initrd, rootfs, generic.ins, initrd.addrsize). Every
// customized image is then a Plan: an ordered list of segments, each either
// an extent of the base file or a small in-memory patch. Size, ETag and
// Range slices are computed from the plan; serving a plan sends file extents
// with sendfile and patches from memory.
//
// The package knows ISO and initramfs formats. It does not know HTTP,
// assisted-service or where blobs are stored.
package customize
