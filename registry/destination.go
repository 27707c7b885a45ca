package registry

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Destination is where content goes: a registry host, its port, and a
// base path below which every repository is placed. It is parsed and
// checked once, before anything is sent, by [ParseDestination].
type Destination struct {
	// Host is a host name or an IP address (IPv6 without brackets).
	Host string
	// Port is "" when none was named.
	Port string
	// Base is the path below the host, "" or segments joined by "/"; each
	// segment follows the distribution spec's repository-name grammar.
	Base string
}

// pathComponent is one segment of a repository name in the distribution
// spec: lowercase letters and digits, separated by a period, one or two
// underscores, or dashes.
var pathComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)

// hostName is a DNS name or an IPv4 address, as the distribution spec's
// reference grammar allows for a registry domain.
var hostName = regexp.MustCompile(`^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*$`)

// ParseDestination reads HOST[:PORT][/BASE] (a trailing "/" is ignored).
// A scheme is refused: TLS or plain HTTP is the transport's choice, not
// part of the name. The port must be a number from 1 to 65535 and every
// base segment a valid repository path component (lowercase, no "..", no
// empty segment), so a name the registry would refuse fails here, before
// any blob is uploaded into a repository that cannot be completed.
func ParseDestination(s string) (Destination, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return Destination{}, fmt.Errorf("%w: no registry given: want HOST[:PORT][/BASE]", ErrDestination)
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		return Destination{}, fmt.Errorf("%w: %q: give HOST[:PORT][/BASE] without the %s:// scheme (%s); TLS or plain HTTP is chosen separately",
			ErrDestination, in, scheme, rest)
	}
	s = strings.TrimSuffix(s, "/")
	hostport, base, _ := strings.Cut(s, "/")
	d := Destination{Base: base}
	if err := d.setHostPort(hostport); err != nil {
		return Destination{}, fmt.Errorf("%w: %q: %v", ErrDestination, in, err)
	}
	if base != "" {
		for _, seg := range strings.Split(base, "/") {
			if err := checkComponent(seg); err != nil {
				return Destination{}, fmt.Errorf("%w: %q: base path %q: %v", ErrDestination, in, base, err)
			}
		}
	}
	return d, nil
}

func (d *Destination) setHostPort(hostport string) error {
	if hostport == "" {
		return fmt.Errorf("no host")
	}
	host, port := hostport, ""
	switch h, p, err := net.SplitHostPort(hostport); {
	case err == nil:
		host, port = h, p
		if port == "" {
			return fmt.Errorf("empty port after %q", h+":")
		}
	case strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]"):
		host = hostport[1 : len(hostport)-1]
	case strings.Contains(hostport, ":"):
		return fmt.Errorf("host %q: %v", hostport, err)
	}
	if ip := net.ParseIP(host); ip == nil && !hostName.MatchString(host) {
		return fmt.Errorf("bad host %q", host)
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
			return fmt.Errorf("bad port %q: want a number from 1 to 65535", port)
		}
	}
	d.Host, d.Port = host, port
	return nil
}

func checkComponent(seg string) error {
	switch {
	case seg == "":
		return fmt.Errorf("empty segment")
	case seg == "." || seg == "..":
		return fmt.Errorf("segment %q is not allowed", seg)
	case strings.ToLower(seg) != seg:
		return fmt.Errorf("segment %q has uppercase letters; repository names are lowercase", seg)
	case !pathComponent.MatchString(seg):
		return fmt.Errorf("segment %q: want lowercase letters and digits separated by '.', '_', '__' or '-'", seg)
	}
	return nil
}

// CheckRepository reports whether a repository path (base included) is a
// valid repository name in the distribution spec.
func CheckRepository(repo string) error {
	if repo == "" {
		return fmt.Errorf("%w: empty repository name", ErrDestination)
	}
	for _, seg := range strings.Split(repo, "/") {
		if err := checkComponent(seg); err != nil {
			return fmt.Errorf("%w: repository %q: %v", ErrDestination, repo, err)
		}
	}
	return nil
}

// HostPort is HOST:PORT, or HOST without a port; an IPv6 address is in
// brackets.
func (d Destination) HostPort() string {
	if d.Port == "" {
		if strings.Contains(d.Host, ":") {
			return "[" + d.Host + "]"
		}
		return d.Host
	}
	return net.JoinHostPort(d.Host, d.Port)
}

// String is HOST[:PORT][/BASE], the form ParseDestination reads.
func (d Destination) String() string {
	if d.Base == "" {
		return d.HostPort()
	}
	return d.HostPort() + "/" + d.Base
}

// Repository places a repository path below the base.
func (d Destination) Repository(rel string) string {
	if d.Base == "" {
		return rel
	}
	return d.Base + "/" + rel
}
