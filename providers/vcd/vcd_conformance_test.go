package vcd

import (
	"context"
	"testing"

	"github.com/tokend/tokend/providers"
	"github.com/tokend/tokend/providers/providertest"
	"github.com/tokend/tokend/providers/vcd/vcdtest"
)

func TestConformance(t *testing.T) {
	tests := []struct {
		name      string
		kind      string
		opts      vcdtest.Options
		org, user string
		password  string
		bootstrap bool
		renewable bool
	}{
		{name: "access_token", kind: KindAccessToken, renewable: true},
		{name: "access_token from bootstrap", kind: KindAccessToken, bootstrap: true, renewable: true},
		{name: "access_token rotating", kind: KindAccessToken, bootstrap: true, renewable: true, opts: vcdtest.Options{RequireRotation: true}},
		{name: "access_token System org", kind: KindAccessToken, renewable: true, org: "System", user: "administrator", password: "admin-password"},
		{name: "api_token", kind: KindAPIToken},
		{name: "api_token from bootstrap", kind: KindAPIToken, bootstrap: true},
		{name: "proxy_token", kind: KindProxyToken},
		{name: "proxy_token paged without nextPage", kind: KindProxyToken, opts: vcdtest.Options{OmitNextPage: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			providertest.Run(t, func(t *testing.T) providertest.Fixture {
				org, user, pw := "acme", "alice", "alice-password"
				if tt.org != "" {
					org, user, pw = tt.org, tt.user, tt.password
				}
				e := setup(t, tt.opts, user, org, pw)
				p := e.kind(t, tt.kind)
				fx := providertest.Fixture{
					Provider:      p,
					Valid:         e.valid,
					FailNext:      e.srv.FailNext,
					MalformedNext: e.srv.MalformedNext,
					Renewable:     tt.renewable,
				}
				if tt.bootstrap {
					cur, err := p.(providers.Bootstrapper).Bootstrap(context.Background(), providers.NewSecret(e.srv.IssueBootstrap()))
					if err != nil {
						t.Fatalf("Bootstrap() error = %v", err)
					}
					fx.Current = &cur
				}
				return fx
			})
		})
	}
}
