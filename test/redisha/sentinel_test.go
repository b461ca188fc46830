package redisha

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/daemon"
)

// TestSentinelFailover runs tokend's rotations on a master, a replica and three Sentinels, kills (SIGKILL)
// the master while tokens rotate, and checks that the Sentinels promote the replica, tokend follows it, and
// nothing is lost: every token current, every sink valid, no refresh credential replayed, no vendor-side
// token leaked.
func TestSentinelFailover(t *testing.T) {
	bins := haEnabled(t, "redis-server", "redis-sentinel")
	const perKind = 60
	base := freeBlock(t, 17100, 5, 0)
	dir := t.TempDir()
	mport, rport := base, base+1
	mdir, rdir := filepath.Join(dir, "master"), filepath.Join(dir, "replica")
	master := startServer(t, bins["redis-server"], "master", mport, mdir, fmt.Sprintf(serverConf, mport, mdir, mdir))
	replica := startServer(t, bins["redis-server"], "replica", rport, rdir,
		fmt.Sprintf(serverConf, rport, rdir, rdir)+fmt.Sprintf("replicaof 127.0.0.1 %d\nrepl-diskless-sync-delay 0\n", mport))
	waitFor(t, 20*time.Second, "the replica online", func() error { return replicaOnline(master.addr()) })

	var sentinels []string
	for i := range 3 {
		port := base + 2 + i
		d := filepath.Join(dir, "sentinel-"+strconv.Itoa(port))
		conf := fmt.Sprintf("bind 127.0.0.1\nprotected-mode no\nport %d\ndir %s\ndaemonize no\nlogfile %s/sentinel.log\n"+
			"sentinel monitor tokend 127.0.0.1 %d 2\nsentinel down-after-milliseconds tokend 1000\n"+
			"sentinel failover-timeout tokend 10000\nsentinel parallel-syncs tokend 1\n", port, d, d, mport)
		s := startServer(t, bins["redis-sentinel"], "sentinel-"+strconv.Itoa(port), port, d, conf)
		sentinels = append(sentinels, s.addr())
	}
	ctx := context.Background()
	waitFor(t, 20*time.Second, "every Sentinel knows the replica and the other Sentinels", func() error {
		for _, a := range sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: a})
			m, err := c.Master(ctx, "tokend").Result()
			c.Close()
			if err != nil {
				return err
			}
			if m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" {
				return fmt.Errorf("sentinel %s: %s replicas, %s other sentinels", a, m["num-slaves"], m["num-other-sentinels"])
			}
		}
		return nil
	})

	rdb, err := daemon.NewRedis(config.Redis{Sentinel: &config.Sentinel{Master: "tokend", Addrs: sentinels}, KeyPrefix: "tokend"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })

	l := startLoad(t, rdb, perKind)
	// Every token is created, then rotated twice more before the kill (so rotations run at their steady
	// rate), and the writes that must survive a failover reached a replica.
	for range 3 {
		l.waitRotated(20*time.Second, time.Now(), l.names)
	}
	if ws := l.st.WaitStats(); ws.Acked == 0 {
		t.Fatalf("no write waited for the replica before the failover: %+v", ws)
	}

	killed := time.Now()
	master.kill(t)
	writable, err := l.probeWritable("tokend:probe", 30*time.Second)
	if err != nil {
		for _, a := range sentinels {
			b, _ := os.ReadFile(filepath.Join(dir, "sentinel-"+a[len("127.0.0.1:"):], "sentinel.log"))
			t.Logf("%s log:\n%s", a, tail(string(b), 15))
		}
		t.Fatal(err)
	}
	if role, err := infoField(replica.addr(), "replication", "role"); err != nil || role != "master" {
		t.Fatalf("the replica's role after the failover = %q (%v), want master", role, err)
	}
	l.waitRotated(30*time.Second, killed, l.names)
	l.report("sentinel", killed, writable, l.names)

	l.settle(20 * time.Second)
	if lost := l.verify(); lost != 0 {
		t.Errorf("tokens lost: %d", lost)
	}
	if t.Failed() {
		t.Logf("engine log (tail):\n%s", tail(l.logs.String(), 40))
	}
}
