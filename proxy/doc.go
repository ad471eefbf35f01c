// Package proxy is isoedge's HTTP front end: every route of the original
// assisted-image-service, on fasthttp.
//
// A request is resolved to a base image and, for customized images, a
// snapshot of the InfraEnv's data from assisted-service; customize turns
// both into a plan, and the plan is written to the socket: base extents with
// sendfile, patches from memory. Size, ETag and Range are answered from the
// plan without reading the image.
//
// fasthttp types stay inside this package.
package proxy
