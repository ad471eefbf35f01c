package cache

import (
	"testing"
	"time"
)

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
		{"partialPath", partialPath(root, d), root + "/blobs/sha256/.partial-" + helloHex},
		{"validatorPath", validatorPath(root, d), root + "/blobs/sha256/.partial-" + helloHex + ".validator"},
		{"recordsDir", recordsDir(root), root + "/records"},
		{"recordPath", recordPath(root, BaseKey{"full-iso", "9.6", "x86_64"}), root + "/records/" + DigestOf([]byte("full-iso\x009.6\x00x86_64")).Hex() + ".json"},
		{"quarantinePath", quarantinePath(root, d), root + "/quarantine/" + helloHex},
		{"quarantineRecordPath", quarantineRecordPath(root, helloHex+".json"), root + "/quarantine/record-" + helloHex + ".json"},
		{"corruptIndexPath", corruptIndexPath(indexPath(root), time.Date(2026, 11, 26, 15, 1, 2, 0, time.FixedZone("CET", 3600))), root + "/index.db.corrupt-20261126T140102Z"},
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

func TestPartialNames(t *testing.T) {
	tests := []struct {
		name        string
		wantOK      bool
		wantSidecar bool
	}{
		{".partial-" + helloHex, true, false},
		{".partial-" + helloHex + ".validator", true, true},
		{".partial-" + helloHex + ".validator.x", false, false},
		{".partial-" + helloHex[:63], false, false},
		{".partial-" + helloHex[:62] + "ZZ", false, false},
		{".tmp-1", false, false},
		{helloHex, false, false},
	}
	for _, tt := range tests {
		key, sidecar, ok := partialKeyFromName(tt.name)
		if ok != tt.wantOK || sidecar != tt.wantSidecar {
			t.Errorf("partialKeyFromName(%q) = _, %v, %v", tt.name, sidecar, ok)
		}
		if ok && key.Hex() != helloHex {
			t.Errorf("partialKeyFromName(%q) key %s", tt.name, key)
		}
	}
	for name, want := range map[string]bool{
		helloHex + ".json":            true,
		helloHex:                      false,
		".tmp-1":                      false,
		helloHex[:63] + "G" + ".json": false,
	} {
		if got := isRecordName(name); got != want {
			t.Errorf("isRecordName(%q) = %v", name, got)
		}
	}
	for name, want := range map[string]bool{
		"index.db.corrupt-20261126T140102Z":   true,
		"index.db.corrupt-20261126T140102Z-2": true,
		"index.db.corrupt-2026":               false,
		"index.db":                            false,
	} {
		if _, got := corruptIndexTime(name); got != want {
			t.Errorf("corruptIndexTime(%q) ok = %v", name, got)
		}
	}
}
