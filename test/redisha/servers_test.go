package redisha

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// haEnabled skips the test unless TOKEND_REDIS_HA=1 and the Redis programs are installed; with the
// variable set, a missing program fails the test.
func haEnabled(t *testing.T, programs ...string) map[string]string {
	t.Helper()
	if os.Getenv("TOKEND_REDIS_HA") != "1" {
		t.Skip("set TOKEND_REDIS_HA=1 to run the Redis failover tests (scripts/checks/70-redis-ha.sh does)")
	}
	paths := map[string]string{}
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			t.Fatalf("%s is not installed (apt-get install redis-server redis-sentinel redis-tools): %v", p, err)
		}
		paths[p] = path
	}
	return paths
}

// freeBlock returns the first port ≥ from such that n consecutive ports, and the same ports + busOffset
// when busOffset > 0 (Redis Cluster's bus), are free on 127.0.0.1.
func freeBlock(t *testing.T, from, n, busOffset int) int {
	t.Helper()
	free := func(p int) bool {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	for base := from; base+n+busOffset < 65535 && base < from+2000; base += 10 {
		ok := true
		for p := base; p < base+n && ok; p++ {
			ok = free(p) && (busOffset == 0 || free(p+busOffset))
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d free ports from %d", n, from)
	return 0
}

// server is one redis-server or redis-sentinel process the test started.
type server struct {
	name string
	port int
	dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// startServer writes conf into dir/name.conf and starts program on it. The process is stopped by PID
// when the test ends, if it still runs.
func startServer(t *testing.T, program, name string, port int, dir, conf string) *server {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, name+".out"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{path}
	if filepath.Base(program) == "redis-server" && strings.Contains(conf, "sentinel monitor") {
		args = append(args, "--sentinel")
	}
	cmd := exec.Command(program, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	s := &server{name: name, port: port, dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); out.Close(); close(s.done) }()
	t.Cleanup(func() { s.kill(t) })
	waitFor(t, 10*time.Second, name+" answers", func() error {
		c := redis.NewClient(&redis.Options{Addr: s.addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
		defer c.Close()
		return c.Ping(context.Background()).Err()
	})
	return s
}

// kill sends SIGKILL to the process by its PID and waits for it to be gone. It is a no-op once stopped.
func (s *server) kill(t *testing.T) {
	select {
	case <-s.done:
		return
	default:
	}
	if err := syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Logf("killing %s (pid %d): %v", s.name, s.cmd.Process.Pid, err)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Errorf("%s (pid %d) still runs 10s after SIGKILL", s.name, s.cmd.Process.Pid)
	}
}

// waitFor polls cond every 50ms until it returns nil, failing the test after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %v", d, what, err)
		}
		<-tick.C
	}
}

// infoField returns one field of INFO section from the server at addr.
func infoField(addr, section, field string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	info, err := c.Info(context.Background(), section).Result()
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no %s in INFO %s", field, section)
}

// clusterState returns cluster_state from CLUSTER INFO of the node at addr.
func clusterState(addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	info, err := c.ClusterInfo(context.Background()).Result()
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cluster_state:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("no cluster_state in CLUSTER INFO")
}

// replicaOnline reports nil when the master at addr has an online replica.
func replicaOnline(addr string) error {
	v, err := infoField(addr, "replication", "slave0")
	if err != nil {
		return err
	}
	if !strings.Contains(v, "state=online") {
		return fmt.Errorf("replica of %s: %s", addr, v)
	}
	return nil
}

const serverConf = `bind 127.0.0.1
protected-mode no
port %d
dir %s
daemonize no
logfile %s/redis.log
appendonly yes
appendfsync everysec
save ""
`
