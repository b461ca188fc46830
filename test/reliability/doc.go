// Package reliability holds the reliability suite of DESIGN.md section 10: tests that run the real tokend
// binary (built once with the tokend_testprovider and tokend_failpoints tags) against the four vendor fakes
// (vcdtest, astratest, commvaulttest, huaweiidctest) and a redis-server the test starts itself on a loopback
// port with AOF, and stops by PID.
//
// A checker samples every sink of every instance every 250 ms and asks the fake whether the value is valid
// at that moment; it also compares the tokens that exist at the vendors with the ones tokend holds in Redis
// (current, pending, previous) and counts leaks (a vendor-side token nobody holds past revoke_after plus a
// grace), replays and Commvault chain deletions (the fakes' counters), and double rotations (a generation
// promoted before its predecessor was due).
//
// The tests run when TOKEND_RELIABILITY=1 (scripts/checks/80-reliability.sh sets it), in short mode by
// default and in long mode with TOKEND_RELIABILITY_LONG=1. docs/reliability.md has the figures.
package reliability
