package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stsguard/stsguard/test/harness"
)

// CertSecret is the Secret in which stsguard --manage-certs (the chart's
// default certificates mode) keeps its CA and serving certificate.
const CertSecret = Release + "-serving-cert"

// webhookCounts are the apiserver's webhook counts, those of the processes
// RestartAPIServer stopped included.
func (e *Env) webhookCounts() (harness.WebhookCounts, error) {
	c, err := harness.ReadWebhookCounts(e.APIServerMetrics)
	return c.Add(e.carried), err
}

// APIServerGrace is how long RestartAPIServer lets the apiserver exit
// after SIGTERM before SIGKILL: a kubelet's default
// terminationGracePeriodSeconds, as for a static pod.
const APIServerGrace = 30 * time.Second

// RestartAPIServer restarts the kube-apiserver as its kubelet would
// (harness.Cluster.RestartAPIServer: SIGTERM, then the same command,
// certificates and port), then waits until stsguard serves again
// (WaitServing). The apiserver runs with --shutdown-send-retry-after, so
// that it exits once its requests in flight are answered instead of after
// its 60 s shutdown timeout. A new apiserver process counts webhook calls
// from zero: the stopped one's counts, read just before SIGTERM, are
// carried over (a call that failed open between that read and its exit is
// missing from FailOpen; the StatefulSet it admitted is in Unjudged all
// the same).
func (e *Env) RestartAPIServer(ctx context.Context) (harness.APIServerRestart, error) {
	c, err := harness.ReadWebhookCounts(e.APIServerMetrics)
	if err != nil {
		return harness.APIServerRestart{}, err
	}
	e.carried = e.carried.Add(c)
	r, err := e.Cluster.RestartAPIServer(ctx, APIServerGrace)
	if err != nil {
		return r, err
	}
	e.logf("the apiserver exited %.1f s after SIGTERM (killed: %v) and was ready again %.1f s after it",
		r.Exit.Seconds(), r.Killed, r.Down.Seconds())
	return r, e.WaitServing(ctx)
}

// PauseEtcd stops etcd (SIGSTOP) for d and resumes it, then waits until the
// apiserver is ready again and stsguard serves.
func (e *Env) PauseEtcd(ctx context.Context, d time.Duration) error {
	if err := e.Cluster.PauseEtcd(ctx, d); err != nil {
		return err
	}
	if err := e.Cluster.WaitAPIServerReady(ctx); err != nil {
		return err
	}
	return e.WaitServing(ctx)
}

// RotateCertificates forces a new CA and serving certificate during a
// rolling restart, as an operator of --manage-certs does: it deletes the
// Secret CertSecret, which holds both, and runs `kubectl rollout restart`.
// The first replica to find the Secret gone (a new pod as it starts, or a
// running one at its next check) creates a new CA and serving certificate
// and writes the new CA, alone, into every caBundle; the other replicas
// load the new Secret when they see a caBundle change. RotateCertificates
// waits for the rollout, then until the rotation is complete: the Secret
// holds a CA other than before, every webhook's caBundle is that CA, and
// every ready replica's serving certificate verifies against it.
func (e *Env) RotateCertificates(ctx context.Context) error {
	old, err := e.CS.CoreV1().Secrets(Namespace).Get(ctx, CertSecret, metav1.GetOptions{})
	if err != nil {
		return err
	}
	if _, err := e.Kubectl("delete", "secret", CertSecret, "-n", Namespace); err != nil {
		return err
	}
	deleted := time.Now()
	if err := e.RolloutRestart(ctx); err != nil {
		return fmt.Errorf("rolling restart: %w", err)
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		sec, err := e.CS.CoreV1().Secrets(Namespace).Get(ctx, CertSecret, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			last = "no Secret " + CertSecret
			return false, nil
		}
		if err != nil {
			last = err.Error()
			return false, nil
		}
		bundle := sec.Data["ca.crt"]
		if len(bundle) == 0 || bytes.Equal(bundle, old.Data["ca.crt"]) {
			last = "the Secret holds no new CA"
			return false, nil
		}
		if err := e.bundleEverywhere(ctx, bundle); err != nil {
			last = err.Error()
			return false, nil
		}
		if err := e.everyReplicaVerifies(ctx, bundle); err != nil {
			last = err.Error()
			return false, nil
		}
		e.logf("new CA and serving certificate in every caBundle and on every replica; the Secret was created again about %s after the delete (its creationTimestamp has whole seconds)",
			sec.CreationTimestamp.Sub(deleted.Truncate(time.Second)))
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("the rotation did not complete: %s: %w", last, err)
	}
	return nil
}

// bundleEverywhere returns an error unless every webhook of both
// configurations has caBundle bundle.
func (e *Env) bundleEverywhere(ctx context.Context, bundle []byte) error {
	mw, err := e.CS.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, Release, metav1.GetOptions{})
	if err != nil {
		return err
	}
	vw, err := e.CS.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, Release, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, w := range mw.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			return fmt.Errorf("webhook %s has another caBundle", w.Name)
		}
	}
	for _, w := range vw.Webhooks {
		if !bytes.Equal(w.ClientConfig.CABundle, bundle) {
			return fmt.Errorf("webhook %s has another caBundle", w.Name)
		}
	}
	return nil
}

// everyReplicaVerifies returns an error unless every ready replica's
// serving certificate verifies against bundle for the Service's name, as
// the apiserver verifies it.
func (e *Env) everyReplicaVerifies(ctx context.Context, bundle []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		return errors.New("the bundle holds no certificate")
	}
	replicas, err := e.replicas(ctx)
	if err != nil {
		return err
	}
	for _, r := range replicas {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 2 * time.Second}, Config: &tls.Config{
			RootCAs: pool, ServerName: ServiceHost, MinVersion: tls.VersionTLS12,
		}}
		conn, err := d.DialContext(ctx, "tcp", r.addr)
		if err != nil {
			return fmt.Errorf("replica %s: %w", r.pod, err)
		}
		conn.Close()
	}
	return nil
}
