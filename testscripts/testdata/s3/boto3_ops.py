#!/usr/bin/python3
"""boto3_ops.py: loft's S3 gateway as boto3 (1.26) sees it.

Run by a Go test as `/usr/bin/python3 boto3_ops.py` with:
  LOFT_S3_ENDPOINT          http://HOST:PORT of the gateway
  AWS_ACCESS_KEY_ID,
  AWS_SECRET_ACCESS_KEY     a key with admin on every bucket
  LOFT_S3_READONLY_KEY,
  LOFT_S3_READONLY_SECRET   a key that may only read bucket "boto-public"
                            (optional: its checks are skipped when unset)
The Go test has made bucket "boto-public" with object "hello" = b"hello"
and policy public-read.

Each check is a function in CHECKS; all run, each prints "ok NAME" or
"FAIL NAME: REASON", and the script exits 1 when any failed.
"""

import base64
import datetime
import hashlib
import os
import random
import sys
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import zlib

os.environ.pop("AWS_CA_BUNDLE", None)  # the machine's breaks plain-http endpoints

import boto3  # noqa: E402
import botocore  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ENDPOINT = os.environ["LOFT_S3_ENDPOINT"]
ACCESS = os.environ["AWS_ACCESS_KEY_ID"]
SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]
RO_ACCESS = os.environ.get("LOFT_S3_READONLY_KEY", "")
RO_SECRET = os.environ.get("LOFT_S3_READONLY_SECRET", "")
PUBLIC = "boto-public"

# Only the endpoint is to be reached: never through a proxy.
_host = urllib.parse.urlsplit(ENDPOINT).hostname or ""
for _v in ("NO_PROXY", "no_proxy"):
    os.environ[_v] = ",".join(x for x in (_host, os.environ.get(_v, "")) if x)
URLOPEN = urllib.request.build_opener(urllib.request.ProxyHandler({})).open

MiB = 1 << 20
UTC = datetime.timezone.utc
RNG = random.Random(20240611)  # deterministic data; bucket names use SUFFIX_RNG
SUFFIX_RNG = random.SystemRandom()


def client(access=ACCESS, secret=SECRET, unsigned=False):
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1},
                 signature_version=botocore.UNSIGNED if unsigned else "s3v4")
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
                        aws_access_key_id=access, aws_secret_access_key=secret, config=cfg)


S3 = client()

# ---------------------------------------------------------------- helpers

BUCKETS = {}  # group -> bucket name, made on first use


def bucket(group):
    if group not in BUCKETS:
        name = "boto-%s-%06x" % (group, SUFFIX_RNG.randrange(1 << 24))
        S3.create_bucket(Bucket=name)
        BUCKETS[group] = name
    return BUCKETS[group]


def data(n):
    return RNG.randbytes(n)


def md5hex(b):
    return hashlib.md5(b).hexdigest()


def b64(b):
    return base64.b64encode(b).decode()


def status(resp):
    return resp["ResponseMetadata"]["HTTPStatusCode"]


def eq(got, want, what=""):
    if got != want:
        g, w = repr(got), repr(want)
        raise AssertionError("%s: got %s, want %s" % (what or "value", g[:300], w[:300]))


def expect_error(codes, http_status, fn, **kw):
    """Call fn(**kw); it must fail with one of codes and http_status."""
    if isinstance(codes, str):
        codes = (codes,)
    try:
        fn(**kw)
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code")
        st = status(e.response)
        if code not in codes or (http_status is not None and st != http_status):
            raise AssertionError("want %s (%s), got %s (%s): %s" % (
                "/".join(codes), http_status, code, st, e.response.get("Error", {}).get("Message")))
        return e
    raise AssertionError("want %s (%s), got success" % ("/".join(codes), http_status))


def put(b, key, body=b"", **kw):
    return S3.put_object(Bucket=b, Key=key, Body=body, **kw)


def get_body(b, key, **kw):
    return S3.get_object(Bucket=b, Key=key, **kw)["Body"].read()


def keys_of(resp):
    return [o["Key"] for o in resp.get("Contents", [])]


def prefixes_of(resp):
    return [p["Prefix"] for p in resp.get("CommonPrefixes", [])]


