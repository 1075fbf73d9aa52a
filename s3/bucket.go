package s3

import (
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/loftstore/loft/catalog"
	"github.com/loftstore/loft/names"
	"github.com/loftstore/loft/s3/s3err"
)

// maxXMLBody caps the XML bodies the gateway reads (a DeleteObjects of
// 1,000 keys of 1,024 bytes fits).
const maxXMLBody = 2 << 20

// readXML reads the request's whole (small) body, verified, into v; an
// empty body leaves v alone when empty is allowed.
func readXML(req *request, v any, empty bool) error {
	b, err := io.ReadAll(io.LimitReader(req.body, maxXMLBody+1))
	if err != nil {
		return err
	}
	if len(b) > maxXMLBody {
		return s3err.New(s3err.MalformedXML, "request body over %d bytes", maxXMLBody)
	}
	if len(b) == 0 && empty {
		return nil
	}
	if err := xml.Unmarshal(b, v); err != nil {
		return s3err.Wrap(s3err.MalformedXML, err, "the XML you provided was not well-formed or did not validate")
	}
	return nil
}

func (g *Gateway) listBuckets(w http.ResponseWriter, req *request) error {
	if req.who == nil {
		return s3err.New(s3err.AccessDenied, "anonymous requests cannot list buckets")
	}
	res := listAllMyBucketsResult{Xmlns: xmlns, Owner: g.owner(), Buckets: []bucketInfo{}}
	err := g.cat.List(req.Context(), names.Prefix{}, catalog.ListOptions{}, func(e catalog.Entry) error {
		name := strings.TrimSuffix(e.Name, "/") // List names directories with their slash
		if !e.Dir || checkBucket(name) != nil || !req.who.Allows(name, catalog.AccessRead) {
			return nil
		}
		created := e.Head.Created
		if created.IsZero() {
			created = time.Unix(0, 0) // a bucket made by the CLI's puts: no entry of its own
		}
		res.Buckets = append(res.Buckets, bucketInfo{Name: name, CreationDate: xmlTime(created)})
		return nil
	})
	if err != nil {
		return err
	}
	writeXML(w, res)
	return nil
}

func (g *Gateway) owner() owner {
	return owner{ID: "loft", DisplayName: "loft"}
}

func (g *Gateway) createBucket(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessAdmin); err != nil {
		return err
	}
	if strings.EqualFold(req.Header.Get("x-amz-bucket-object-lock-enabled"), "true") {
		return s3err.New(s3err.NotImplemented, "object lock is not implemented by loft")
	}
	var conf struct {
		XMLName  xml.Name `xml:"CreateBucketConfiguration"`
		Location string   `xml:"LocationConstraint"`
	}
	if err := readXML(req, &conf, true); err != nil {
		return err
	}
	ctx := req.Context()
	n, _ := names.Parse(req.bucket) // checked by splitPath
	hv, err := g.cat.Head(ctx, n)
	switch {
	case err == nil && !hv.Deleted && hv.Kind == catalog.KindDir:
		return s3err.New(s3err.BucketAlreadyOwnedByYou, "bucket %s exists", req.bucket)
	case err == nil && !hv.Deleted:
		return s3err.New(s3err.BucketAlreadyExists, "%s is an object of this repository, not a bucket", req.bucket)
	case err != nil && !errors.Is(err, catalog.ErrNotFound):
		return err
	}
	// A bucket implied by objects below it gets its entry now: creating
	// it again is then refused like any existing bucket's.
	if ok, err := g.hasObjects(ctx, req.bucket); err != nil {
		return err
	} else if ok {
		if _, err := g.n.MakeDir(ctx, n); err != nil {
			return err
		}
		return s3err.New(s3err.BucketAlreadyOwnedByYou, "bucket %s exists", req.bucket)
	}
	if _, err := g.n.MakeDir(ctx, n); err != nil {
		return err
	}
	w.Header().Set("Location", "/"+req.bucket)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (g *Gateway) deleteBucket(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessAdmin); err != nil {
		return err
	}
	ctx := req.Context()
	if err := g.needBucket(req); err != nil {
		return err
	}
	if ok, err := g.hasObjects(ctx, req.bucket); err != nil {
		return err
	} else if ok {
		return s3err.New(s3err.BucketNotEmpty, "bucket %s is not empty", req.bucket)
	}
	n, _ := names.Parse(req.bucket)
	if _, err := g.deleteName(req, n, true); err != nil {
		return err
	}
	if err := g.cat.DropBucket(ctx, req.bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *Gateway) headBucket(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessRead); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	w.Header().Set("x-amz-bucket-region", g.opts.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (g *Gateway) location(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessRead); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	region := g.opts.Region
	if region == "us-east-1" {
		region = "" // as S3 answers for its first region
	}
	writeXML(w, locationConstraint{Xmlns: xmlns, Region: region})
	return nil
}

func (g *Gateway) getVersioning(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessRead); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	b, err := g.cat.Bucket(req.Context(), req.bucket)
	if err != nil {
		return err
	}
	writeXML(w, versioningConfiguration{Xmlns: xmlns, Status: b.Versioning})
	return nil
}

func (g *Gateway) putVersioning(w http.ResponseWriter, req *request) error {
	if err := g.allow(req, catalog.AccessAdmin); err != nil {
		return err
	}
	if err := g.needBucket(req); err != nil {
		return err
	}
	var conf versioningConfiguration
	if err := readXML(req, &conf, false); err != nil {
		return err
	}
	if conf.Status != "Enabled" && conf.Status != "Suspended" {
		return s3err.New(s3err.MalformedXML, "versioning status %q: want Enabled or Suspended", clip(conf.Status))
	}
	b, err := g.cat.Bucket(req.Context(), req.bucket)
	if err != nil {
		return err
	}
	b.Versioning = conf.Status
	if err := g.cat.SetBucket(req.Context(), b); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
