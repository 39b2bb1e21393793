import Testing
@testable import RMRCore

@Suite struct BringUpTests {
    @Test func guideBringUpReachesNormalAndSyncsSecondLeg() {
        let c = TestCluster.guide()
        c.bringUp(legs: 2)
        #expect(c.serverState("stg0") == .normal)
        #expect(c.serverState("stg1") == .normal)
        #expect(c.legState("client", TestCluster.session(0)) == .normal)
        #expect(c.legState("client", TestCluster.session(1)) == .normal)
        #expect(c.node("client").device("brmr0")?.state == .ready)
        // The second leg joined fully dirty and syncs by itself (auto-start).
        let synced = c.waitUntil { $0.ownDirty("stg1") == 0 }
        #expect(synced)
        #expect(c.ownDirty("stg0") == 0)
        #expect(c.node("stg1").serverPool(pool)?.syncThread == .stopped)
        #expect(c.probes.contains(.backgroundSyncCompleted))
        #expect(c.rejections.isEmpty, "\(c.rejections)")
    }

    @Test func writeThenReadBackFromEveryLeg() {
        let c = TestCluster.guide()
        c.bringUp(legs: 2)
        _ = c.waitUntil { $0.ownDirty("stg1") == 0 }
        let data = pattern(7, 1)
        #expect(c.blockIO("client", .write, offset: 7 * 4096, length: 4096, data: data) == .ok(data: []))
        #expect(Bool(c.blockIO("client", .read, offset: 7 * 4096, length: 4096) == .ok(data: data)))
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", 7 * 4096, 4096) == data))
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", 7 * 4096, 4096) == data))
    }
}