def http(method, url, body=None):
    """(status, body) of a plain request, for presigned URLs."""
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with URLOPEN(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


CHECKS = []


def check(f):
    CHECKS.append(f)
    return f


# ---------------------------------------------------------------- buckets

@check
def bucket_create_again():
    b = bucket("buckets")
    expect_error("BucketAlreadyOwnedByYou", 409, S3.create_bucket, Bucket=b)


@check
def bucket_head_list_location():
    b = bucket("buckets")
    eq(status(S3.head_bucket(Bucket=b)), 200, "head_bucket")
    names = [x["Name"] for x in S3.list_buckets()["Buckets"]]
    if b not in names:
        raise AssertionError("%s not in list_buckets %s" % (b, names))
    loc = S3.get_bucket_location(Bucket=b).get("LocationConstraint")
    if loc not in (None, ""):
        raise AssertionError("LocationConstraint %r, want None or ''" % loc)


@check
def bucket_invalid_names():
    for name in ("ab", "Upper-case", "under_score", "-dash-first", "a" * 64):
        expect_error("InvalidBucketName", 400, S3.create_bucket, Bucket=name)


@check
def bucket_missing():
    expect_error(("404", "NoSuchBucket"), 404, S3.head_bucket, Bucket="boto-no-such-bucket-x")
    expect_error("NoSuchBucket", 404, S3.list_objects_v2, Bucket="boto-no-such-bucket-x")


@check
def bucket_versioning():
    b = bucket("versioning")
    eq(status(S3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})), 200, "put Enabled")
    eq(S3.get_bucket_versioning(Bucket=b).get("Status"), "Enabled", "status")
    v1 = put(b, "k", b"one")["VersionId"]
    S3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Suspended"})
    eq(S3.get_bucket_versioning(Bucket=b).get("Status"), "Suspended", "status")
    put(b, "k", b"two")
    v3 = put(b, "k", b"three")["VersionId"]
    put(b, "other", b"x")
    vs = S3.list_object_versions(Bucket=b)["Versions"]
    eq([(v["Key"], v["VersionId"], v["IsLatest"]) for v in vs if v["Key"] == "k"], [("k", v3, True)],
       "versions of k while Suspended")
    eq(sorted(v["Key"] for v in vs), ["k", "other"], "keys while Suspended")
    # History was kept all along: enabling again shows it.
    S3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    vs = [v for v in S3.list_object_versions(Bucket=b, Prefix="k")["Versions"] if v["Key"] == "k"]
    eq(len(vs), 3, "versions of k once Enabled again")
    eq(get_body(b, "k", VersionId=v1), b"one", "oldest version")


@check
def bucket_delete():
    b = "boto-del-%06x" % SUFFIX_RNG.randrange(1 << 24)
    S3.create_bucket(Bucket=b)
    put(b, "x/y", b"data")
    expect_error("BucketNotEmpty", 409, S3.delete_bucket, Bucket=b)
    S3.delete_object(Bucket=b, Key="x/y")
    eq(status(S3.delete_bucket(Bucket=b)), 204, "delete_bucket")
    expect_error(("404", "NoSuchBucket"), 404, S3.head_bucket, Bucket=b)


# ---------------------------------------------------------------- keys

def long_key(n):
    """A key of n (1006 to 1204) bytes, of segments no longer than file systems allow."""
    return "/".join(["k" * 200] * 5 + ["k" * (n - 1005)])


@check
def key_bad_names():
    b = bucket("keys")
    for k in ("a/../b", "a//b", "a/./b", "../a"):
        expect_error("InvalidArgument", 400, put, b=b, key=k, body=b"x")
    k = long_key(1025)
    eq(len(k.encode()), 1025, "key length")
    expect_error("KeyTooLongError", 400, put, b=b, key=k, body=b"x")
    k = long_key(1024)
    eq(len(k.encode()), 1024, "key length")
    put(b, k, b"longest")
    eq(get_body(b, k), b"longest", "1024-byte key")


@check
def key_folders():
    b = bucket("folders")
    put(b, "dir/", b"")
    put(b, "dir/inside", b"x")
    eq(S3.head_object(Bucket=b, Key="dir/")["ContentLength"], 0, "folder size")
    r = S3.list_objects_v2(Bucket=b)
    eq([(o["Key"], o["Size"]) for o in r["Contents"] if o["Key"].startswith("dir/")],
       [("dir/", 0), ("dir/inside", 1)], "listing")
    eq(prefixes_of(S3.list_objects_v2(Bucket=b, Delimiter="/")), ["dir/"], "CommonPrefixes")
    # The folder's own key starts with the prefix "dir/": it is listed.
    r = S3.list_objects_v2(Bucket=b, Prefix="dir/")
    eq([(o["Key"], o["Size"]) for o in r.get("Contents", [])], [("dir/", 0), ("dir/inside", 1)],
       "listing with Prefix dir/")
    r = S3.list_objects_v2(Bucket=b, Prefix="dir/", Delimiter="/")
    eq(keys_of(r), ["dir/", "dir/inside"], "listing with Prefix dir/ and Delimiter /")
    expect_error("InvalidArgument", 400, put, b=b, key="dir2/", body=b"not empty")


@check
def key_byte_order():
    b = bucket("order")
    ks = ["c", "b/1", "a", "b.txt", "b-1", "B"]
    for k in ks:
        put(b, k, k.encode())
    want = sorted(ks, key=lambda k: k.encode())  # B a b-1 b.txt b/1 c
    eq(keys_of(S3.list_objects_v2(Bucket=b)), want, "v2 order")
    eq(keys_of(S3.list_objects(Bucket=b)), want, "v1 order")


# ---------------------------------------------------------------- objects

HEADERS = dict(ContentType="text/x-loft", ContentEncoding="identity",
               ContentDisposition='attachment; filename="f.txt"', CacheControl="max-age=60",
               ContentLanguage="de-CH", Expires=datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC),
               Metadata={"Colour": "Blue", "x-number": "42"})


