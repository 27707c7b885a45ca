// Command floor is the bench's yardstick and its image maker. It is built
// and run by hack/bench.sh only.
//
//	floor htpasswd USER COST            a bcrypt htpasswd line, password on stdin
//	floor seed [flags] HOST/PREFIX      make images of random layers and push them
//	floor push [flags] LAYOUT HOST/BASE push an OCI layout the barest way
//	floor serve [flags]                 a registry taking single-POST uploads (serve.go)
//
// push is the floor an ingest is measured against: every blob an image
// needs goes into the image's repository in a POST and a monolithic PUT,
// with no existence check, no mount and no retry, four at a time, then each
// manifest in one PUT. It counts the requests it sends and prints
// "requests N blobs M".
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"hash"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "htpasswd":
		err = htpasswd(os.Args[2:])
	case "seed":
		err = seed(os.Args[2:])
	case "push":
		err = push(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: floor htpasswd USER COST | seed [flags] HOST/PREFIX | push [flags] LAYOUT HOST/BASE | serve [flags]")
	os.Exit(2)
}

func htpasswd(args []string) error {
	if len(args) != 2 {
		usage()
	}
	var cost int
	if _, err := fmt.Sscan(args[1], &cost); err != nil {
		return fmt.Errorf("cost %q: %w", args[1], err)
	}
	pw, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword(bytes.TrimRight(pw, "\n"), cost)
	if err != nil {
		return err
	}
	fmt.Printf("%s:%s\n", args[0], hash)
	return nil
}

// client is a registry client of one host: HTTP/1.1, kept-alive
// connections, basic auth sent with every request, requests counted.
type client struct {
	base      string // scheme://host
	http      *http.Client
	user, pwd string
	requests  atomic.Int64
}

func newClient(host, caFile, user string, plain bool) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.MaxIdleConnsPerHost = 16
	tr.WriteBufferSize = 256 << 10
	tr.ReadBufferSize = 64 << 10
	c := &client{base: "https://" + host, http: &http.Client{Transport: tr}, user: user, pwd: os.Getenv("FLOOR_PASSWORD")}
	if plain {
		c.base = "http://" + host
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return c, nil
}

// do sends one request and fails unless the answer is want; it returns
// the answer's Location, resolved against the registry.
func (c *client) do(ctx context.Context, method, u, ctype string, body io.Reader, size int64, want int) (string, error) {
	if !strings.HasPrefix(u, "http") {
		u = c.base + u
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return "", err
	}
	if body != nil {
		req.ContentLength = size
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pwd)
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != want {
		return "", fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, bytes.TrimSpace(msg))
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", nil
	}
	ref, err := url.Parse(u)
	if err != nil {
		return "", err
	}
	l, err := ref.Parse(loc)
	if err != nil {
		return "", err
	}
	return l.String(), nil
}

// upload puts one blob into repo: POST, then PUT with the content.
func (c *client) upload(ctx context.Context, repo, digest string, size int64, open func() (io.ReadCloser, error)) error {
	loc, err := c.do(ctx, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", "", nil, 0, http.StatusAccepted)
	if err != nil {
		return err
	}
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = c.do(ctx, http.MethodPut, u.String(), "application/octet-stream", rc, size, http.StatusCreated)
	return err
}

func (c *client) putManifest(ctx context.Context, repo, ref, mediaType string, body []byte) error {
	_, err := c.do(ctx, http.MethodPut, "/v2/"+repo+"/manifests/"+ref, mediaType, bytes.NewReader(body), int64(len(body)), http.StatusCreated)
	return err
}

// parallel runs fn on every item, jobs at a time, and returns the first error.
func parallel[T any](items []T, jobs int, fn func(T) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan T)
	)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				if err := fn(it); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, it := range items {
		next <- it
	}
	close(next)
	wg.Wait()
	return first
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type manifestDoc struct {
	MediaType string       `json:"mediaType"`
	Config    *descriptor  `json:"config,omitempty"`
	Layers    []descriptor `json:"layers,omitempty"`
	Manifests []descriptor `json:"manifests,omitempty"`
}

