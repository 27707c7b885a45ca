package cluster

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// caKey is the one key the workload namespace's CA Secret holds.
const caKey = "ca.crt"

// copyZotCA waits for the CA Secret PaletteAI puts into mural-system, then
// makes sure the workload namespace exists and holds Secret zot-ca, type
// Opaque, with only ca.crt taken from the source. Nothing is created on the
// spoke before the source is found, so a timeout leaves nothing half-made.
func copyZotCA(ctx context.Context, s *settings, spoke *kube, sr *StepResult) error {
	src, err := waitForCASource(ctx, s, spoke)
	if err != nil {
		return err
	}
	if src == nil { // dry run, source not there yet
		sr.Items = append(sr.Items,
			Item{Kind: "Secret", Namespace: s.CASourceNamespace, Name: strings.Join(CASourceSecrets, "|"), Action: ActionWaited,
				Detail: fmt.Sprintf("not there yet; a real run waits up to %s for it", s.WaitTimeout)},
			Item{Kind: "Secret", Namespace: s.WorkloadNamespace, Name: DefaultCASecret, Action: ActionCreated,
				Detail: "from the source Secret once it appears"})
		sr.Status = StatusChanged
		return nil
	}
	ca, err := caFromSource(src)
	if err != nil {
		return err
	}
	sr.Items = append(sr.Items, Item{Kind: "Secret", Namespace: src.Namespace, Name: src.Name, Action: ActionUnchanged,
		Detail: "source of " + caKey})

	nsItem, nsCreated, err := ensureNamespace(ctx, s, spoke)
	if err != nil {
		return err
	}
	sr.Items = append(sr.Items, nsItem)
	secItem, err := ensureCASecret(ctx, s, spoke, ca, src, nsCreated && s.DryRun)
	if err != nil {
		return err
	}
	sr.Items = append(sr.Items, secItem)
	return nil
}