def check_headers(r, what):
    for h in ("ContentType", "ContentEncoding", "ContentDisposition", "CacheControl", "ContentLanguage", "Expires"):
        eq(r.get(h), HEADERS[h], "%s %s" % (what, h))
    eq(r.get("Metadata"), {"colour": "Blue", "x-number": "42"}, what + " Metadata")


@check
def object_put_get_headers():
    b = bucket("objects")
    body = data(3000)
    r = put(b, "h/obj", body, **HEADERS)
    eq(r["ETag"], '"%s"' % md5hex(body), "put ETag")
    if not r.get("VersionId"):
        raise AssertionError("put returned no VersionId")
    g = S3.get_object(Bucket=b, Key="h/obj")
    eq(g["Body"].read(), body, "body")
    eq(g["ETag"], r["ETag"], "get ETag")
    eq(g["ContentLength"], len(body), "get ContentLength")
    check_headers(g, "get")
    h = S3.head_object(Bucket=b, Key="h/obj")
    eq(h["ETag"], r["ETag"], "head ETag")
    eq(h["ContentLength"], len(body), "head ContentLength")
    check_headers(h, "head")
    if not isinstance(h.get("LastModified"), datetime.datetime):
        raise AssertionError("head LastModified %r" % h.get("LastModified"))


@check
def object_missing():
    b = bucket("objects")
    expect_error("NoSuchKey", 404, S3.get_object, Bucket=b, Key="no/such")
    expect_error(("404", "NoSuchKey"), 404, S3.head_object, Bucket=b, Key="no/such")


@check
def object_content_md5():
    b = bucket("objects")
    body = data(1000)
    put(b, "md5/good", body, ContentMD5=b64(hashlib.md5(body).digest()))
    expect_error("BadDigest", 400, put, b=b, key="md5/bad", body=body, ContentMD5=b64(hashlib.md5(b"x").digest()))
    expect_error("NoSuchKey", 404, S3.get_object, Bucket=b, Key="md5/bad")


@check
def object_checksums():
    b = bucket("objects")
    body = data(2000)
    for algo in ("CRC32", "SHA256"):
        put(b, "sum/" + algo, body, ChecksumAlgorithm=algo)
        eq(get_body(b, "sum/" + algo), body, algo + " body")
    crc = zlib.crc32(body) & 0xFFFFFFFF
    put(b, "sum/crc-given", body, ChecksumCRC32=b64(crc.to_bytes(4, "big")))
    expect_error("BadDigest", 400, put, b=b, key="sum/crc-wrong", body=body,
                 ChecksumCRC32=b64(((crc + 1) & 0xFFFFFFFF).to_bytes(4, "big")))
    # A wrong x-amz-checksum-sha256 header, added before signing.
    c = client()

    def wrong_sha(request, **_):
        request.headers["x-amz-checksum-sha256"] = b64(hashlib.sha256(b"not the body").digest())
    c.meta.events.register("before-sign.s3.PutObject", wrong_sha)
    expect_error("BadDigest", 400, c.put_object, Bucket=b, Key="sum/sha-wrong", Body=body)
    expect_error("NoSuchKey", 404, S3.get_object, Bucket=b, Key="sum/sha-wrong")


@check
def object_ranges():
    b = bucket("objects")
    body = data(100)
    put(b, "range", body)
    r = S3.get_object(Bucket=b, Key="range", Range="bytes=0-9")
    eq(status(r), 206, "status")
    eq(r["ContentRange"], "bytes 0-9/100", "ContentRange")
    eq(r["Body"].read(), body[:10], "bytes=0-9")
    eq(get_body(b, "range", Range="bytes=-5"), body[-5:], "bytes=-5")
    eq(get_body(b, "range", Range="bytes=5-"), body[5:], "bytes=5-")
    eq(get_body(b, "range", Range="bytes=90-200"), body[90:], "bytes=90-200")
    expect_error("InvalidRange", 416, S3.get_object, Bucket=b, Key="range", Range="bytes=100-")
    expect_error("InvalidRange", 416, S3.get_object, Bucket=b, Key="range", Range="bytes=500-600")


@check
def object_conditionals():
    b = bucket("objects")
    body = data(50)
    etag = put(b, "cond", body)["ETag"]
    future = datetime.datetime.now(UTC) + datetime.timedelta(days=1)
    past = datetime.datetime(2001, 1, 1, tzinfo=UTC)
    eq(get_body(b, "cond", IfMatch=etag), body, "IfMatch match")
    expect_error("PreconditionFailed", 412, S3.get_object, Bucket=b, Key="cond", IfMatch='"%s"' % ("0" * 32))
    expect_error(("304", "NotModified"), 304, S3.get_object, Bucket=b, Key="cond", IfNoneMatch=etag)
    eq(get_body(b, "cond", IfNoneMatch='"%s"' % ("0" * 32)), body, "IfNoneMatch mismatch")
    expect_error(("304", "NotModified"), 304, S3.get_object, Bucket=b, Key="cond", IfModifiedSince=future)
    eq(get_body(b, "cond", IfModifiedSince=past), body, "IfModifiedSince past")
    expect_error("PreconditionFailed", 412, S3.get_object, Bucket=b, Key="cond", IfUnmodifiedSince=past)
    eq(get_body(b, "cond", IfUnmodifiedSince=future), body, "IfUnmodifiedSince future")
    # head_object: the same, as bare statuses.
    expect_error(("412", "PreconditionFailed"), 412, S3.head_object, Bucket=b, Key="cond", IfMatch='"%s"' % ("0" * 32))
    expect_error(("304", "NotModified"), 304, S3.head_object, Bucket=b, Key="cond", IfNoneMatch=etag)