// push: the floor.
func push(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	caFile := fs.String("ca-file", "", "CA of the registry's certificate")
	user := fs.String("username", "", "basic auth user; the password is $FLOOR_PASSWORD")
	jobs := fs.Int("jobs", 4, "uploads in parallel")
	plain := fs.Bool("plain-http", false, "plain HTTP")
	_ = fs.Parse(args)
	if fs.NArg() != 2 {
		usage()
	}
	layout, dest := fs.Arg(0), fs.Arg(1)
	host, base, _ := strings.Cut(dest, "/")
	c, err := newClient(host, *caFile, *user, *plain)
	if err != nil {
		return err
	}
	ctx := context.Background()
	blobPath := func(d string) string { return filepath.Join(layout, "blobs", strings.Replace(d, ":", "/", 1)) }
	readJSON := func(d string, v any) ([]byte, error) {
		b, err := os.ReadFile(blobPath(d))
		if err != nil {
			return nil, err
		}
		return b, json.Unmarshal(b, v)
	}
	var idx manifestDoc
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("index.json: %w", err)
	}

	type blobJob struct {
		repo string
		desc descriptor
	}
	type manifestJob struct {
		repo, ref, mediaType string
		body                 []byte
	}
	var blobs []blobJob
	var children, tops []manifestJob
	seen := map[string]bool{}
	// walk lists what an artifact needs in repo: the blobs of its
	// manifests, its child manifests by digest, and itself under ref.
	var walk func(repo, ref string, d descriptor, top bool) error
	walk = func(repo, ref string, d descriptor, top bool) error {
		var m manifestDoc
		body, err := readJSON(d.Digest, &m)
		if err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		for _, ch := range m.Manifests {
			if err := walk(repo, ch.Digest, ch, false); err != nil {
				return err
			}
		}
		var need []descriptor
		if m.Config != nil {
			need = append(need, *m.Config)
		}
		need = append(need, m.Layers...)
		for _, n := range need {
			if k := repo + "@" + n.Digest; !seen[k] {
				seen[k] = true
				blobs = append(blobs, blobJob{repo, n})
			}
		}
		j := manifestJob{repo, ref, d.MediaType, body}
		if top {
			tops = append(tops, j)
		} else {
			children = append(children, j)
		}
		return nil
	}
	for i, d := range idx.Manifests {
		name := d.Annotations["org.opencontainers.image.ref.name"]
		repo, tag := fmt.Sprintf("image%d", i), "latest"
		if name != "" {
			// HOST/REPO:TAG as the archive names it; the host goes.
			_, rest, _ := strings.Cut(name, "/")
			if at := strings.LastIndex(rest, ":"); at > 0 && !strings.Contains(rest[at:], "/") {
				repo, tag = rest[:at], rest[at+1:]
			} else {
				repo = rest
			}
		}
		if base != "" {
			repo = base + "/" + repo
		}
		if err := walk(repo, tag, d, true); err != nil {
			return err
		}
	}
	err = parallel(blobs, *jobs, func(j blobJob) error {
		return c.upload(ctx, j.repo, j.desc.Digest, j.desc.Size, func() (io.ReadCloser, error) { return os.Open(blobPath(j.desc.Digest)) })
	})
	if err != nil {
		return err
	}
	for _, group := range [][]manifestJob{children, tops} {
		if err := parallel(group, *jobs, func(j manifestJob) error { return c.putManifest(ctx, j.repo, j.ref, j.mediaType, j.body) }); err != nil {
			return err
		}
	}
	fmt.Printf("requests %d blobs %d\n", c.requests.Load(), len(blobs))
	return nil
}

