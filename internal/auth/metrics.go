package auth

import "github.com/prometheus/client_golang/prometheus"

// authMetrics count what logins cost, for /metrics.
type authMetrics struct {
	checks    prometheus.Counter
	failures  prometheus.Counter
	throttled *prometheus.CounterVec
}

func newAuthMetrics() authMetrics {
	return authMetrics{
		checks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_auth_password_checks_total", Help: "bcrypt password checks run (identical logins in flight share one).",
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ferry_auth_login_failures_total", Help: "Logins refused for a wrong user name, password or robot token.",
		}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ferry_auth_logins_throttled_total", Help: "Logins answered 429 before any check, by reason (address, user, busy).",
		}, []string{"reason"}),
	}
}

// Collectors returns the authorizer's metrics, for the registry that
// serves /metrics to register.
func (a *Authorizer) Collectors() []prometheus.Collector {
	return []prometheus.Collector{a.metrics.checks, a.metrics.failures, a.metrics.throttled}
}