@check
def object_version_ids():
    b = bucket("objects")
    v1 = put(b, "ver", b"first")["VersionId"]
    v2 = put(b, "ver", b"second")["VersionId"]
    if not v1 or not v2 or v1 == v2:
        raise AssertionError("version ids %r, %r" % (v1, v2))
    eq(get_body(b, "ver"), b"second", "latest")
    g = S3.get_object(Bucket=b, Key="ver", VersionId=v1)
    eq(g["Body"].read(), b"first", "older version")
    eq(g.get("VersionId"), v1, "VersionId of get")
    eq(S3.head_object(Bucket=b, Key="ver", VersionId=v1)["ContentLength"], 5, "head older version")


@check
def object_part_number_single():
    b = bucket("objects")
    body = data(777)
    put(b, "single", body)
    r = S3.get_object(Bucket=b, Key="single", PartNumber=1)
    eq(r["Body"].read(), body, "PartNumber=1 body")


@check
def object_delete():
    b = bucket("objects")
    eq(status(S3.delete_object(Bucket=b, Key="never/was")), 204, "delete missing")
    put(b, "del/one", b"1")
    eq(status(S3.delete_object(Bucket=b, Key="del/one")), 204, "delete")
    expect_error("NoSuchKey", 404, S3.get_object, Bucket=b, Key="del/one")


@check
def object_delete_version():
    b = bucket("objects")
    v1 = put(b, "delver", b"one")["VersionId"]
    v2 = put(b, "delver", b"two")["VersionId"]
    r = S3.delete_object(Bucket=b, Key="delver", VersionId=v2)
    eq((status(r), r.get("VersionId")), (204, v2), "delete the newest version")
    eq(get_body(b, "delver"), b"one", "the version before is current")
    marker = S3.delete_object(Bucket=b, Key="delver")
    eq(marker.get("DeleteMarker"), True, "delete marker")
    r = S3.delete_object(Bucket=b, Key="delver", VersionId=marker["VersionId"])
    eq(r.get("DeleteMarker"), True, "the dropped version was a delete marker")
    eq(get_body(b, "delver"), b"one", "undeleted")
    vs = S3.list_object_versions(Bucket=b, Prefix="delver")
    ids = [v["VersionId"] for v in vs.get("Versions", [])]
    if v2 in ids or v1 not in ids or vs.get("DeleteMarkers"):
        raise AssertionError(f"versions after the deletes: {ids}, markers {vs.get('DeleteMarkers')}")
    r = S3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "delver", "VersionId": v1}, {"Key": "delver", "VersionId": "999999"}]})
    eq(sorted((d["Key"], d.get("VersionId")) for d in r.get("Deleted", [])), [("delver", v1), ("delver", "999999")], "DeleteObjects by version")
    expect_error("InvalidArgument", 400, S3.delete_object, Bucket=b, Key="delver", VersionId="not-a-version")


@check
def object_delete_objects():
    b = bucket("objects")
    for k in ("dm/a", "dm/b", "dm/c", "dm/d"):
        put(b, k, k.encode())
    r = S3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "dm/a"}, {"Key": "dm/b"}, {"Key": "a//b"}],
                                            "Quiet": False})
    eq(sorted(d["Key"] for d in r.get("Deleted", [])), ["dm/a", "dm/b"], "Deleted")
    eq([(e["Key"], e["Code"]) for e in r.get("Errors", [])], [("a//b", "InvalidArgument")], "Errors")
    r = S3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": "dm/c"}, {"Key": "dm/missing"}, {"Key": "a/../b"}],
                                            "Quiet": True})
    eq(r.get("Deleted", []), [], "Deleted when Quiet")
    eq([(e["Key"], e["Code"]) for e in r.get("Errors", [])], [("a/../b", "InvalidArgument")], "Errors when Quiet")
    eq(keys_of(S3.list_objects_v2(Bucket=b, Prefix="dm/")), ["dm/d"], "left")


