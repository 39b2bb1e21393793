import RMRCore

// `rmr-sim demo` (`make demo`): an embedded scenario run with transcript printing on.

public let demoScenarioText = """
# rmr-sim demo: the guide's two-node bring-up, a storage-node crash during writes and its
# recovery, then a compute-client crash and reassembly.
# The guide's cluster: one compute client, two storage nodes (replication factor 2).
host pserver client ip 192.168.122.10
host stg-rmr0 storage ip 192.168.122.80
host stg-rmr1 storage ip 192.168.122.84
disk stg-rmr0 /dev/sda sectors 409600
disk stg-rmr1 /dev/sda sectors 409600
# Guide: "Configure RMR pool on storage and client", two storage nodes, then map brmr0.
# Expects hosts-2.inc first.
pserver$ modprobe rtrs-client
pserver$ modprobe rmr-client
pserver$ modprobe brmr-client
stg-rmr0$ modprobe rtrs-server
stg-rmr1$ modprobe rtrs-server

pserver$ echo 'poolname=ionos_pool chunk_size=131072' > /sys/class/rmr-client/ctl/join_pool
stg-rmr0$ echo 'poolname=ionos_pool member_id=42' > /sys/class/rmr-server/ctl/join_pool
stg-rmr1$ echo 'poolname=ionos_pool member_id=43' > /sys/class/rmr-server/ctl/join_pool
stg-rmr0$ cat /sys/class/rmr-server/pools/ionos_pool/state
  empty

stg-rmr0$ echo 'device=/dev/sda pool=ionos_pool mapped_size=204800' > /sys/class/brmr-server/ctl/create_store
stg-rmr1$ echo 'device=/dev/sda pool=ionos_pool mapped_size=204800' > /sys/class/brmr-server/ctl/create_store
stg-rmr0$ cat /sys/class/rmr-server/pools/ionos_pool/state
  registered

pserver$ echo 'sessname=psrv0@stg-rmr0 path=ip:192.168.122.80 mode=create' > /sys/class/rmr-client/pools/ionos_pool/add_sess
pserver$ echo 1 > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/enable
pserver$ echo 'sessname=psrv0@stg-rmr1 path=ip:192.168.122.84 mode=create' > /sys/class/rmr-client/pools/ionos_pool/add_sess
pserver$ echo 1 > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/enable

stg-rmr0$ echo 'poolname=ionos_pool chunk_size=131072 sync=y' > /sys/class/rmr-client/ctl/join_pool
stg-rmr0$ echo 'sessname=stg-rmr0@stg-rmr1 path=ip:192.168.122.84' > /sys/class/rmr-client/pools/ionos_pool/add_sess
stg-rmr0$ echo 'ionos_pool' > /sys/class/rmr-server/pools/ionos_pool/add_clt
stg-rmr1$ echo 'poolname=ionos_pool chunk_size=131072 sync=y' > /sys/class/rmr-client/ctl/join_pool
stg-rmr1$ echo 'sessname=stg-rmr1@stg-rmr0 path=ip:192.168.122.80' > /sys/class/rmr-client/pools/ionos_pool/add_sess
stg-rmr1$ echo 'ionos_pool' > /sys/class/rmr-server/pools/ionos_pool/add_clt

# Initial sync: the second leg joined dirty. Sync starts by itself once the node is NORMAL
# with dirty chunks; the guide's manual start is harmless.
stg-rmr1$ echo start > /sys/class/rmr-server/pools/ionos_pool/sync
wait until stg-rmr1: cat /sys/class/rmr-server/pools/ionos_pool/map_summary == member 43: [] 0/800 dirty member 42: [] 0/800 dirty within 300s
wait until maps clean ionos_pool within 60s

pserver$ echo 'pool=ionos_pool size=204800' > /sys/class/brmr-client/ctl/map_device
pserver$ cat /sys/class/brmr-client/ctl/devices/brmr0/state
  ready

note --- running 4 KiB random writes on brmr0 (fio --rw=randwrite --bs=4k --iodepth=16 --size=25M) ---
workload start fio on pserver dev brmr0 rw=randwrite bs=4k iodepth=16 size=25M rate_iops=4000
advance 3s
note --- storage node stg-rmr1 crashes during the writes ---
crash stg-rmr1
advance 2s
pserver$ cat /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/state
  failed
stg-rmr0$ cat /sys/class/rmr-server/pools/ionos_pool/map_summary
  member 42: [] 0/800 dirty
  member 43: [*] */800 dirty
advance 3s
note --- stg-rmr1 is back: recreate its pools, re-add the disk ---
restart stg-rmr1
# Guide: "Recover after storage node crash" for stg-rmr1 (member 43), after `restart stg-rmr1`.
stg-rmr1$ echo 'poolname=ionos_pool member_id=43' > /sys/class/rmr-server/ctl/join_pool
stg-rmr1$ echo 'device=/dev/sda pool=ionos_pool mapped_size=204800 mode=add' > /sys/class/brmr-server/ctl/add_store
stg-rmr1$ echo 'poolname=ionos_pool chunk_size=131072 sync=y' > /sys/class/rmr-client/ctl/join_pool
stg-rmr1$ echo 'sessname=stg-rmr1@stg-rmr0 path=ip:192.168.122.80' > /sys/class/rmr-client/pools/ionos_pool/add_sess
stg-rmr1$ echo 'ionos_pool' > /sys/class/rmr-server/pools/ionos_pool/add_clt
# The client's retained session reconnects by itself (reconnect delay), then pool enable.
wait until pserver: cat /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/state == normal within 60s
wait until stg-rmr1: cat /sys/class/rmr-server/pools/ionos_pool/state == normal within 10s
stg-rmr1$ cat /sys/class/rmr-server/pools/ionos_pool/map_summary
wait until maps clean ionos_pool within 120s
stg-rmr1$ cat /sys/class/rmr-server/pools/ionos_pool/map_summary
  member 43: [] 0/800 dirty
  member 42: [] 0/800 dirty
advance 2s
note --- the compute client crashes during the writes ---
crash pserver
advance 2s
stg-rmr0$ cat /sys/class/rmr-server/pools/ionos_pool/state
  no_io
stg-rmr1$ cat /sys/class/rmr-server/pools/ionos_pool/state
  no_io
advance 3s
restart pserver
# Guide: "Recover after compute client crash", after `restart pserver`.
pserver$ echo 'poolname=ionos_pool chunk_size=131072' > /sys/class/rmr-client/ctl/join_pool
pserver$ echo 'sessname=psrv0@stg-rmr0 path=ip:192.168.122.80 mode=assemble' > /sys/class/rmr-client/pools/ionos_pool/add_sess
pserver$ echo 'sessname=psrv0@stg-rmr1 path=ip:192.168.122.84 mode=assemble' > /sys/class/rmr-client/pools/ionos_pool/add_sess
# After all legs are assembled the client enables the pool by itself.
wait until stg-rmr0: cat /sys/class/rmr-server/pools/ionos_pool/state == normal within 60s
wait until stg-rmr1: cat /sys/class/rmr-server/pools/ionos_pool/state == normal within 10s
wait until pserver: cat /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/state == normal within 10s
wait until pserver: cat /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/state == normal within 10s
pserver$ echo 'pool=ionos_pool size=204800' > /sys/class/brmr-client/ctl/map_device
pserver$ cat /sys/class/brmr-client/ctl/devices/brmr0/state
  ready
wait until maps clean ionos_pool within 120s
assert legs identical ionos_pool
note --- reading back every block written ---
assert no data lost pserver dev brmr0
"""

/// Runs the demo scenario; prints the transcript and a closing line. True if it passed.
public func runDemo(options: RunOptions, out: (String) -> Void) -> Bool {
    let scenario: Scenario
    switch Scenario.parse(text: demoScenarioText, file: "demo.scenario") {
    case .success(let s): scenario = s
    case .failure(let e):
        out("demo scenario does not parse:\n\(e)")
        return false
    }
    let r = ScenarioRunner(scenario: scenario, options: options).run()
    if let f = r.failure { out("FAIL \(f)") }
    out("\(r.passed ? "demo passed" : "demo FAILED"): \(r.writesAcknowledged) blocks written and acknowledged, "
        + "\(r.sectorsVerified / 8) blocks (4 KiB) read back and verified; "
        + "\(formatTime(r.virtualNanos)) virtual, \(r.coreEvents) core events, trace \(r.traceHash)")
    return r.passed
}
