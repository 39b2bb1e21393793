// Cluster fixtures: the admin guide's bring-up, as typed commands.
@testable import RMRCore

let pool = "ionos_pool"
let mapped: UInt64 = 8192  // sectors: 4 MiB, 32 chunks of 128 KiB

extension TestCluster {
    /// Hosts: compute client `client` (10.0.0.1) and storage nodes stg0 (member 42), stg1 (43), ...
    static func guide(legs: Int = 2, queueDepth: Int = 16, mappedSectors: UInt64 = mapped, syncQueueDepth: Int = 32) -> TestCluster {
        let c = TestCluster()
        c.syncQueueDepth = syncQueueDepth
        c.addHost("client", "10.0.0.1", queueDepth: queueDepth)
        for i in 0..<legs { c.addHost("stg\(i)", "10.0.1.\(i)", disks: ["/dev/sda": mappedSectors * 2 + 8192], queueDepth: queueDepth) }
        return c
    }

    static func storageName(_ i: Int) -> String { "stg\(i)" }
    static func member(_ i: Int) -> MemberID { MemberID(42 + i) }
    static func session(_ i: Int) -> String { "psrv0@stg-rmr\(i)" }

    /// join_pool + create_store on every storage node, the client pool, create-mode sessions
    /// enabled in order, sync pools on every storage node, and map_device.
    func bringUp(legs: Int, mappedSectors: UInt64 = mapped, mapDevice: Bool = true) {
        for i in 0..<legs {
            ok(Self.storageName(i), .serverJoinPool(pool: pool, member: Self.member(i)))
            ok(Self.storageName(i), .createStore(device: "/dev/sda", pool: pool, mappedSectors: mappedSectors))
        }
        ok("client", .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false))
        for i in 0..<legs {
            ok("client", .addSession(pool: pool, session: Self.session(i), address: "10.0.1.\(i)", mode: .create))
            ok("client", .sessionEnable(pool: pool, session: Self.session(i), enable: true))
        }
        for i in 0..<legs { setUpSyncPool(i, legs: legs) }
        if mapDevice { ok("client", .mapDevice(pool: pool, sizeSectors: mappedSectors)) }
    }

    func setUpSyncPool(_ i: Int, legs: Int) {
        let me = Self.storageName(i)
        ok(me, .clientJoinPool(pool: pool, chunkBytes: 131072, sync: true))
        for j in 0..<legs where j != i {
            ok(me, .addSession(pool: pool, session: "stg-rmr\(i)@stg-rmr\(j)", address: "10.0.1.\(j)", mode: nil))
        }
        ok(me, .attachSyncPool(pool: pool, syncPool: pool))
    }

    func waitUntil(_ condition: (TestCluster) -> Bool) -> Bool { waitUntil(.seconds(120), condition) }

    /// Waits (in virtual time) until `condition` holds, up to `limit`.
    func waitUntil(_ limit: Duration, _ condition: (TestCluster) -> Bool) -> Bool {
        let end = now + limit
        while now < end {
            if condition(self) { return true }
            run(until: min(end, now + .milliseconds(100)))
        }
        return condition(self)
    }
}

/// Deterministic data for (block, version): every byte depends on both.
func pattern(_ block: UInt64, _ version: UInt64, length: Int = 4096) -> [UInt8] {
    var x = SplitMix64(seed: block &* 0x9E37_79B9 &+ version &* 31 &+ 1)
    var out = [UInt8](repeating: 0, count: length)
    var i = 0
    while i < length {
        let v = x.next()
        for k in 0..<8 where i + k < length { out[i + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        i += 8
    }
    return out
}