@check
def object_copy():
    b = bucket("objects")
    body = data(4000)
    etag = put(b, "cp/src", body, ContentType="text/x-src", Metadata={"origin": "src"})["ETag"]
    S3.copy_object(Bucket=b, Key="cp/dict", CopySource={"Bucket": b, "Key": "cp/src"})
    h = S3.head_object(Bucket=b, Key="cp/dict")
    eq((h["ContentType"], h["Metadata"]), ("text/x-src", {"origin": "src"}), "COPY (default) metadata")
    eq(get_body(b, "cp/dict"), body, "copied body")
    S3.copy_object(Bucket=b, Key="cp/str", CopySource=b + "/cp/src", MetadataDirective="COPY")
    eq(get_body(b, "cp/str"), body, "copy from string source")
    eq(S3.head_object(Bucket=b, Key="cp/str")["Metadata"], {"origin": "src"}, "COPY metadata")
    S3.copy_object(Bucket=b, Key="cp/repl", CopySource={"Bucket": b, "Key": "cp/src"},
                   MetadataDirective="REPLACE", ContentType="text/x-new", Metadata={"fresh": "yes"})
    h = S3.head_object(Bucket=b, Key="cp/repl")
    eq((h["ContentType"], h["Metadata"]), ("text/x-new", {"fresh": "yes"}), "REPLACE metadata")
    # Across buckets too.
    ob = bucket("copyto")
    S3.copy_object(Bucket=ob, Key="there", CopySource={"Bucket": b, "Key": "cp/src"})
    eq(get_body(ob, "there"), body, "copy to another bucket")
    expect_error("InvalidRequest", 400, S3.copy_object, Bucket=b, Key="cp/src",
                 CopySource={"Bucket": b, "Key": "cp/src"}, MetadataDirective="COPY")
    expect_error("PreconditionFailed", 412, S3.copy_object, Bucket=b, Key="cp/cond",
                 CopySource={"Bucket": b, "Key": "cp/src"}, CopySourceIfMatch='"%s"' % ("0" * 32))
    S3.copy_object(Bucket=b, Key="cp/cond", CopySource={"Bucket": b, "Key": "cp/src"}, CopySourceIfMatch=etag)
    eq(get_body(b, "cp/cond"), body, "CopySourceIfMatch match")
    expect_error("NoSuchKey", 404, S3.copy_object, Bucket=b, Key="cp/x",
                 CopySource={"Bucket": b, "Key": "cp/no-such"})


# ---------------------------------------------------------------- listing

LIST_KEYS = ["a", "amp&eq=x", "b.txt", "b/1", "b/2", "c/d/e", "c/x", "per%cent",
             "plus+sign", "sp ace/f", "z", "\u00fc-umlaut"]
LIST_WANT = sorted(LIST_KEYS, key=lambda k: k.encode())


def list_bucket():
    if "list" not in BUCKETS:
        b = bucket("list")
        for k in LIST_KEYS:
            put(b, k, k.encode())
    return BUCKETS["list"]


@check
def list_v2_all():
    b = list_bucket()
    r = S3.list_objects_v2(Bucket=b)
    eq(keys_of(r), LIST_WANT, "keys")
    eq(r["KeyCount"], len(LIST_WANT), "KeyCount")
    eq(r["IsTruncated"], False, "IsTruncated")
    for o in r["Contents"]:
        eq((o["Size"], o["ETag"]), (len(o["Key"].encode()), '"%s"' % md5hex(o["Key"].encode())), o["Key"])
    for k in ("amp&eq=x", "per%cent", "plus+sign", "sp ace/f", "\u00fc-umlaut"):
        eq(get_body(b, k), k.encode(), "get " + k)


