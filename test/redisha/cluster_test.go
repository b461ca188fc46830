package redisha

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokend/tokend/config"
	"github.com/tokend/tokend/daemon"
)

// TestClusterFailover runs tokend's rotations on a 3-master, 3-replica Redis Cluster, kills (SIGKILL) the
// master that holds the due index while tokens rotate, and checks that the cluster promotes its replica,
// tokend carries on, and nothing is lost: every token current, every sink valid, no refresh credential
// replayed, no vendor-side token leaked. Tokens are spread over all three masters.
func TestClusterFailover(t *testing.T) {
	bins := haEnabled(t, "redis-server", "redis-cli")
	const perKind = 60
	base := freeBlock(t, 17000, 6, 10000)
	dir := t.TempDir()
	var nodes []*server
	var addrs []string
	for i := range 6 {
		port := base + i
		d := filepath.Join(dir, strconv.Itoa(port))
		conf := fmt.Sprintf(serverConf, port, d, d) + "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-node-timeout 1000\n"
		nodes = append(nodes, startServer(t, bins["redis-server"], "node-"+strconv.Itoa(port), port, d, conf))
		addrs = append(addrs, nodes[i].addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(bins["redis-cli"], args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	byAddr := map[string]*server{}
	for _, n := range nodes {
		byAddr[n.addr()] = n
	}
	waitFor(t, 20*time.Second, "cluster state ok with 3 masters, each with an online replica", func() error {
		masters := 0
		for _, n := range nodes {
			if v, err := clusterState(n.addr()); err != nil || v != "ok" {
				return fmt.Errorf("%s: cluster_state %q (%v)", n.addr(), v, err)
			}
			if role, _ := infoField(n.addr(), "replication", "role"); role == "master" {
				masters++
				if err := replicaOnline(n.addr()); err != nil {
					return err
				}
			}
		}
		if masters != 3 {
			return fmt.Errorf("%d masters", masters)
		}
		return nil
	})

	rdb, err := daemon.NewRedis(config.Redis{Cluster: &config.Cluster{Addrs: addrs}, KeyPrefix: "tokend"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	cc := rdb.(*redis.ClusterClient)
	ctx := context.Background()
	waitFor(t, 10*time.Second, "the cluster client sees every slot", func() error {
		cc.ReloadState(ctx)
		_, err := cc.MasterForKey(ctx, "tokend:due")
		return err
	})

	l := startLoad(t, rdb, perKind)
	// The tokens are spread over every master; the due index is one key on one of them.
	perMaster := map[string][]string{}
	for _, n := range l.names {
		m, err := cc.MasterForKey(ctx, "tokend:{"+n+"}:state")
		if err != nil {
			t.Fatal(err)
		}
		perMaster[m.Options().Addr] = append(perMaster[m.Options().Addr], n)
	}
	if len(perMaster) != 3 {
		t.Fatalf("tokens on %d masters, want 3", len(perMaster))
	}
	var spread []string
	for a, ns := range perMaster {
		spread = append(spread, fmt.Sprintf("%s:%d", a, len(ns)))
		if len(ns) < len(l.names)/6 {
			t.Fatalf("only %d of %d tokens on master %s", len(ns), len(l.names), a)
		}
	}
	sort.Strings(spread)
	dueMaster, err := cc.MasterForKey(ctx, "tokend:due")
	if err != nil {
		t.Fatal(err)
	}
	due := byAddr[dueMaster.Options().Addr]
	var other *server
	for a := range perMaster {
		if a != due.addr() && (other == nil || a < other.addr()) {
			other = byAddr[a]
		}
	}
	t.Logf("tokens per master: %s; the due index is on %s", strings.Join(spread, " "), due.addr())

	// Every token is created, then rotated twice more before the kill (so rotations run at their steady
	// rate), and the writes that must survive a failover reached a replica.
	for range 3 {
		l.waitRotated(20*time.Second, time.Now(), l.names)
	}
	if ws := l.st.WaitStats(); ws.Acked == 0 {
		t.Fatalf("no write waited for a replica before the failover: %+v", ws)
	}
	// First a master that holds tokens but not the due index, then the one that holds the due index.
	for i, victim := range []*server{other, due} {
		affected := perMaster[victim.addr()]
		killed := time.Now()
		victim.kill(t)
		writable, err := l.probeWritable("tokend:{"+affected[0]+"}:probe", 20*time.Second)
		if err != nil {
			for _, n := range nodes {
				b, _ := os.ReadFile(filepath.Join(n.dir, "redis.log"))
				t.Logf("%s log:\n%s", n.addr(), tail(string(b), 15))
			}
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "a replica of the killed master promoted", func() error {
			m, err := cc.MasterForKey(ctx, "tokend:{"+affected[0]+"}:state")
			if err != nil {
				return err
			}
			if m.Options().Addr == victim.addr() {
				return fmt.Errorf("the slot still maps to the killed master")
			}
			return nil
		})
		l.waitRotated(30*time.Second, killed, l.names)
		what := "master without the due index"
		if victim == due {
			what = "master with the due index"
		}
		l.report(fmt.Sprintf("cluster failover %d (%s, %d tokens on it)", i+1, what, len(affected)), killed, writable, affected)
	}

	l.settle(20 * time.Second)
	if lost := l.verify(); lost != 0 {
		t.Errorf("tokens lost: %d", lost)
	}
	if t.Failed() {
		t.Logf("engine log (tail):\n%s", tail(l.logs.String(), 40))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
