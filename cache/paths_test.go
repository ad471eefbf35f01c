package cache

import "testing"

func TestPaths(t *testing.T) {
	d := DigestOf([]byte("hello"))
	const root = "/var/lib/isoedge"
	tests := []struct {
		name, got, want string
	}{
		{"blobsDir", blobsDir(root), root + "/blobs/sha256"},
		{"fanoutDir", fanoutDir(root, d), root + "/blobs/sha256/2c"},
		{"blobPath", blobPath(root, d), root + "/blobs/sha256/2c/" + helloHex},
		{"blobPath zero", blobPath(root, Digest{}), root + "/blobs/sha256/00/0000000000000000000000000000000000000000000000000000000000000000"},
		{"indexPath", indexPath(root), root + "/index.db"},
		{"unclean root", blobPath(root+"/x/../", d), root + "/blobs/sha256/2c/" + helloHex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Fatalf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestPathNames(t *testing.T) {
	tests := []struct {
		name       string
		fanout     string
		file       string
		wantTemp   bool
		wantFanout bool
		wantBlob   bool
	}{
		{name: "blob", fanout: "2c", file: helloHex, wantBlob: true},
		{name: "blob in wrong fanout", fanout: "2d", file: helloHex},
		{name: "prefixed name", fanout: "2c", file: "sha256:" + helloHex},
		{name: "uppercase", fanout: "2C", file: "2C" + helloHex[2:]},
		{name: "temp", file: ".tmp-12345", wantTemp: true},
		{name: "fanout", file: "ab", wantFanout: true},
		{name: "not fanout", file: "zz"},
		{name: "three chars", file: "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTempName(tt.file); got != tt.wantTemp {
				t.Errorf("isTempName(%q) = %v", tt.file, got)
			}
			if got := isFanoutName(tt.file); got != tt.wantFanout {
				t.Errorf("isFanoutName(%q) = %v", tt.file, got)
			}
			d, ok := digestFromBlobName(tt.fanout, tt.file)
			if ok != tt.wantBlob {
				t.Fatalf("digestFromBlobName(%q, %q) ok = %v", tt.fanout, tt.file, ok)
			}
			if ok && blobPath("/r", d) != "/r/blobs/sha256/"+tt.fanout+"/"+tt.file {
				t.Errorf("blobPath does not invert digestFromBlobName: %s", blobPath("/r", d))
			}
		})
	}
}
