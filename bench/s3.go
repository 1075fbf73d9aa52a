package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// The S3 gateway's figures (issue 9): awscli PUT and GET of the big file
// beside loft's own put and get of it, small objects from 16 clients, and
// serve's peak RSS under 16 concurrent uploads of the big size.

const (
	smallObjects = 10000
	smallSize    = 4 << 10
	s3Clients    = 16
)

type s3key struct{ ID, Secret string }

func (b *bench) s3(ctx context.Context, sz sizes, l *limits, st *e2eState) error {
	fmt.Println("s3:")
	awscli := "/usr/bin/aws"
	if _, err := os.Stat(awscli); err != nil {
		return fmt.Errorf("awscli is not installed (make s3-clients installs it): %w", err)
	}
	// loft's own put and get of the same file, the figures awscli's go beside.
	base, err := b.initRepo(ctx, "s3-base")
	if err != nil {
		return err
	}
	_, loftPut, _, err := b.put(ctx, base, l.bigFile, "--as", "big.bin")
	if err != nil {
		return err
	}
	loftPutCPU := b.cpu
	dst := filepath.Join(b.dir, "s3-got.bin")
	el, _, _, err := b.runLoft(ctx, base, "get", "big.bin", dst)
	if err != nil {
		return err
	}
	loftGetCPU := b.cpu
	loftGet := mbps(sz.big, el)
	os.Remove(dst)
	os.RemoveAll(base)

	repo, err := b.initRepo(ctx, "s3")
	if err != nil {
		return err
	}
	out, err := b.loftCmd(ctx, repo, "key", "create", "--bucket", "*:admin", "--json")
	if err != nil {
		return err
	}
	var k s3key
	if err := json.Unmarshal(out, &k); err != nil {
		return err
	}
	srv, err := b.serve(ctx, "s3", repo, "--s3", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer srv.stop()
	endpoint := "http://" + srv.s3

	env, err := awsEnv(b.dir, k)
	if err != nil {
		return err
	}
	var awsCPU time.Duration // the last runAWS's
	runAWS := func(args ...string) (time.Duration, error) {
		settle()
		cmd := exec.CommandContext(ctx, awscli, append([]string{"--endpoint-url", endpoint}, args...)...)
		cmd.Env = env
		var errb strings.Builder
		cmd.Stderr = &errb
		start := time.Now()
		err := cmd.Run()
		if err != nil {
			return 0, fmt.Errorf("aws %s: %w\n%s", strings.Join(args, " "), err, errb.String())
		}
		awsCPU = cpuOf(cmd.ProcessState)
		return time.Since(start), nil
	}
	if _, err := runAWS("s3", "mb", "s3://bench"); err != nil {
		return err
	}
	serveCPU := procCPU(srv.cmd.Process.Pid)
	el, err = runAWS("s3", "cp", "--only-show-errors", l.bigFile, "s3://bench/big.bin")
	if err != nil {
		return err
	}
	serveCPU = procCPU(srv.cmd.Process.Pid) - serveCPU
	awsPutCPU := awsCPU
	awsPut := mbps(sz.big, el)
	serveGetCPU := procCPU(srv.cmd.Process.Pid)
	el, err = runAWS("s3", "cp", "--only-show-errors", "s3://bench/big.bin", dst)
	if err != nil {
		return err
	}
	serveGetCPU = procCPU(srv.cmd.Process.Pid) - serveGetCPU
	awsGetCPU := awsCPU
	awsGet := mbps(sz.big, el)
	os.Remove(dst)
	null, err := awsCeiling(ctx, awscli, env, l.bigFile, b.dir)
	if err != nil {
		return err
	}
	ceilPut, ceilGet := mbps(sz.big, null.put), mbps(sz.big, null.get)
	fmt.Printf("  loft put %.0f MB/s, get %.0f MB/s; awscli PUT %.0f MB/s, GET %.0f MB/s; awscli against a null server PUT %.0f, GET %.0f MB/s\n",
		loftPut, loftGet, awsPut, awsGet, ceilPut, ceilGet)
	// The machine's CPU bounds a PUT too: awscli and the gateway share its
	// cores, and the gateway does at least what loft put does with the same
	// bytes plus what S3 asks of each (the payload's SHA-256 that the
	// signature covers, the MD5 that is its ETag). awscli's CPU is what it
	// used for this upload (against the null server it used more, being
	// faster: the figure is the lower, so the ceiling the higher). Their
	// sum over the cores is about the least time the upload takes. A GET
	// has no such bound from loft get, whose file writes cost more than a
	// socket's: its CPU times are printed, and awscli's own ceiling is the
	// bound.
	procs := float64(runtime.GOMAXPROCS(0))
	mb := float64(sz.big) / 1e6
	leastPut := (loftPutCPU + awsPutCPU).Seconds() + mb/l.sha + mb/l.md5
	cpuPut := mb / (leastPut / procs)
	fmt.Printf("  CPU, PUT: serve %.1f s, awscli %.1f s (vs null %.1f s); least: loft put %.1f s + awscli %.1f s + SHA-256 and MD5 of the payload %.1f s = %.1f s on %d cores: %.0f MB/s\n",
		serveCPU.Seconds(), awsPutCPU.Seconds(), null.putCPU.Seconds(), loftPutCPU.Seconds(), awsPutCPU.Seconds(), mb/l.sha+mb/l.md5, leastPut, int(procs), cpuPut)
	fmt.Printf("  CPU, GET: serve %.1f s, awscli %.1f s (vs null %.1f s), loft get %.1f s\n",
		serveGetCPU.Seconds(), awsGetCPU.Seconds(), null.getCPU.Seconds(), loftGetCPU.Seconds())
	// The target is a ratio to loft's own put and get; when it is above
	// what awscli reaches against a server that does nothing, or above the
	// CPU ceiling, it is out of reach here, and the row names the lower.
	s3row := func(name string, got, loft, client, cpu float64) row {
		r := row{name: name, value: fmt.Sprintf("%.0f MB/s (%.2fx loft)", got, got/loft),
			limit: fmt.Sprintf("loft %.0f MB/s; awscli vs a null server %.0f MB/s", loft, client), target: ">= 0.8x loft"}
		if cpu > 0 {
			r.limit += fmt.Sprintf("; CPU ceiling %.0f MB/s", cpu)
		}
		bound, which := client, "awscli's own ceiling"
		if cpu > 0 && cpu < client {
			bound, which = cpu, "the CPU ceiling"
		}
		switch {
		case got >= 0.8*loft:
			r.verdict = verdict(true, fmt.Sprintf("%.2fx", got/loft))
		case bound < 0.8*loft:
			r.verdict = fmt.Sprintf("out of reach: %s is %.2fx loft; reached %.0f%% of it", which, bound/loft, 100*got/bound)
		default:
			r.verdict = verdict(false, fmt.Sprintf("%.2fx", got/loft))
		}
		return r
	}
	b.add(s3row(fmt.Sprintf("awscli PUT of %s (multipart, 8 MiB parts)", human(sz.big)), awsPut, loftPut, ceilPut, cpuPut))
	b.add(s3row(fmt.Sprintf("awscli GET of %s", human(sz.big)), awsGet, loftGet, ceilGet, 0))

	c := awss3.New(awss3.Options{BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(k.ID, k.Secret, ""), Retryer: aws.NopRetryer{}, // a failed request is a failed figure
		HTTPClient: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: s3Clients}}})
	n := smallObjects
	if b.quick {
		n = 1000
	}
	data := randomBytes(smallSize, 41)
	putLat, putEl, err := manyRequests(ctx, n, func(ctx context.Context, i int) error {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("small/%05d", i)),
			Body: strings.NewReader(string(data[:smallSize-8]) + fmt.Sprintf("%08d", i))})
		return err
	})
	if err != nil {
		return fmt.Errorf("small PUTs: %w", err)
	}
	getLat, getEl, err := manyRequests(ctx, n, func(ctx context.Context, i int) error {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("bench"), Key: aws.String(fmt.Sprintf("small/%05d", i))})
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, out.Body)
		out.Body.Close()
		return err
	})
	if err != nil {
		return fmt.Errorf("small GETs: %w", err)
	}
	for _, f := range []struct {
		what string
		lat  []time.Duration
		el   time.Duration
	}{{"PUTs", putLat, putEl}, {"GETs", getLat, getEl}} {
		b.add(row{name: fmt.Sprintf("%d %s of 4 KiB objects, %d clients", n, f.what, s3Clients),
			value: fmt.Sprintf("%.0f objects/s, p50 %s, p99 %s", float64(n)/f.el.Seconds(), pct(f.lat, 50), pct(f.lat, 99)),
			limit: "-", target: "-", verdict: "-"})
	}

	// 16 uploads of the big size at once, generated as they are sent:
	// serve's memory must not grow with their number or size.
	srv.resetPeak()
	each := sz.big
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, s3Clients)
	for i := range s3Clients {
		wg.Go(func() {
			errs <- streamPut(ctx, endpoint, k, fmt.Sprintf("bench/many/%02d", i), each, uint64(100+i))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return fmt.Errorf("concurrent uploads: %w", err)
		}
	}
	el = time.Since(start)
	peak := srv.peakRSS()
	b.add(row{name: fmt.Sprintf("%d concurrent uploads of %s: serve's peak RSS", s3Clients, human(each)),
		value: fmt.Sprintf("%.1f MiB (%.0f MB/s in all)", float64(peak)/(1<<20), mbps(int64(s3Clients)*each, el)),
		limit: "-", target: "< 128 MiB", verdict: verdict(peak < 128<<20, fmt.Sprintf("%.1f MiB", float64(peak)/(1<<20)))})
	srv.stop()
	os.RemoveAll(repo)
	return nil
}

