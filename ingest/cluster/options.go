package cluster

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"k8s.io/client-go/rest"

	"github.com/ferrytool/ferry/manifest"
	"github.com/ferrytool/ferry/registry"
)

// Defaults of [Options].
const (
	DefaultFieldManager      = "ferry"
	DefaultVariableSet       = "mural-variables"
	DefaultCASourceNamespace = "mural-system"
	DefaultCASecret          = "zot-ca"
	DefaultWaitTimeout       = 10 * time.Minute
	DefaultPollInterval      = 2 * time.Second
)

// CASourceSecrets are the Secrets PaletteAI puts into mural-system on a
// spoke once its Compute Pool is up; which one depends on how the hub
// registry was provisioned. The first is preferred when both exist.
var CASourceSecrets = []string{"zot-ca", "oci-tls-hub"}

// Variable names in the project VariableSet.
const (
	VarZotCertSecret  = "zot-cert-secret"
	VarZotAuthSecret  = "zot-auth-secret"
	VarInternalZotURL = "internal-zot-url"
)

// Options says what [Apply] and [Validate] do. Zero values are documented
// per field; the required ones are marked.
type Options struct {
	// Hub is the PaletteAI hub cluster. Nil skips the hub steps (bundle
	// import, Project admission, variables).
	Hub *rest.Config
	// Spoke is the Compute Pool cluster that receives the Zot CA. Nil skips
	// that step.
	Spoke *rest.Config

	// ProjectNamespace is the hub namespace of the Project; required with Hub.
	ProjectNamespace string
	// Project names the Project; "" means ProjectNamespace (PaletteAI's
	// webhook makes a Project's name equal its namespace).
	Project string
	// WorkloadNamespace is where workloads deploy on the spoke; required.
	WorkloadNamespace string

	// Registry is where the content was pushed, HOST:PORT/BASE, e.g.
	// "10.10.233.0:30003/spectro-content". It names the chart locations the
	// import rewrites to and derives the variables; required unless Bundle
	// is nil and all three Variables are given.
	Registry string
	// Bundle is the Profile Bundle to import; nil skips the import.
	Bundle *manifest.Bundle
	// RegistryMap rewrites pack registry UIDs, old to new, as `paletteai
	// studio import --registry-map` does; nil rewrites none.
	RegistryMap map[string]string
	// DigestMap rewrites image references pinned by digest, "@" + old to
	// "@" + new, in every string of the imported objects: the digests that
	// `ingest --convert-oci` changed (Report.DigestMap). Nil rewrites none.
	DigestMap map[string]string

	// Variables overrides the values upserted into the VariableSet; an
	// empty field takes the value derived from Registry.
	Variables Variables
	// VariableSet names the project VariableSet; "" means mural-variables.
	VariableSet string
	// CreateVariableSet creates the VariableSet when it is absent; false
	// makes an absent VariableSet an error (ErrNotFound).
	CreateVariableSet bool

	// CASourceNamespace is where the spoke's CA Secret appears; "" means
	// mural-system.
	CASourceNamespace string
	// WaitTimeout bounds the wait for that Secret; zero means 10 minutes.
	WaitTimeout time.Duration
	// PollInterval is how often the wait looks; zero means 2 seconds.
	PollInterval time.Duration

	// DryRun sends every write as a server-side dry run (or, where the API
	// cannot, computes it locally) and reports the diff; nothing changes.
	DryRun bool
	// FieldManager names ferry in managedFields; "" means "ferry".
	FieldManager string

	// Logger receives debug detail; nil discards it.
	Logger *slog.Logger
	// OnStepStart is called when a step begins; nil is fine.
	OnStepStart func(Step)
	// OnStep is called with each step's result as it finishes; nil is fine.
	OnStep func(StepResult)
	// OnWait is called on every poll while the spoke step waits for its CA
	// Secret, so a caller can show that it waits; nil is fine.
	OnWait func(WaitStatus)

	// hooks lets tests act between a read and the write that depends on it.
	hooks hooks
}

type hooks struct {
	beforeWrite func(step Step, attempt int)
}

// Variables are the three values ferry keeps in the project VariableSet.
type Variables struct {
	ZotCertSecret  string `json:"zotCertSecret"`  // default "zot-ca"
	ZotAuthSecret  string `json:"zotAuthSecret"`  // default "<host with . as ->-<port>-pull-secret"
	InternalZotURL string `json:"internalZotURL"` // default "<host>:<port>"
}

// WaitStatus reports a wait in progress.
type WaitStatus struct {
	Cluster   string
	Namespace string
	Names     []string // any one of these ends the wait
	Elapsed   time.Duration
	Timeout   time.Duration
	// LastError is the last error other than "not found", e.g. while the
	// API server is briefly unreachable; nil when there was none.
	LastError error
}

// Registry is a parsed HOST:PORT/BASE.
type Registry struct {
	Host string
	Port string // "" when the registry string named none
	Base string // path below the host, no leading or trailing "/"
}

