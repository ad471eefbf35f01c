package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
)

// fetchFile is Fetch for file:// URLs: a local file, resumed by seeking when
// its size and modification time are still those of the validator.
func fetchFile(ctx context.Context, u *url.URL, req FetchRequest, limit int64, w io.Writer, res *FetchResult) error {
	if u.Host != "" && u.Host != "localhost" {
		return errors.New("file URL with remote host")
	}
	file, err := os.Open(u.Path)
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	got := fileValidator(info)
	if req.Offset > 0 {
		want, err := resumable(req.Validator, req.Offset, kindFile)
		if err != nil {
			return err
		}
		if want != got {
			return fmt.Errorf("file changed: %w", ErrNoResume)
		}
	}
	res.Total, res.Validator = got.total, got.String()
	if got.total > limit {
		return fmt.Errorf("image of %d bytes exceeds the bound of %d: %w", got.total, limit, ErrTooLarge)
	}
	if req.OnResponse != nil {
		if err := req.OnResponse(res.Validator, res.Total); err != nil {
			return err
		}
	}
	if _, err := file.Seek(req.Offset, io.SeekStart); err != nil {
		return err
	}
	return copyBounded(ctx, w, file, req.Offset, got.total-req.Offset, limit, got.total, req.Progress, &res.N)
}