// seed makes images of random, incompressible layers (tar+gzip without
// compression) and pushes them to a plain-HTTP registry; it prints the
// references, one a line.
func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	images := fs.Int("images", 1, "images")
	shared := fs.Int("shared", 0, "layers every image has")
	sharedKiB := fs.Int64("shared-kib", 1024, "size of a shared layer in KiB")
	own := fs.Int("own", 1, "layers of each image's own")
	ownKiB := fs.Int64("own-kib", 256, "size of an own layer in KiB")
	work := fs.String("work", os.TempDir(), "where layers are written on their way")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		usage()
	}
	host, prefix, _ := strings.Cut(fs.Arg(0), "/")
	c, err := newClient(host, "", "", true)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	sharedLayers := make([]*layer, *shared)
	for i := range sharedLayers {
		if sharedLayers[i], err = makeLayer(*work, nonce, fmt.Sprintf("%s-shared-%d", prefix, i), *sharedKiB<<10); err != nil {
			return err
		}
	}
	defer func() {
		for _, l := range sharedLayers {
			os.Remove(l.path)
		}
	}()
	idx := make([]int, *images)
	for i := range idx {
		idx[i] = i
	}
	var mu sync.Mutex
	refs := make([]string, *images)
	err = parallel(idx, 4, func(i int) error {
		repo := fmt.Sprintf("%s/img%d", prefix, i)
		layers := append([]*layer(nil), sharedLayers...)
		for k := range *own {
			l, err := makeLayer(*work, nonce, fmt.Sprintf("%s-%d", repo, k), *ownKiB<<10)
			if err != nil {
				return err
			}
			defer os.Remove(l.path)
			layers = append(layers, l)
		}
		if err := pushImage(ctx, c, repo, layers); err != nil {
			return err
		}
		mu.Lock()
		refs[i] = host + "/" + repo + ":1"
		mu.Unlock()
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Println(strings.Join(refs, "\n"))
	return nil
}

type layer struct {
	path           string
	digest, diffID string
	size           int64
}

// makeLayer writes a tar of one file of n random bytes, gzip'd without
// compression, and hashes both forms on the way.
func makeLayer(dir string, nonce [8]byte, name string, n int64) (*layer, error) {
	f, err := os.CreateTemp(dir, "layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gzSum, tarSum := sha256.New(), sha256.New()
	counter := &countWriter{w: io.MultiWriter(f, gzSum)}
	gz, _ := gzip.NewWriterLevel(counter, gzip.NoCompression)
	tw := tar.NewWriter(io.MultiWriter(gz, tarSum))
	if err := tw.WriteHeader(&tar.Header{Name: "data.bin", Mode: 0o644, Size: n, Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	var seed [32]byte
	copy(seed[:], nonce[:])
	h := sha256.Sum256([]byte(name))
	copy(seed[8:], h[:24])
	if _, err := io.Copy(tw, io.LimitReader(mrand.NewChaCha8(seed), n)); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return &layer{path: f.Name(), digest: sum(gzSum), diffID: sum(tarSum), size: counter.n}, f.Close()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func sum(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func pushImage(ctx context.Context, c *client, repo string, layers []*layer) error {
	diffIDs := make([]string, len(layers))
	descs := make([]descriptor, len(layers))
	for i, l := range layers {
		diffIDs[i] = l.diffID
		descs[i] = descriptor{MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: l.digest, Size: l.size}
		if err := c.upload(ctx, repo, l.digest, l.size, func() (io.ReadCloser, error) { return os.Open(l.path) }); err != nil {
			return err
		}
	}
	// A config of its own per image, so no two images share a digest.
	var salt [8]byte
	binary.BigEndian.PutUint64(salt[:], mrand.Uint64())
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": map[string]string{"bench": repo + "-" + hex.EncodeToString(salt[:])}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	cd := descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: digestOf(config), Size: int64(len(config))}
	if err := c.upload(ctx, repo, cd.Digest, cd.Size, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(config)), nil }); err != nil {
		return err
	}
	m, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": cd, "layers": descs,
	})
	return c.putManifest(ctx, repo, "1", "application/vnd.oci.image.manifest.v1+json", m)
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}