// ParseRegistry parses HOST[:PORT][/BASE] as registry.ParseDestination
// does, the one parser of destinations; a leading oci:// (Helm's form) is
// ignored. Errors wrap ErrInvalidOptions and registry.ErrDestination.
func ParseRegistry(s string) (Registry, error) {
	d, err := registry.ParseDestination(strings.TrimPrefix(strings.TrimSpace(s), "oci://"))
	if err != nil {
		return Registry{}, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return Registry{Host: d.Host, Port: d.Port, Base: d.Base}, nil
}

func (r Registry) destination() registry.Destination {
	return registry.Destination{Host: r.Host, Port: r.Port, Base: r.Base}
}

// HostPort returns HOST:PORT, or HOST when there is no port.
func (r Registry) HostPort() string { return r.destination().HostPort() }

// String returns HOST:PORT/BASE.
func (r Registry) String() string { return r.destination().String() }

// ChartRepository returns the Helm OCI repository a chart was pushed to,
// oci://HOST:PORT/BASE/charts/CHART: `helm push` to it stores the chart at
// BASE/charts/CHART/CHART:VERSION.
func (r Registry) ChartRepository(chart string) string {
	return "oci://" + r.String() + "/charts/" + chart
}

// DefaultVariables derives the variables from the registry, as the air-gap
// guide does: zot-ca; 10.10.233.0:30003 gives 10-10-233-0-30003-pull-secret;
// and HOST:PORT.
func (r Registry) DefaultVariables() (Variables, error) {
	if r.Port == "" {
		return Variables{}, fmt.Errorf("%w: registry %q names no port, which the pull-secret name needs; give the port or the zot-auth-secret value", ErrInvalidOptions, r.String())
	}
	host := strings.NewReplacer(".", "-", ":", "-", "[", "", "]", "").Replace(r.Host)
	return Variables{
		ZotCertSecret:  DefaultCASecret,
		ZotAuthSecret:  host + "-" + r.Port + "-pull-secret",
		InternalZotURL: r.HostPort(),
	}, nil
}

// ParseRegistryMap parses OLD=NEW pairs, as given to --registry-map.
func ParseRegistryMap(pairs []string) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range pairs {
		old, to, ok := strings.Cut(p, "=")
		old, to = strings.TrimSpace(old), strings.TrimSpace(to)
		if !ok || old == "" || to == "" {
			return nil, fmt.Errorf("%w: registry map %q: want OLD=NEW", ErrInvalidOptions, p)
		}
		if prev, dup := m[old]; dup && prev != to {
			return nil, fmt.Errorf("%w: registry map: %s maps to both %s and %s", ErrInvalidOptions, old, prev, to)
		}
		m[old] = to
	}
	return m, nil
}

// settings is Options checked and with defaults filled in.
type settings struct {
	Options
	registry  Registry
	hasReg    bool
	variables Variables
	log       *slog.Logger
}

func (o Options) resolve() (*settings, error) {
	s := &settings{Options: o}
	if o.Hub == nil && o.Spoke == nil {
		return nil, fmt.Errorf("%w: neither a hub nor a spoke cluster given", ErrInvalidOptions)
	}
	if o.WorkloadNamespace == "" {
		return nil, fmt.Errorf("%w: no workload namespace", ErrInvalidOptions)
	}
	if o.Hub != nil && o.ProjectNamespace == "" {
		return nil, fmt.Errorf("%w: no project namespace", ErrInvalidOptions)
	}
	if s.Project == "" {
		s.Project = o.ProjectNamespace
	}
	if s.VariableSet == "" {
		s.VariableSet = DefaultVariableSet
	}
	if s.CASourceNamespace == "" {
		s.CASourceNamespace = DefaultCASourceNamespace
	}
	if s.WaitTimeout <= 0 {
		s.WaitTimeout = DefaultWaitTimeout
	}
	if s.PollInterval <= 0 {
		s.PollInterval = DefaultPollInterval
	}
	if s.FieldManager == "" {
		s.FieldManager = DefaultFieldManager
	}
	s.log = o.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if o.Registry != "" {
		r, err := ParseRegistry(o.Registry)
		if err != nil {
			return nil, err
		}
		s.registry, s.hasReg = r, true
	}
	if o.Hub != nil {
		v := o.Variables
		if v.ZotCertSecret == "" || v.ZotAuthSecret == "" || v.InternalZotURL == "" {
			if !s.hasReg {
				return nil, fmt.Errorf("%w: no registry given, and the variables need one", ErrInvalidOptions)
			}
			d, err := s.registry.DefaultVariables()
			if err != nil && (v.ZotAuthSecret == "" || v.InternalZotURL == "") {
				return nil, err
			}
			v.ZotCertSecret = firstNonEmpty(v.ZotCertSecret, d.ZotCertSecret, DefaultCASecret)
			v.ZotAuthSecret = firstNonEmpty(v.ZotAuthSecret, d.ZotAuthSecret)
			v.InternalZotURL = firstNonEmpty(v.InternalZotURL, d.InternalZotURL)
		}
		s.variables = v
		if o.Bundle != nil && !s.hasReg {
			return nil, fmt.Errorf("%w: a bundle import needs the registry its charts were pushed to", ErrInvalidOptions)
		}
	}
	return s, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