// waitForCASource polls for the source Secrets until one exists or the wait
// times out. A dry run looks once and returns nil, nil when none is there.
func waitForCASource(ctx context.Context, s *settings, spoke *kube) (*corev1.Secret, error) {
	start := time.Now()
	deadline := start.Add(s.WaitTimeout)
	var lastErr error
	for {
		for _, name := range CASourceSecrets {
			sec, err := spoke.core.CoreV1().Secrets(s.CASourceNamespace).Get(ctx, name, metav1.GetOptions{})
			switch {
			case err == nil:
				return sec, nil
			case apierrors.IsNotFound(err):
			case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
				return nil, spoke.apiErr("get", "secrets", s.CASourceNamespace, name, err)
			case ctx.Err() != nil:
				return nil, ctx.Err()
			default:
				// A spoke that is still coming up may refuse connections for
				// a while; keep waiting and report the error if time runs out.
				lastErr = spoke.apiErr("get", "secrets", s.CASourceNamespace, name, err)
				s.log.Debug("waiting for the CA secret", "error", err)
			}
		}
		if s.DryRun {
			return nil, nil
		}
		elapsed := time.Since(start)
		if s.OnWait != nil {
			s.OnWait(WaitStatus{Cluster: "spoke", Namespace: s.CASourceNamespace, Names: CASourceSecrets,
				Elapsed: elapsed, Timeout: s.WaitTimeout, LastError: lastErr})
		}
		left := time.Until(deadline)
		if left <= 0 {
			msg := fmt.Sprintf("%s: no Secret %s in namespace %s after %s; nothing was created on the spoke",
				spoke.name, strings.Join(CASourceSecrets, " or "), s.CASourceNamespace, s.WaitTimeout)
			if lastErr != nil {
				return nil, fmt.Errorf("%w: %s (last error: %v)", ErrTimeout, msg, lastErr)
			}
			return nil, fmt.Errorf("%w: %s", ErrTimeout, msg)
		}
		t := time.NewTimer(min(s.PollInterval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// caFromSource takes ca.crt, and only ca.crt, from the source Secret and
// checks that it is a PEM certificate and no private key.
func caFromSource(src *corev1.Secret) ([]byte, error) {
	ca := src.Data[caKey]
	where := fmt.Sprintf("Secret %s/%s", src.Namespace, src.Name)
	if len(ca) == 0 {
		return nil, fmt.Errorf("%w: %s has no %s", ErrUnusableCA, where, caKey)
	}
	if bytes.Contains(ca, []byte("PRIVATE KEY")) {
		return nil, fmt.Errorf("%w: %s holds a private key under %s; refusing to copy it", ErrUnusableCA, where, caKey)
	}
	rest, certs := ca, 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%w: %s: %s holds a PEM %q block, not only certificates", ErrUnusableCA, where, caKey, block.Type)
		}
		certs++
	}
	if certs == 0 {
		return nil, fmt.Errorf("%w: %s: %s holds no PEM certificate", ErrUnusableCA, where, caKey)
	}
	return ca, nil
}

// ensureNamespace creates the workload namespace when absent. created
// reports that it did not exist.
func ensureNamespace(ctx context.Context, s *settings, spoke *kube) (Item, bool, error) {
	it := Item{Kind: "Namespace", Name: s.WorkloadNamespace}
	nsc := spoke.core.CoreV1().Namespaces()
	_, err := nsc.Get(ctx, s.WorkloadNamespace, metav1.GetOptions{})
	if err == nil {
		it.Action = ActionUnchanged
		return it, false, nil
	}
	if !apierrors.IsNotFound(err) {
		return it, false, spoke.apiErr("get", "namespaces", "", s.WorkloadNamespace, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.WorkloadNamespace}}
	created, err := nsc.Create(ctx, ns, metav1.CreateOptions{FieldManager: s.FieldManager, DryRun: dryRun(s.DryRun)})
	if apierrors.IsAlreadyExists(err) {
		it.Action = ActionUnchanged // created by someone else meanwhile
		return it, false, nil
	}
	if err != nil {
		return it, false, spoke.apiErr("create", "namespaces", "", s.WorkloadNamespace, err)
	}
	it.Action = ActionCreated
	it.Diff = diffObjects("namespace/"+s.WorkloadNamespace, nil, toMap(created))
	return it, true, nil
}

// ensureCASecret creates or updates Secret zot-ca in the workload namespace
// so that it is Opaque and holds exactly ca.crt. local computes a dry run
// locally, for when the namespace itself would only be created by this run
// and the server cannot dry-run writes into it.
func ensureCASecret(ctx context.Context, s *settings, spoke *kube, ca []byte, src *corev1.Secret, local bool) (Item, error) {
	it := Item{Kind: "Secret", Namespace: s.WorkloadNamespace, Name: DefaultCASecret,
		Detail: fmt.Sprintf("%s from %s/%s", caKey, src.Namespace, src.Name)}
	want := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: DefaultCASecret, Namespace: s.WorkloadNamespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{caKey: ca},
	}
	if local {
		it.Action = ActionCreated
		it.Diff = diffObjects("secret/"+DefaultCASecret, nil, redact(toMap(want)))
		return it, nil
	}
	sc := spoke.core.CoreV1().Secrets(s.WorkloadNamespace)
	for attempt := 1; ; attempt++ {
		cur, err := sc.Get(ctx, DefaultCASecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if s.hooks.beforeWrite != nil {
				s.hooks.beforeWrite(StepSpokeCA, attempt)
			}
			created, err := sc.Create(ctx, want, metav1.CreateOptions{FieldManager: s.FieldManager, DryRun: dryRun(s.DryRun)})
			if apierrors.IsAlreadyExists(err) && attempt < maxAttempts {
				continue
			}
			if err != nil {
				return it, spoke.apiErr("create", "secrets", s.WorkloadNamespace, DefaultCASecret, err)
			}
			it.Action = ActionCreated
			it.Diff = diffObjects("secret/"+DefaultCASecret, nil, redact(toMap(created)))
			return it, nil
		}
		if err != nil {
			return it, spoke.apiErr("get", "secrets", s.WorkloadNamespace, DefaultCASecret, err)
		}
		if cur.Type == corev1.SecretTypeOpaque && len(cur.Data) == 1 && bytes.Equal(cur.Data[caKey], ca) {
			it.Action = ActionUnchanged
			return it, nil
		}
		if s.hooks.beforeWrite != nil {
			s.hooks.beforeWrite(StepSpokeCA, attempt)
		}
		var after *corev1.Secret
		if cur.Type != corev1.SecretTypeOpaque {
			// The type of a Secret cannot change; replace it, guarded by
			// its UID and resourceVersion so a concurrent change wins.
			after, err = replaceSecret(ctx, s, spoke, cur, want)
		} else {
			upd := cur.DeepCopy()
			upd.Data = map[string][]byte{caKey: ca}
			upd.StringData = nil
			after, err = sc.Update(ctx, upd, metav1.UpdateOptions{FieldManager: s.FieldManager, DryRun: dryRun(s.DryRun)})
			if err != nil {
				err = spoke.apiErr("update", "secrets", s.WorkloadNamespace, DefaultCASecret, err)
			}
		}
		if errors.Is(err, ErrConflict) && attempt < maxAttempts {
			continue
		}
		if err != nil {
			return it, err
		}
		it.Action = ActionUpdated
		it.Diff = diffObjects("secret/"+DefaultCASecret, redact(toMap(cur)), redact(toMap(after)))
		return it, nil
	}
}

func replaceSecret(ctx context.Context, s *settings, spoke *kube, cur, want *corev1.Secret) (*corev1.Secret, error) {
	sc := spoke.core.CoreV1().Secrets(s.WorkloadNamespace)
	if s.DryRun {
		w := want.DeepCopy()
		w.Labels, w.Annotations = cur.Labels, cur.Annotations
		return w, nil
	}
	rv, uid := cur.ResourceVersion, cur.UID
	err := sc.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, spoke.apiErr("delete", "secrets", s.WorkloadNamespace, cur.Name, err)
	}
	w := want.DeepCopy()
	w.Labels, w.Annotations = cur.Labels, cur.Annotations
	created, err := sc.Create(ctx, w, metav1.CreateOptions{FieldManager: s.FieldManager})
	if err != nil {
		return nil, spoke.apiErr("create", "secrets", s.WorkloadNamespace, cur.Name, err)
	}
	return created, nil
}

// toMap converts a typed object for diffing.
func toMap(obj runtime.Object) map[string]any {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return map[string]any{"error": err.Error()}
	}
	return m
}

// redact keeps Secret values out of diffs and logs: each data value is
// replaced by its length. A CA certificate is public, but the same code
// would show any key a Secret held before ferry trimmed it.
func redact(secret map[string]any) map[string]any {
	for _, field := range []string{"data", "stringData"} {
		if d, ok := secret[field].(map[string]any); ok {
			r := make(map[string]any, len(d))
			for k, v := range d {
				r[k] = fmt.Sprintf("<redacted: %d characters of base64>", len(fmt.Sprint(v)))
			}
			secret[field] = r
		}
	}
	return secret
}