@check
def list_v2_paging():
    b = list_bucket()
    got, token, pages = [], None, 0
    for _ in range(len(LIST_WANT)):  # bounded: 2 keys a page
        kw = {"ContinuationToken": token} if token else {}
        r = S3.list_objects_v2(Bucket=b, MaxKeys=2, **kw)
        pages += 1
        eq(r["KeyCount"], len(r.get("Contents", [])), "KeyCount")
        if len(r.get("Contents", [])) > 2:
            raise AssertionError("page of %d keys" % len(r["Contents"]))
        got += keys_of(r)
        if not r["IsTruncated"]:
            break
        token = r["NextContinuationToken"]
    eq(got, LIST_WANT, "paged keys")
    eq(pages, (len(LIST_WANT) + 1) // 2, "pages")


@check
def list_v2_start_after():
    b = list_bucket()
    eq(keys_of(S3.list_objects_v2(Bucket=b, StartAfter="b.txt")), LIST_WANT[LIST_WANT.index("b.txt") + 1:],
       "StartAfter b.txt")
    eq(keys_of(S3.list_objects_v2(Bucket=b, StartAfter="b")), LIST_WANT[LIST_WANT.index("b.txt"):], "StartAfter b")


@check
def list_v2_delimiter():
    b = list_bucket()
    r = S3.list_objects_v2(Bucket=b, Delimiter="/")
    eq(keys_of(r), [k for k in LIST_WANT if "/" not in k], "top-level keys")
    eq(prefixes_of(r), ["b/", "c/", "sp ace/"], "CommonPrefixes")
    r = S3.list_objects_v2(Bucket=b, Prefix="c/", Delimiter="/")
    eq((keys_of(r), prefixes_of(r)), (["c/x"], ["c/d/"]), "c/")
    r = S3.list_objects_v2(Bucket=b, Prefix="b")
    eq(keys_of(r), ["b.txt", "b/1", "b/2"], "Prefix b")
    r = S3.list_objects_v2(Bucket=b, Prefix="sp ace/", Delimiter="/")
    eq(keys_of(r), ["sp ace/f"], "Prefix with a space")


@check
def list_v2_fetch_owner():
    b = list_bucket()
    r = S3.list_objects_v2(Bucket=b, FetchOwner=True, MaxKeys=1)
    if not r["Contents"][0].get("Owner", {}).get("ID"):
        raise AssertionError("no Owner.ID with FetchOwner: %r" % r["Contents"][0])


@check
def list_v1():
    b = list_bucket()
    r = S3.list_objects(Bucket=b)
    eq(keys_of(r), LIST_WANT, "keys")
    r = S3.list_objects(Bucket=b, Prefix="c/", Delimiter="/")
    eq((keys_of(r), prefixes_of(r)), (["c/x"], ["c/d/"]), "Prefix c/ Delimiter /")
    # Paging by Marker (the last key) without a delimiter.
    got, marker = [], ""
    for _ in range(len(LIST_WANT)):
        r = S3.list_objects(Bucket=b, MaxKeys=3, Marker=marker)
        eq(len(r.get("Contents", [])) <= 3, True, "page size")
        got += keys_of(r)
        if not r["IsTruncated"]:
            break
        marker = r["Contents"][-1]["Key"]
    eq(got, LIST_WANT, "paged by Marker")
    # Paging by NextMarker with a delimiter: keys and prefixes together.
    want = sorted([k for k in LIST_WANT if "/" not in k] + ["b/", "c/", "sp ace/"], key=lambda k: k.encode())
    got, marker = [], ""
    for _ in range(len(want)):
        r = S3.list_objects(Bucket=b, MaxKeys=2, Delimiter="/", Marker=marker)
        page = keys_of(r) + prefixes_of(r)
        eq(len(page) <= 2, True, "page size")
        got += page
        if not r["IsTruncated"]:
            break
        if not r.get("NextMarker"):
            raise AssertionError("truncated v1 listing with a delimiter has no NextMarker")
        marker = r["NextMarker"]
    eq(sorted(got, key=lambda k: k.encode()), want, "paged by NextMarker")


@check
def list_object_versions():
    b = bucket("versions")
    v1 = put(b, "doc", b"1")["VersionId"]
    v2 = put(b, "doc", b"2")["VersionId"]
    put(b, "keep", b"k")
    S3.delete_object(Bucket=b, Key="doc")
    r = S3.list_object_versions(Bucket=b)
    vs = {v["VersionId"]: v for v in r.get("Versions", []) if v["Key"] == "doc"}
    eq(set(vs), {v1, v2}, "doc's versions")
    eq((vs[v1]["IsLatest"], vs[v2]["IsLatest"]), (False, False), "IsLatest of doc's versions")
    eq((vs[v1]["Size"], vs[v2]["ETag"]), (1, '"%s"' % md5hex(b"2")), "Size and ETag")
    dms = r.get("DeleteMarkers", [])
    eq([(d["Key"], d["IsLatest"]) for d in dms], [("doc", True)], "DeleteMarkers")
    eq([v["IsLatest"] for v in r["Versions"] if v["Key"] == "keep"], [True], "keep IsLatest")
    eq(keys_of(S3.list_objects_v2(Bucket=b)), ["keep"], "live keys")
    eq(get_body(b, "doc", VersionId=v1), b"1", "deleted key's old version")


# ---------------------------------------------------------------- multipart

def mpu_etag(part_bodies):
    return '"%s-%d"' % (hashlib.md5(b"".join(hashlib.md5(p).digest() for p in part_bodies)).hexdigest(),
                        len(part_bodies))


@check
def multipart_full():
    b = bucket("mpu")
    parts = [data(5 * MiB), data(5 * MiB), data(1024)]
    up = S3.create_multipart_upload(Bucket=b, Key="big/obj", ContentType="application/x-big",
                                    Metadata={"Kind": "multi"})
    uid = up["UploadId"]
    etags = []
    for i, p in enumerate(parts, 1):
        r = S3.upload_part(Bucket=b, Key="big/obj", UploadId=uid, PartNumber=i, Body=p)
        eq(r["ETag"], '"%s"' % md5hex(p), "part %d ETag" % i)
        etags.append(r["ETag"])
    ups = S3.list_multipart_uploads(Bucket=b).get("Uploads", [])
    if ("big/obj", uid) not in [(u["Key"], u["UploadId"]) for u in ups]:
        raise AssertionError("upload not in list_multipart_uploads: %r" % ups)
    listed, marker = [], 0
    for _ in range(5):  # 3 parts, 1 a page
        r = S3.list_parts(Bucket=b, Key="big/obj", UploadId=uid, MaxParts=1, PartNumberMarker=marker)
        listed += [(p["PartNumber"], p["ETag"], p["Size"]) for p in r.get("Parts", [])]
        if not r["IsTruncated"]:
            break
        marker = r["NextPartNumberMarker"]
    eq(listed, [(i, etags[i - 1], len(parts[i - 1])) for i in (1, 2, 3)], "list_parts")
    done = S3.complete_multipart_upload(Bucket=b, Key="big/obj", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    eq(done["ETag"], mpu_etag(parts), "multipart ETag")
    h = S3.head_object(Bucket=b, Key="big/obj")
    eq((h["ContentLength"], h["ContentType"], h["Metadata"], h["ETag"]),
       (sum(map(len, parts)), "application/x-big", {"kind": "multi"}, mpu_etag(parts)), "head")
    eq(get_body(b, "big/obj") == b"".join(parts), True, "whole body")
    r = S3.get_object(Bucket=b, Key="big/obj", PartNumber=2)
    eq(r["Body"].read() == parts[1], True, "PartNumber=2 body")
    eq(r.get("PartsCount"), 3, "PartsCount")
    ups = S3.list_multipart_uploads(Bucket=b).get("Uploads", [])
    eq([u for u in ups if u["UploadId"] == uid], [], "completed upload still listed")


@check
def multipart_part_copy():
    b = bucket("mpu")
    src = data(5 * MiB + 100)
    put(b, "copy/src", src)
    uid = S3.create_multipart_upload(Bucket=b, Key="copy/dst")["UploadId"]
    r = S3.upload_part_copy(Bucket=b, Key="copy/dst", UploadId=uid, PartNumber=1,
                            CopySource={"Bucket": b, "Key": "copy/src"}, CopySourceRange="bytes=0-5242879")
    e1 = r["CopyPartResult"]["ETag"]
    eq(e1, '"%s"' % md5hex(src[:5 * MiB]), "copied part ETag")
    tail = data(1024)
    e2 = S3.upload_part(Bucket=b, Key="copy/dst", UploadId=uid, PartNumber=2, Body=tail)["ETag"]
    done = S3.complete_multipart_upload(Bucket=b, Key="copy/dst", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    eq(done["ETag"], mpu_etag([src[:5 * MiB], tail]), "ETag")
    eq(get_body(b, "copy/dst") == src[:5 * MiB] + tail, True, "body")


@check
def multipart_abort():
    b = bucket("mpu")
    uid = S3.create_multipart_upload(Bucket=b, Key="aborted")["UploadId"]
    S3.upload_part(Bucket=b, Key="aborted", UploadId=uid, PartNumber=1, Body=b"x")
    eq(status(S3.abort_multipart_upload(Bucket=b, Key="aborted", UploadId=uid)), 204, "abort")
    expect_error("NoSuchUpload", 404, S3.upload_part, Bucket=b, Key="aborted", UploadId=uid, PartNumber=2, Body=b"y")
    ups = S3.list_multipart_uploads(Bucket=b).get("Uploads", [])
    eq([u for u in ups if u["UploadId"] == uid], [], "aborted upload still listed")
    expect_error("NoSuchKey", 404, S3.get_object, Bucket=b, Key="aborted")


def upload_parts(b, key, bodies):
    uid = S3.create_multipart_upload(Bucket=b, Key=key)["UploadId"]
    etags = [S3.upload_part(Bucket=b, Key=key, UploadId=uid, PartNumber=i, Body=p)["ETag"]
             for i, p in enumerate(bodies, 1)]
    return uid, etags


@check
def multipart_entity_too_small():
    b = bucket("mpu")
    uid, etags = upload_parts(b, "small", [data(1024), data(1024)])
    expect_error("EntityTooSmall", 400, S3.complete_multipart_upload, Bucket=b, Key="small", UploadId=uid,
                 MultipartUpload={"Parts": [{"PartNumber": i, "ETag": e} for i, e in enumerate(etags, 1)]})
    S3.abort_multipart_upload(Bucket=b, Key="small", UploadId=uid)


@check
def multipart_invalid_part():
    b = bucket("mpu")
    bodies = [data(5 * MiB), data(1024)]
    uid, (e1, e2) = upload_parts(b, "badpart", bodies)
    zero = '"%s"' % ("0" * 32)
    for parts in ([(1, zero), (2, e2)], [(1, e1), (2, zero)], [(1, e1), (3, e2)]):
        expect_error("InvalidPart", 400, S3.complete_multipart_upload, Bucket=b, Key="badpart", UploadId=uid,
                     MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})
    # The failed completions left the upload as it was.
    done = S3.complete_multipart_upload(Bucket=b, Key="badpart", UploadId=uid, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
    eq(done["ETag"], mpu_etag(bodies), "ETag after failed completions")


@check
def multipart_invalid_part_order():
    # Parts listed out of order: with both big enough in any order only the
    # order is wrong; with the small last part first, the order is still
    # what is wrong with the request (S3 checks it before the parts' sizes).
    b = bucket("mpu")
    for key, second in (("order", 5 * MiB), ("order2", 1024)):
        uid, (e1, e2) = upload_parts(b, key, [data(5 * MiB), data(second)])
        expect_error("InvalidPartOrder", 400, S3.complete_multipart_upload, Bucket=b, Key=key, UploadId=uid,
                     MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]})
        S3.abort_multipart_upload(Bucket=b, Key=key, UploadId=uid)


# ---------------------------------------------------------------- presigned URLs

@check
def presign_get():
    b = bucket("presign")
    body = data(300)
    put(b, "p/obj", body)
    url = S3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "p/obj"}, ExpiresIn=300)
    eq(http("GET", url), (200, body), "presigned GET")
    put(b, "p/other", b"other")
    tampered = url.replace("/p/obj?", "/p/other?", 1)
    if tampered == url:
        raise AssertionError("could not tamper with %s" % url)
    st, _ = http("GET", tampered)
    eq(st, 403, "tampered URL status")


