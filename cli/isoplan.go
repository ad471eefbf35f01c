package cli

import (
	"github.com/isoedge/isoedge/customize"
)

// isoChange is what a command changes in an ISO.
type isoChange struct {
	ignition []byte  // an IgnitionArchive; nil leaves the area as it is, empty zeroes it
	kargs    *string // the whole kernel command line tail; nil leaves it
	ramdisk  []byte  // static-network ramdisk (minimal ISOs)
	// clearRamdisk zeroes the whole ramdisk area (minimal ISOs) first.
	clearRamdisk bool
}

// isoPlan returns the plan of the image at base (layout l, kernel
// arguments ks) with c applied. The ignition area and the ramdisk are
// written by customize.ISO, the service's plan; each kernel-argument
// region is then overwritten with the arguments, a newline and '#'
// padding. Arguments that are the defaults plus some appended ones give
// the bytes the service writes when it appends them.
func isoPlan(l *customize.Layout, base string, ks kargState, c isoChange) (customize.Plan, error) {
	p, err := customize.ISO(l, base, customize.Overlay{Ignition: c.ignition, Ramdisk: c.ramdisk})
	if err != nil {
		return p, err
	}
	if a, ok := l.Files[customize.PathCustomRamdisk]; ok && c.clearRamdisk {
		if p, err = overwrite(p, a.Off, customize.Zeros(a.Len)); err != nil {
			return p, err
		}
		if c.ramdisk != nil {
			if p, err = overwrite(p, a.Off, customize.Patch(c.ramdisk)); err != nil {
				return p, err
			}
		}
	}
	if c.kargs != nil {
		if err := ks.check(); err != nil {
			return p, err
		}
		for _, r := range ks.Regions {
			b, err := formatKargs(r, *c.kargs)
			if err != nil {
				return p, err
			}
			if p, err = overwrite(p, r.Off, customize.Patch(b)); err != nil {
				return p, err
			}
		}
	}
	return p, p.Validate()
}

// overwrite returns p with segment s in place of its bytes from off.
func overwrite(p customize.Plan, off int64, s customize.Segment) (customize.Plan, error) {
	head, err := p.Slice(0, off)
	if err != nil {
		return p, err
	}
	end := off + s.Len
	if end > p.Size {
		return p, customize.ErrRange
	}
	tail, err := p.Slice(end, p.Size-end)
	if err != nil {
		return p, err
	}
	segs := make([]customize.Segment, 0, len(head.Segs)+1+len(tail.Segs))
	segs = append(segs, head.Segs...)
	segs = append(segs, s)
	segs = append(segs, tail.Segs...)
	return customize.NewPlan(p.Base, segs...), nil
}
