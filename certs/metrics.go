package certs

import (
	"crypto/x509"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stsguard/stsguard/internal/promutil"
)

// Metrics are the certificate metrics stsguard serves on /metrics:
//
//   - stsguard_certificate_expiry_timestamp_seconds{certificate}: NotAfter,
//     in seconds since the Unix epoch, of the serving certificate in use
//     (certificate="serving") and, with --manage-certs, of the CA that
//     signs it (certificate="ca").
//   - stsguard_certificate_errors_total: failed certificate reconciles of
//     --manage-certs (each is retried at the next interval).
//
// A nil *Metrics records nothing.
type Metrics struct {
	expiry *prometheus.GaugeVec
	errors prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg, reusing them
// when they are registered already. It returns an error when another
// collector holds one of the names.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "stsguard_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of the certificate stsguard serves with (certificate=serving) and of the CA that signed it when stsguard manages it (certificate=ca), in seconds since the Unix epoch.",
		}, []string{"certificate"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "stsguard_certificate_errors_total",
			Help: "Failed reconciles of the self-managed CA and serving certificate (--manage-certs); each is retried.",
		}),
	}
	var err error
	if m.expiry, err = promutil.Register(reg, m.expiry); err != nil {
		return nil, err
	}
	if m.errors, err = promutil.Register(reg, m.errors); err != nil {
		return nil, err
	}
	return m, nil
}

// Loaded records the NotAfter of the serving certificate and, when not nil,
// of its CA.
func (m *Metrics) Loaded(serving, ca *x509.Certificate) {
	if m == nil {
		return
	}
	if serving != nil {
		m.expiry.WithLabelValues("serving").Set(float64(serving.NotAfter.Unix()))
	}
	if ca != nil {
		m.expiry.WithLabelValues("ca").Set(float64(ca.NotAfter.Unix()))
	}
}

// Failed counts one failed reconcile.
func (m *Metrics) Failed() {
	if m != nil {
		m.errors.Inc()
	}
}