@check
def presign_expired():
    b = bucket("presign")
    put(b, "p/short", b"short")
    url = S3.generate_presigned_url("get_object", Params={"Bucket": b, "Key": "p/short"}, ExpiresIn=1)
    time.sleep(2)
    st, body = http("GET", url)
    eq(st, 403, "expired URL status")
    if b"<Code>AccessDenied</Code>" not in body:
        raise AssertionError("expired URL body %r" % body[:300])


@check
def presign_put():
    b = bucket("presign")
    body = data(1234)
    url = S3.generate_presigned_url("put_object", Params={"Bucket": b, "Key": "p/put"}, ExpiresIn=300)
    st, resp = http("PUT", url, body)
    eq(st, 200, "presigned PUT status (%r)" % resp[:200])
    eq(get_body(b, "p/put"), body, "body after presigned PUT")


# ---------------------------------------------------------------- auth

@check
def auth_wrong_secret():
    c = client(ACCESS, "wrong" + SECRET)
    expect_error("SignatureDoesNotMatch", 403, c.list_buckets)
    expect_error("SignatureDoesNotMatch", 403, c.put_object, Bucket=bucket("objects"), Key="auth/x", Body=b"x")


@check
def auth_unknown_key():
    c = client("LOFTNOSUCHKEY0000000", "x" * 40)
    expect_error("InvalidAccessKeyId", 403, c.list_buckets)


