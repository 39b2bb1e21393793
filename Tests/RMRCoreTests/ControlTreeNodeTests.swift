import Testing
import RMRControl
@testable import RMRCore

/// The admin interface end to end: the guide's strings written to control-tree paths, parsed
/// by RMRControl, executed by the core, and read back as the guide prints them. Refused
/// commands must leave the node's state digest unchanged.
@Suite struct ControlTreeNodeTests {
    func write(_ c: TestCluster, _ host: String, _ path: String, _ value: String) -> AdminResult {
        switch ControlTree.parseWrite(path: path, value: value) {
        case .failure(let e): return .failed(e)
        case .success(let command): return c.admin(host, command)
        }
    }

    func cat(_ c: TestCluster, _ host: String, _ path: String) -> String {
        switch ControlTree.read(path: path, node: c.node(host)) {
        case .success(let s): return s
        case .failure(let e): return "error: \(e)"
        }
    }

    /// The guide's two-node bring-up, verbatim.
    func guideCluster() -> TestCluster {
        let c = TestCluster()
        c.addHost("client", "192.168.122.1")
        c.addHost("stg-rmr0", "192.168.122.80", disks: ["/dev/sda": 409600])
        c.addHost("stg-rmr1", "192.168.122.84", disks: ["/dev/sda": 409600])
        let steps: [(String, String, String)] = [
            ("client", "/sys/class/rmr-client/ctl/join_pool", "poolname=ionos_pool chunk_size=131072"),
            ("stg-rmr0", "/sys/class/rmr-server/ctl/join_pool", "poolname=ionos_pool member_id=42"),
            ("stg-rmr1", "/sys/class/rmr-server/ctl/join_pool", "poolname=ionos_pool member_id=43"),
            ("stg-rmr0", "/sys/class/brmr-server/ctl/create_store", "device=/dev/sda pool=ionos_pool mapped_size=204800"),
            ("stg-rmr1", "/sys/class/brmr-server/ctl/create_store", "device=/dev/sda pool=ionos_pool mapped_size=204800"),
            ("client", "/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=psrv0@stg-rmr0 path=ip:192.168.122.80 mode=create"),
            ("client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/enable", "1"),
            ("client", "/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=psrv0@stg-rmr1 path=ip:192.168.122.84 mode=create"),
            ("client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/enable", "1"),
            ("stg-rmr0", "/sys/class/rmr-client/ctl/join_pool", "poolname=ionos_pool chunk_size=131072 sync=y"),
            ("stg-rmr0", "/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=stg-rmr0@stg-rmr1 path=ip:192.168.122.84"),
            ("stg-rmr0", "/sys/class/rmr-server/pools/ionos_pool/add_clt", "ionos_pool"),
            ("stg-rmr1", "/sys/class/rmr-client/ctl/join_pool", "poolname=ionos_pool chunk_size=131072 sync=y"),
            ("stg-rmr1", "/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=stg-rmr1@stg-rmr0 path=ip:192.168.122.80"),
            ("stg-rmr1", "/sys/class/rmr-server/pools/ionos_pool/add_clt", "ionos_pool"),
            ("client", "/sys/class/brmr-client/ctl/map_device", "pool=ionos_pool size=204800"),
        ]
        for (host, path, value) in steps {
            let r = write(c, host, path, value)
            #expect(r == .ok, "\(host)$ echo '\(value)' > \(path): \(r)")
        }
        return c
    }

    @Test func guideOutputsReadThroughTheControlTree() {
        let c = guideCluster()
        #expect(cat(c, "stg-rmr0", "/sys/class/rmr-server/pools/ionos_pool/state") == "normal")
        #expect(cat(c, "stg-rmr1", "/sys/class/rmr-server/pools/ionos_pool/member_id") == "43")
        #expect(cat(c, "client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/state") == "normal")
        #expect(cat(c, "client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/member_id") == "43")
        #expect(cat(c, "stg-rmr0", "/sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/state") == "normal")
        #expect(cat(c, "client", "/sys/class/brmr-client/ctl/devices/brmr0/state") == "ready")
        #expect(cat(c, "client", "/sys/class/brmr-client/ctl/devices/brmr0/block/size") == "204800")
        #expect(cat(c, "stg-rmr0", "/sys/class/brmr-server/stores/ionos_pool/state") == "open\nmapped")
        #expect(cat(c, "stg-rmr0", "/sys/class/brmr-server/stores/ionos_pool/mapped_size") == "204800")
        #expect(cat(c, "stg-rmr0", "/sys/class/brmr-server/stores/ionos_pool/bdev_name") == "sda")
        #expect(cat(c, "stg-rmr0", "/sys/class/brmr-server/stores/ionos_pool/dev_size") == "409600")
        // Right after bring-up the second leg is fully dirty and syncing by itself.
        let summary = cat(c, "stg-rmr1", "/sys/class/rmr-server/pools/ionos_pool/map_summary")
        #expect(summary.hasPrefix("member 43: ["), "\(summary)")
        let synced = c.waitUntil(.seconds(300)) { c in
            ControlTree.read(path: "/sys/class/rmr-server/pools/ionos_pool/map_summary", node: c.node("stg-rmr1"))
                == .success("member 43: [] 0/800 dirty\nmember 42: [] 0/800 dirty")
        }
        #expect(synced, "map_summary drains to the guide's clean form")
        #expect(cat(c, "stg-rmr1", "/sys/class/rmr-server/pools/ionos_pool/sync") == "stopped")
    }

