package s3

import (
	"context"
	"encoding/base64"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/loftstore/loft/s3/s3err"
	"github.com/loftstore/loft/s3/sigv4"
)

// objectChecksum is the checksum a CompleteMultipartUpload declares for
// the object it makes (x-amz-checksum-ALGORITHM, with x-amz-checksum-type):
// of the whole content (FULL_OBJECT), or of the concatenated checksums of
// its parts (COMPOSITE, the value ending in "-PARTS").
type objectChecksum struct {
	alg       string // as S3 spells it: "CRC32C"
	want      string // base64, without a part count
	composite bool
	new       func() hash.Hash
}

// declaredObjectChecksum reads what a completion of parts parts declares;
// nil when it declares nothing.
func declaredObjectChecksum(h http.Header, parts int) (*objectChecksum, error) {
	var found *objectChecksum
	for name, vs := range h {
		suffix, ok := strings.CutPrefix(strings.ToLower(name), "x-amz-checksum-")
		if !ok || suffix == "type" || suffix == "mode" || suffix == "algorithm" {
			continue
		}
		if found != nil || len(vs) != 1 {
			return nil, s3err.New(s3err.InvalidRequest, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		alg := strings.ToUpper(suffix)
		_, size, ok := sigv4.NewChecksum(alg)
		if !ok {
			return nil, s3err.New(s3err.InvalidRequest, "The checksum algorithm of %s is not supported.", clip(name))
		}
		value, count, composite := strings.Cut(vs[0], "-")
		if raw, err := base64.StdEncoding.DecodeString(value); err != nil || len(raw) != size {
			return nil, s3err.New(s3err.InvalidRequest, "Value for x-amz-checksum-%s header is invalid.", suffix)
		}
		if composite && count != strconv.Itoa(parts) {
			return nil, s3err.New(s3err.InvalidRequest, "x-amz-checksum-%s names %q parts; the completion lists %d", suffix, clip(count), parts)
		}
		switch t := h.Get("x-amz-checksum-type"); t {
		case "COMPOSITE":
			composite = true
		case "", "FULL_OBJECT":
		default:
			return nil, s3err.New(s3err.InvalidRequest, "x-amz-checksum-type %q: want COMPOSITE or FULL_OBJECT", clip(t))
		}
		found = &objectChecksum{alg: alg, want: value, composite: composite, new: func() hash.Hash {
			h, _, _ := sigv4.NewChecksum(alg)
			return h
		}}
	}
	return found, nil
}

// partsReader reads an upload's parts back, in the order given, into w.
type partsReader func(ctx context.Context, nums []int, w io.Writer) error

// check reads the parts (into also) and compares what they sum to with
// what was declared. It returns the checksum as Meta.Checksum keeps it.
func (c *objectChecksum) check(ctx context.Context, nums []int, read partsReader, also io.Writer) (string, error) {
	var got []byte
	if c.composite {
		// Each part's checksum, then the checksum of those, in order.
		var sums []byte
		for _, num := range nums {
			h := c.new()
			if err := read(ctx, []int{num}, io.MultiWriter(also, h)); err != nil {
				return "", err
			}
			sums = h.Sum(sums)
		}
		h := c.new()
		h.Write(sums)
		got = h.Sum(nil)
	} else {
		h := c.new()
		if err := read(ctx, nums, io.MultiWriter(also, h)); err != nil {
			return "", err
		}
		got = h.Sum(nil)
	}
	value := base64.StdEncoding.EncodeToString(got)
	if value != c.want {
		return "", s3err.New(s3err.BadDigest, "The %s you specified did not match the calculated checksum.", c.alg)
	}
	if c.composite {
		value += "-" + strconv.Itoa(len(nums))
	}
	return c.alg + ":" + value, nil
}