@check
def auth_anonymous():
    b = bucket("objects")
    put(b, "anon/secret", b"secret")
    anon = client(unsigned=True)
    expect_error("AccessDenied", 403, anon.get_object, Bucket=b, Key="anon/secret")
    expect_error("AccessDenied", 403, anon.list_objects_v2, Bucket=b)
    expect_error("AccessDenied", 403, anon.put_object, Bucket=b, Key="anon/new", Body=b"x")
    eq(anon.get_object(Bucket=PUBLIC, Key="hello")["Body"].read(), b"hello", "anonymous get of public")
    expect_error("AccessDenied", 403, anon.put_object, Bucket=PUBLIC, Key="anon", Body=b"x")


@check
def auth_readonly():
    if not RO_ACCESS or not RO_SECRET:
        print("  (skipped: LOFT_S3_READONLY_KEY/SECRET unset)")
        return
    ro = client(RO_ACCESS, RO_SECRET)
    eq(ro.get_object(Bucket=PUBLIC, Key="hello")["Body"].read(), b"hello", "read-only get")
    if "hello" not in keys_of(ro.list_objects_v2(Bucket=PUBLIC)):
        raise AssertionError("hello not listed for the read-only key")
    expect_error("AccessDenied", 403, ro.put_object, Bucket=PUBLIC, Key="ro-put", Body=b"x")
    expect_error("AccessDenied", 403, ro.delete_object, Bucket=PUBLIC, Key="hello")
    expect_error("AccessDenied", 403, ro.put_object, Bucket=bucket("objects"), Key="ro-put", Body=b"x")


# ---------------------------------------------------------------- running

def cleanup():
    for b in BUCKETS.values():
        try:
            for _ in range(20):  # bounded: 1000 keys a page
                ks = keys_of(S3.list_objects_v2(Bucket=b))
                if not ks:
                    break
                S3.delete_objects(Bucket=b, Delete={"Objects": [{"Key": k} for k in ks], "Quiet": True})
            for u in S3.list_multipart_uploads(Bucket=b).get("Uploads", []):
                S3.abort_multipart_upload(Bucket=b, Key=u["Key"], UploadId=u["UploadId"])
            S3.delete_bucket(Bucket=b)
        except Exception as e:  # cleanup is best effort
            print("  (cleanup of %s: %s)" % (b, traceback.format_exception_only(type(e), e)[-1].strip()))


def main():
    passed = failed = 0
    for f in CHECKS:
        start = time.monotonic()
        try:
            f()
        except Exception as e:
            failed += 1
            print("FAIL %s: %s" % (f.__name__, traceback.format_exception_only(type(e), e)[-1].strip()))
            sys.stdout.flush()
            continue
        passed += 1
        print("ok %s (%.1f s)" % (f.__name__, time.monotonic() - start))
        sys.stdout.flush()
    cleanup()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