    @Test func mapSummaryListsChunksWrittenWhileALegWasAway() {
        let c = guideCluster()
        _ = c.waitUntil(.seconds(300)) { $0.ownDirty("stg-rmr1") == 0 }
        c.cutLink("client", "stg-rmr1")
        for chunk: UInt64 in [12, 28, 80] {
            #expect(c.blockIO("client", .write, offset: chunk * 131072, length: 4096, data: pattern(chunk, 1)) == .ok(data: []))
        }
        #expect(cat(c, "stg-rmr0", "/sys/class/rmr-server/pools/ionos_pool/map_summary")
                == "member 42: [] 0/800 dirty\nmember 43: [12 28 80] 3/800 dirty")
        #expect(cat(c, "client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/state") == "failed")
        #expect(cat(c, "stg-rmr1", "/sys/class/rmr-server/pools/ionos_pool/state") == "no_io")
        c.restoreLink("client", "stg-rmr1")
        let rejoined = c.waitUntil(.seconds(60)) { $0.legState("client", "psrv0@stg-rmr1") == .normal }
        #expect(rejoined)
        let back = c.waitUntil(.seconds(60)) { c in
            ControlTree.read(path: "/sys/class/rmr-server/pools/ionos_pool/map_summary", node: c.node("stg-rmr1"))
                == .success("member 43: [] 0/800 dirty\nmember 42: [] 0/800 dirty")
        }
        #expect(back)
        #expect(cat(c, "client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/state") == "normal")
    }

    /// Commands the current state forbids: an errno, a message naming the problem, no change.
    @Test(arguments: [
        ("client", "/sys/class/rmr-client/ctl/join_pool", "poolname=ionos_pool chunk_size=131072", Errno.EEXIST, "already exists"),
        ("stg-rmr0", "/sys/class/rmr-server/ctl/join_pool", "poolname=ionos_pool member_id=42", .EEXIST, "already exists"),
        ("stg-rmr0", "/sys/class/brmr-server/ctl/create_store", "device=/dev/sda pool=ionos_pool mapped_size=204800", .EBUSY, "already has a store"),
        ("stg-rmr0", "/sys/class/brmr-server/ctl/add_store", "device=/dev/sdz pool=ionos_pool mapped_size=204800 mode=add", .EBUSY, "remove_store"),
        ("stg-rmr0", "/sys/class/rmr-server/pools/ionos_pool/leave_pool", "1", .EBUSY, "store"),
        ("client", "/sys/class/rmr-client/pools/ionos_pool/leave_pool", "1", .EBUSY, "sessions"),
        ("client", "/sys/class/rmr-client/pools/nosuch/add_sess", "sessname=x path=ip:10.1.1.1 mode=create", .ENOENT, "nosuch"),
        ("client", "/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=psrv0@stg-rmr0 path=ip:10.1.1.1 mode=create", .EEXIST, "psrv0@stg-rmr0"),
        ("client", "/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=other path=ip:192.168.122.80 mode=create", .EEXIST, "one session per storage node"),
        ("client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/reconnect", "path=ip:192.168.122.80", .EALREADY, "normal"),
        ("client", "/sys/class/brmr-client/ctl/map_device", "pool=ionos_pool size=204800", .EBUSY, "brmr0"),
        ("client", "/sys/class/brmr-client/ctl/devices/brmr7/unmap_device", "1", .ENOENT, "brmr7"),
        ("stg-rmr0", "/sys/class/brmr-server/stores/ionos_pool/delete_store", "1", .EBUSY, "del_sess mode=delete"),
        ("stg-rmr0", "/sys/class/rmr-server/pools/ionos_pool/add_clt", "nosuch", .ENOENT, "nosuch"),
        ("client", "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/enable", "0", nil, ""),
    ] as [(String, String, String, Errno?, String)])
    func forbiddenCommandsChangeNothing(_ host: String, _ path: String, _ value: String, _ code: Errno?, _ mention: String) {
        let c = guideCluster()
        guard let code else { return }  // The last row is a legal command (kept as a control).
        let before = c.node(host).stateDigest
        let r = write(c, host, path, value)
        guard case .failed(let e) = r else { Issue.record("accepted: \(host)$ echo '\(value)' > \(path)"); return }
        #expect(e.code == code, "\(e)")
        #expect(e.message.contains(mention), "\(e.message)")
        #expect(c.node(host).stateDigest == before, "state changed by a refused command")
    }

    @Test func malformedWritesNameTheProblemAndChangeNothing() {
        let c = guideCluster()
        let before = c.node("client").stateDigest
        let cases: [(String, String, String)] = [
            ("/sys/class/rmr-client/ctl/join_pool", "poolname=p2 chunk_size=abc", "chunk_size"),
            ("/sys/class/rmr-client/ctl/join_pool", "poolname=p2 chunk_size=1000", "chunk_size"),
            ("/sys/class/rmr-client/ctl/join_pool", "chunk_size=131072", "poolname"),
            ("/sys/class/rmr-client/ctl/join_pool", "poolname=p2 colour=red", "colour"),
            ("/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=s path=ip:999.1.1.1 mode=create", "999.1.1.1"),
            ("/sys/class/rmr-client/pools/ionos_pool/add_sess", "sessname=s path=ip:10.0.0.9 mode=sideways", "sideways"),
            ("/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/enable", "yes", "yes"),
            ("/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/state", "normal", "read-only"),
            ("/sys/class/rmr-client/no/such/path", "1", "no/such/path"),
        ]
        for (path, value, mention) in cases {
            let r = write(c, "client", path, value)
            guard case .failed(let e) = r else { Issue.record("accepted '\(value)' > \(path)"); continue }
            #expect(e.message.contains(mention), "'\(value)' > \(path): \(e.message)")
        }
        #expect(c.node("client").stateDigest == before)
    }
}

