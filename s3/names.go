package s3

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/s3/s3err"
)

// MaxKey is S3's limit on a key, in bytes.
const MaxKey = 1024

// splitPath reads the bucket and key of a path-style request. The key is
// checked where it is used (objectName), so that a bad key is refused
// with the error of the operation that met it.
func splitPath(req *request) error {
	p := strings.TrimPrefix(req.URL.Path, "/")
	bucket, key, _ := strings.Cut(p, "/")
	req.bucket, req.key = bucket, key
	if bucket != "" {
		return checkBucket(bucket)
	}
	return nil
}

// checkBucket applies S3's rules for bucket names: 3 to 63 lower-case
// letters, digits, dots and hyphens, beginning and ending with a letter or
// digit, not formatted as an IP address. Every such name is a name loft
// can store.
func checkBucket(b string) error {
	bad := func(why string) error {
		return s3err.New(s3err.InvalidBucketName, "bucket name %q %s", clip(b), why)
	}
	if len(b) < 3 || len(b) > 63 {
		return bad("must be 3 to 63 characters long")
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return bad("may hold only lower-case letters, digits, dots and hyphens")
		}
	}
	if !alnum(b[0]) || !alnum(b[len(b)-1]) {
		return bad("must begin and end with a letter or digit")
	}
	if strings.Contains(b, "..") {
		return bad("must not have two dots in a row")
	}
	if net.ParseIP(b) != nil {
		return bad("must not be an IP address")
	}
	return nil
}

func alnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// clip shortens what a client sent for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// objectName maps bucket and key to the catalog's name, and says whether
// the key is a directory ("folder/"). A key loft cannot store is refused.
func objectName(bucket, key string) (names.Name, bool, error) {
	if len(key) > MaxKey {
		return names.Name{}, false, s3err.New(s3err.KeyTooLong, "key of %d bytes: over %d", len(key), MaxKey)
	}
	dir := strings.HasSuffix(key, "/")
	n, err := names.Parse(bucket + "/" + strings.TrimSuffix(key, "/"))
	if err != nil || key == "" || key == "/" {
		if err == nil {
			err = errors.New("empty key")
		}
		return names.Name{}, false, s3err.Wrap(s3err.InvalidArgument, err,
			"key %q cannot be stored by loft: keys are slash-separated names without empty, \".\" or \"..\" segments", clip(key))
	}
	return n, dir, nil
}

// keyOf is the S3 key of a version in bucket.
func keyOf(bucket string, v catalog.Version) string {
	k := strings.TrimPrefix(v.Name, bucket+"/")
	if v.Kind == catalog.KindDir {
		k += "/"
	}
	return k
}

// bucketExists reports whether bucket is a bucket: a stored directory at
// the top level, or the prefix of at least one live object.
func (g *Gateway) bucketExists(ctx context.Context, bucket string) (bool, error) {
	n, err := names.Parse(bucket)
	if err != nil {
		return false, nil
	}
	hv, err := g.cat.Head(ctx, n)
	switch {
	case err == nil && !hv.Deleted && hv.Kind == catalog.KindDir:
		return true, nil
	case err == nil && !hv.Deleted:
		return false, nil // a file at the top level is not a bucket
	case err != nil && !errors.Is(err, catalog.ErrNotFound):
		return false, err
	}
	return g.hasObjects(ctx, bucket)
}

// errFound stops a Range at its first object.
var errFound = errors.New("found")

// hasObjects reports whether a live object lies below bucket.
func (g *Gateway) hasObjects(ctx context.Context, bucket string) (bool, error) {
	lo := bucket + "/"
	err := g.cat.Range(ctx, lo, catalog.PrefixEnd(lo), false, func(catalog.Version) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
}

// needBucket fails with NoSuchBucket unless the request's bucket exists.
func (g *Gateway) needBucket(req *request) error {
	ok, err := g.bucketExists(req.Context(), req.bucket)
	if err != nil {
		return err
	}
	if !ok {
		return s3err.New(s3err.NoSuchBucket, "bucket %s does not exist", req.bucket)
	}
	return nil
}

// allow fails with AccessDenied unless the request may do need in its
// bucket: by a grant of its key, or for reading by the bucket's policy.
func (g *Gateway) allow(req *request, need catalog.Access) error {
	if req.who != nil && req.who.Allows(req.bucket, need) {
		return nil
	}
	if need == catalog.AccessRead && req.bucket != "" {
		b, err := g.cat.Bucket(req.Context(), req.bucket)
		if err != nil {
			return err
		}
		if b.Policy == catalog.PolicyPublicRead || b.Policy == catalog.PolicyAuthenticatedRead && req.who != nil {
			return nil
		}
	}
	if req.who == nil {
		return s3err.New(s3err.AccessDenied, "anonymous requests may only read public-read buckets")
	}
	return s3err.New(s3err.AccessDenied, "access key %s has no %s access to bucket %s", req.who.ID, need, req.bucket)
}
