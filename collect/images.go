package collect

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ferrytool/ferry/internal/digestio"
	"github.com/ferrytool/ferry/manifest"
)

// blobRef is a blob and where to fetch it from.
type blobRef struct {
	blob manifest.Blob
	repo name.Repository
	// data holds manifests, which resolution already fetched.
	data []byte
}

// resolved is an artifact with everything needed to fetch its blobs, in
// archive order (children before parents).
type resolved struct {
	artifact manifest.Artifact
	blobs    []blobRef
}

// ParseImageRef parses a user-given image reference, normalised the way
// Docker does (nginx -> docker.io/library/nginx:latest).
func ParseImageRef(s string, plainHTTP bool) (name.Reference, error) {
	var opts []name.Option
	if plainHTTP {
		opts = append(opts, name.Insecure)
	}
	ref, err := name.ParseReference(s, opts...)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", s, err)
	}
	return ref, nil
}

// DisplayName renders a reference with docker.io rather than the index host.
func DisplayName(ref name.Reference) string {
	s := ref.Name()
	if rest, ok := strings.CutPrefix(s, name.DefaultRegistry+"/"); ok {
		return "docker.io/" + rest
	}
	return s
}

// resolveImage fetches the manifest (and for an index, every child manifest)
// of ref; layer and config blobs are only listed, not downloaded.
func resolveImage(ctx context.Context, ref name.Reference, ropts []remote.Option) (*resolved, error) {
	ropts = append(ropts[:len(ropts):len(ropts)], remote.WithContext(ctx))
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return nil, sourceErr(DisplayName(ref), err)
	}
	r := &resolved{}
	seen := map[string]bool{}
	if err := addManifest(ctx, ref.Context(), string(desc.MediaType), desc.Manifest, desc.Digest.String(), ropts, r, seen, 0); err != nil {
		return nil, fmt.Errorf("image %s: %w", DisplayName(ref), err)
	}
	tag := ""
	if t, ok := ref.(name.Tag); ok {
		tag = t.TagStr()
	}
	closure := make([]string, 0, len(r.blobs))
	for _, b := range r.blobs {
		closure = append(closure, b.blob.Digest)
	}
	r.artifact = manifest.Artifact{
		Kind:      manifest.KindImage,
		Name:      DisplayName(ref),
		Source:    DisplayName(ref),
		Digest:    desc.Digest.String(),
		Size:      desc.Size,
		MediaType: string(desc.MediaType),
		Blobs:     closure,
		Dest:      manifest.Destination{Repository: "images/" + ref.Context().RepositoryStr(), Tag: tag},
	}
	return r, nil
}

// addManifest appends a manifest's children, then the manifest itself.
func addManifest(ctx context.Context, repo name.Repository, mediaType string, data []byte, digest string, ropts []remote.Option, r *resolved, seen map[string]bool, depth int) error {
	if depth > 4 {
		return fmt.Errorf("manifest %s: indexes nested too deep", digest)
	}
	if got := digestio.FromBytes(data); got != digest {
		return fmt.Errorf("manifest %s: registry served content with digest %s", digest, got)
	}
	if !manifest.IsManifest(mediaType) {
		return fmt.Errorf("manifest %s has media type %q, which is not an image manifest or index", digest, mediaType)
	}
	children, err := manifest.Children(mediaType, data)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", digest, err)
	}
	for _, c := range children {
		if seen[c.Digest] {
			continue
		}
		if manifest.IsManifest(c.MediaType) {
			child, err := remote.Get(repo.Digest(c.Digest), ropts...)
			if err != nil {
				return sourceErr(repo.Name()+"@"+c.Digest, err)
			}
			if err := addManifest(ctx, repo, string(child.MediaType), child.Manifest, c.Digest, ropts, r, seen, depth+1); err != nil {
				return err
			}
			continue
		}
		seen[c.Digest] = true
		r.blobs = append(r.blobs, blobRef{blob: manifest.Blob{Digest: c.Digest, Size: c.Size, MediaType: c.MediaType}, repo: repo})
	}
	if !seen[digest] {
		seen[digest] = true
		r.blobs = append(r.blobs, blobRef{blob: manifest.Blob{Digest: digest, Size: int64(len(data)), MediaType: mediaType}, repo: repo, data: data})
	}
	return nil
}

// sourceErr classifies a registry error so the operator sees whether the
// thing is missing or the registry is.
func sourceErr(what string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %s: access denied: %v", ErrSource, what, err)
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
				return fmt.Errorf("%w: %s: %v", ErrNotFound, what, err)
			}
		}
	}
	return fmt.Errorf("%w: %s: %v", ErrSource, what, err)
}
