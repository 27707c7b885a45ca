package manifest

import (
	"fmt"
	"strings"
)

// RegistryMirror pulls the images of a source registry (or of a path under
// it) through another registry: a company mirror or pull-through cache. The
// archive keeps the source reference as the artifact's identity.
type RegistryMirror struct {
	// Source is a registry host, optionally with a repository path prefix:
	// docker.io, quay.io, registry.example.com:5000/team.
	Source string `json:"source"`
	// Mirror is the registry host, optionally with a path prefix, that
	// serves Source's repositories: mirror.corp.example/dockerhub serves
	// docker.io/bitnami/redis as mirror.corp.example/dockerhub/bitnami/redis.
	Mirror string `json:"mirror"`
}

// ParseRegistryMirror reads the flag form SOURCE=MIRROR[/PREFIX].
func ParseRegistryMirror(s string) (RegistryMirror, error) {
	src, mirror, ok := strings.Cut(strings.TrimSpace(s), "=")
	m := RegistryMirror{Source: strings.TrimSpace(src), Mirror: strings.TrimSpace(mirror)}
	if !ok {
		return m, fmt.Errorf("%w: registry mirror %q: want SOURCE=MIRROR[/PREFIX]", ErrInvalidSpec, s)
	}
	if err := m.validate(); err != nil {
		return m, err
	}
	return m, nil
}

// String renders the flag form.
func (m RegistryMirror) String() string { return m.Source + "=" + m.Mirror }

// SourceKey is the source in the form two mirrors for the same source share:
// host lower-cased (host names are case-insensitive), Docker Hub's aliases
// as docker.io (image references treat them as one registry), no trailing
// slash. Repository paths are lower case in every valid reference, so they
// are lower-cased too rather than left to never match.
func (m RegistryMirror) SourceKey() string {
	s := strings.ToLower(strings.TrimRight(strings.TrimSpace(m.Source), "/"))
	host, path, hasPath := strings.Cut(s, "/")
	switch host {
	case "index.docker.io", "registry-1.docker.io":
		host = "docker.io"
	}
	if hasPath {
		return host + "/" + path
	}
	return host
}

func (m RegistryMirror) validate() error {
	for _, f := range []struct{ what, v string }{{"source", m.Source}, {"mirror", m.Mirror}} {
		if err := checkRegistryPath(f.v); err != nil {
			return fmt.Errorf("%w: registry mirror %s: %s %v", ErrInvalidSpec, m, f.what, err)
		}
	}
	return nil
}

// checkRegistryPath accepts host[:port][/path...]: no scheme, no tag or
// digest, no empty path segment. A scheme is refused rather than stripped:
// whether a mirror speaks plain HTTP is --plain-http's business.
func checkRegistryPath(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("is empty")
	case strings.Contains(s, "://"):
		return fmt.Errorf("%q has a scheme; give host[:port][/prefix]", s)
	case strings.ContainsAny(s, " \t@"):
		return fmt.Errorf("%q is not host[:port][/prefix]", s)
	}
	host, path, _ := strings.Cut(s, "/")
	if host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if path == "" && strings.HasSuffix(s, "/") {
		return fmt.Errorf("%q ends with /", s)
	}
	if path != "" {
		for _, seg := range strings.Split(path, "/") {
			if seg == "" || strings.Contains(seg, ":") {
				return fmt.Errorf("%q has an empty path segment or a tag", s)
			}
		}
	}
	return nil
}
