package cache

import "fmt"

// DerivedKey is the content address of a derivation: the parent blob and
// the parameters that, together, determine a derived blob (for example a
// minimal ISO template built from a full ISO for one rootfs URL).
func DerivedKey(parent Digest, param string) Digest {
	b := make([]byte, 0, len(parent)+1+len(param))
	b = append(b, parent[:]...)
	b = append(b, 0)
	b = append(b, param...)
	return DigestOf(b)
}

// Derived returns the blob recorded for (kind, parent, param), or an error
// wrapping ErrNotFound.
func (ix *Index) Derived(kind string, parent Digest, param string) (Digest, error) {
	b, err := ix.Meta(derivedKindPrefix+kind, DerivedKey(parent, param))
	if err != nil {
		return Digest{}, err
	}
	d, err := ParseDigest(string(b))
	if err != nil {
		return Digest{}, fmt.Errorf("cache: derived %s of %s: %w", kind, parent, err)
	}
	return d, nil
}

// PutDerived records child as the (kind, parent, param) derivation. Record
// it only after child is committed and its own metadata is stored.
func (ix *Index) PutDerived(kind string, parent Digest, param string, child Digest) error {
	return ix.PutMeta(derivedKindPrefix+kind, DerivedKey(parent, param), []byte(child.String()))
}

// DeleteDerived forgets the (kind, parent, param) derivation.
func (ix *Index) DeleteDerived(kind string, parent Digest, param string) error {
	return ix.DeleteMeta(derivedKindPrefix+kind, DerivedKey(parent, param))
}