// awsEnv is awscli's environment: the key, a configuration of its own
// (Signature Version 4, as loft takes), no CA bundle of the machine's.
func awsEnv(dir string, k s3key) ([]string, error) {
	home := filepath.Join(dir, "aws-home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, err
	}
	conf := filepath.Join(home, "config")
	if err := os.WriteFile(conf, []byte("[default]\ns3 =\n  signature_version = s3v4\n"), 0o600); err != nil {
		return nil, err
	}
	var env []string
	for _, e := range os.Environ() {
		if name, _, _ := strings.Cut(e, "="); !strings.HasPrefix(name, "AWS_") && name != "HOME" {
			env = append(env, e)
		}
	}
	return append(env, "HOME="+home, "AWS_CONFIG_FILE="+conf, "AWS_ACCESS_KEY_ID="+k.ID, "AWS_SECRET_ACCESS_KEY="+k.Secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"), nil
}

// manyRequests runs fn for 0..n-1 from s3Clients goroutines and returns
// each call's latency and the time of all.
func manyRequests(ctx context.Context, n int, fn func(context.Context, int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for range s3Clients {
		wg.Go(func() {
			for i := range next {
				t := time.Now()
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
				lat[i] = time.Since(t)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return lat, time.Since(start), first
}

// pct returns the p-th percentile of lat.
func pct(lat []time.Duration, p int) string {
	s := slices.Clone(lat)
	slices.Sort(s)
	d := s[min(len(s)-1, len(s)*p/100)]
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

// streamPut PUTs size bytes of generated data to path as one streamed,
// UNSIGNED-PAYLOAD request: nothing is held or hashed first.
func streamPut(ctx context.Context, endpoint string, k s3key, path string, size int64, seed uint64) error {
	body := io.LimitReader(rand.NewChaCha8(seedOf(seed)), size)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint+"/"+path, body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("x-amz-content-sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: k.ID, SecretAccessKey: k.Secret}, req,
		"UNSIGNED-PAYLOAD", "s3", "us-east-1", time.Now()); err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("PUT %s: %s: %s", path, resp.Status, b)
	}
	return nil
}

// nullS3 is the least an S3 server can do for awscli's cp of one object:
// it answers HEAD and (ranged) GET from a file and takes uploads, single
// or multipart, into nothing, checking no signature. awscli against it
// is the client's own ceiling on this machine, measured in the same run.
type nullS3 struct{ file string }

func (s nullS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		f, err := os.Open(s.file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("ETag", `"null"`)
		http.ServeContent(w, r, "", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), f)
	case r.Method == http.MethodPost && q.Has("uploads"):
		fmt.Fprint(w, `<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId></InitiateMultipartUploadResult>`)
	case r.Method == http.MethodPost:
		io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, `<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><ETag>"null-1"</ETag></CompleteMultipartUploadResult>`)
	case r.Method == http.MethodPut:
		io.Copy(io.Discard, r.Body)
		w.Header().Set("ETag", `"null"`)
	default:
		http.Error(w, "not here", http.StatusMethodNotAllowed)
	}
}

// nullRun is what awscli's cp of a file to and from nullS3 took: wall
// times, and the CPU awscli used.
type nullRun struct{ put, get, putCPU, getCPU time.Duration }

// awsCeiling times awscli's cp of file to and from nullS3.
func awsCeiling(ctx context.Context, awscli string, env []string, file, dir string) (nullRun, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nullRun{}, err
	}
	srv := &http.Server{Handler: nullS3{file: file}}
	go srv.Serve(ln)
	defer srv.Close()
	run := func(args ...string) (time.Duration, time.Duration, error) {
		settle()
		cmd := exec.CommandContext(ctx, awscli, append([]string{"--endpoint-url", "http://" + ln.Addr().String()}, args...)...)
		cmd.Env = env
		var errb strings.Builder
		cmd.Stderr = &errb
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, fmt.Errorf("aws %s (null server): %w\n%s", strings.Join(args, " "), err, errb.String())
		}
		return time.Since(start), cpuOf(cmd.ProcessState), nil
	}
	var r nullRun
	if r.put, r.putCPU, err = run("s3", "cp", "--only-show-errors", file, "s3://null/big.bin"); err != nil {
		return r, err
	}
	dst := filepath.Join(dir, "null-got.bin")
	defer os.Remove(dst)
	r.get, r.getCPU, err = run("s3", "cp", "--only-show-errors", "s3://null/big.bin", dst)
	return r, err
}

// procCPU is the user and system CPU time process pid has used so far
// (0 when /proc cannot tell).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; count from its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100
// on every Linux architecture Go builds for.
const clockTicks = 100
