package huaweiidc

import (
	"testing"
	"time"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/huaweiidc/huaweiidctest"
	"github.com/tokend/tokend/providers/providertest"
)

func TestConformance(t *testing.T) {
	t.Run(KindSCIMToken, func(t *testing.T) {
		providertest.Run(t, func(t *testing.T) providertest.Fixture {
			// The fake runs on the real clock here: the suite takes StartedAt from time.Now.
			srvEnv := newEnv(t, withFake(func(o *huaweiidctest.Options) { o.Now = nil }), withProviderClock(func(time.Time) time.Time { return time.Now() }))
			return providertest.Fixture{
				Provider:      srvEnv.tok,
				Valid:         func(s providers.Secret) bool { return srvEnv.srv.Valid(s.Reveal()) },
				FailNext:      srvEnv.srv.FailNext,
				MalformedNext: srvEnv.srv.MalformedNext,
				Renewable:     false,
			}
		})
	})
}
