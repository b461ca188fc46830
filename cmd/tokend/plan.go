package main

import (
	"time"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/scheduler"
	"github.com/tokend/tokend/store"
)

// renewableKinds says which kinds renew in place, so plan can answer without building providers (which
// would need every credential file).
func renewable(t config.Token) bool {
	switch t.Kind {
	case "access_token":
		return t.TokenType == "" || t.TokenType == "ALL" || t.TokenType == "CUSTOM" || t.TokenType == "DEFAULT"
	case "renewable":
		return true
	}
	return false
}

func planOf(now time.Time, cfg *config.Config, t config.Token, st *store.State) scheduler.Plan {
	return scheduler.Next(now, st, cfg.Resolve(t), scheduler.Caps{CanRenew: renewable(t)}, "plan")
}
