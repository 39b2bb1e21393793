import Testing
@testable import RMRCore

/// Failure recoveries of the admin guide and the notes' scenarios, asserted through what an
/// operator sees: states, dirty maps, bytes read back, legs byte-identical.
@Suite struct RecoveryTests {
    static let block: UInt64 = 4096

    /// Writes version `v` of blocks `range` and expects every write acknowledged.
    static func writeBlocks(_ c: TestCluster, _ range: Range<UInt64>, version v: UInt64) {
        for b in range {
            let r = c.blockIO("client", .write, offset: b * block, length: block, data: pattern(b, v))
            #expect(r == .ok(data: []), "write of block \(b) v\(v): \(r)")
        }
    }

    static func expectBlocks(_ c: TestCluster, _ range: Range<UInt64>, version v: UInt64) {
        for b in range {
            let r = c.blockIO("client", .read, offset: b * block, length: block)
            #expect(Bool(r == .ok(data: pattern(b, v))), "read of block \(b) expected v\(v)")
        }
    }

    /// Every storage node holds the same bytes over the mapped size.
    static func expectLegsIdentical(_ c: TestCluster, legs: Int, sectors: UInt64 = mapped) {
        let bytes = sectors * 512
        let reference = c.diskBytes("stg0", "/dev/sda", 0, bytes)
        for i in 1..<legs {
            #expect(Bool(c.diskBytes(TestCluster.storageName(i), "/dev/sda", 0, bytes) == reference), "stg\(i) differs from stg0")
        }
    }

    static func allClean(_ c: TestCluster, legs: Int) -> Bool {
        (0..<legs).allSatisfy { i in
            c.node(TestCluster.storageName(i)).serverPool(pool)!.maps.allSatisfy { $0.map.isEmpty }
        }
    }

    static func settled(_ legs: Int) -> (TestCluster) -> Bool {
        { c in
            (0..<legs).allSatisfy { c.serverState(TestCluster.storageName($0)) == .normal
                && c.legState("client", TestCluster.session($0)) == .normal } && allClean(c, legs: legs)
        }
    }

    @Test(arguments: [2, 3, 4])
    func linkFailureDuringWritesRecoversAndResyncs(legs: Int) {
        let c = TestCluster.guide(legs: legs)
        c.bringUp(legs: legs)
        #expect(c.waitUntil(Self.settled(legs)))
        Self.writeBlocks(c, 0..<8, version: 1)
        let last = TestCluster.storageName(legs - 1)
        c.cutLink("client", last)
        #expect(c.legState("client", TestCluster.session(legs - 1)) == .failed)
        #expect(c.serverState(last) == .noIO)
        // Writes continue on the survivors, with the failed member piggybacked.
        Self.writeBlocks(c, 0..<8, version: 2)
        #expect(c.probes.contains(.piggybackedFailedMember))
        for i in 0..<(legs - 1) {
            let v = c.node(TestCluster.storageName(i)).serverPool(pool)!
            #expect(v.maps.first { $0.member == TestCluster.member(legs - 1) }!.map.dirtyCount == 1, "chunk 0 dirty for the failed member")
        }
        c.restoreLink("client", last)
        #expect(c.waitUntil(Self.settled(legs)), "recovered: all normal, maps clean")
        Self.expectBlocks(c, 0..<8, version: 2)
        Self.expectLegsIdentical(c, legs: legs)
        #expect(c.rejections.isEmpty, "\(c.rejections)")
    }

    @Test func inFlightWritesAtLinkLossAreAcknowledgedAfterMapAdd() {
        let c = TestCluster.guide(legs: 2)
        c.bringUp(legs: 2)
        #expect(c.waitUntil(Self.settled(2)))
        // Start writes, then cut stg1's link while they are in flight.
        var tags: [UInt64] = []
        for b in 0..<4 as Range<UInt64> { tags.append(c.startBlockIO("client", .write, offset: b * 40960, length: 4096, data: pattern(b, 5))) }
        c.run(until: c.now + Duration(nanos: 500_000))
        c.cutLink("client", "stg1")
        c.advance(.seconds(1))
        for t in tags { #expect(c.blockResults[t] == .ok(data: []), "write acknowledged from stg0 with the dirty record") }
        let dirtyFor43 = c.node("stg0").serverPool(pool)!.maps.first { $0.member == 43 }!.map
        #expect(dirtyFor43.dirtyCount >= 1)
        c.restoreLink("client", "stg1")
        #expect(c.waitUntil(Self.settled(2)))
        Self.expectLegsIdentical(c, legs: 2)
    }

    @Test(arguments: [2, 3, 4])
    func storageNodeCrashAndRecovery(legs: Int) {
        let c = TestCluster.guide(legs: legs)
        c.bringUp(legs: legs)
        #expect(c.waitUntil(Self.settled(legs)))
        Self.writeBlocks(c, 0..<16, version: 1)
        let victim = TestCluster.storageName(legs - 1)
        c.crash(victim)
        Self.writeBlocks(c, 8..<24, version: 2)
        c.advance(.seconds(5))
        c.restart(victim)
        // The operator's recovery: join_pool, add_store mode=add, sync pool.
        c.ok(victim, .serverJoinPool(pool: pool, member: TestCluster.member(legs - 1)))
        #expect(c.serverState(victim) == .empty)
        c.ok(victim, .addStore(device: "/dev/sda", pool: pool, mappedSectors: mapped, mode: .add))
        c.setUpSyncPool(legs - 1, legs: legs)
        #expect(c.waitUntil(Self.settled(legs)), "the retained session reconnects, map update, resync")
        Self.expectBlocks(c, 0..<8, version: 1)
        Self.expectBlocks(c, 8..<24, version: 2)
        Self.expectLegsIdentical(c, legs: legs)
    }

    @Test(arguments: [2, 3, 4])
    func computeClientCrashAndAssemble(legs: Int) {
        let c = TestCluster.guide(legs: legs)
        c.bringUp(legs: legs)
        #expect(c.waitUntil(Self.settled(legs)))
        Self.writeBlocks(c, 0..<16, version: 1)
        // Crash with writes in flight: some may land on some legs only.
        for b in 0..<8 as Range<UInt64> { _ = c.startBlockIO("client", .write, offset: b * 4096 * 33, length: 4096, data: pattern(b * 33, 9)) }
        c.run(until: c.now + Duration(nanos: 1_500_000))
        c.crash("client")
        c.advance(.seconds(1))
        for i in 0..<legs { #expect(c.serverState(TestCluster.storageName(i)) == .noIO) }
        c.restart("client")
        c.ok("client", .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false))
        for i in 0..<legs {
            c.ok("client", .addSession(pool: pool, session: TestCluster.session(i), address: "10.0.1.\(i)", mode: .assemble))
        }
        #expect(c.waitUntil(.seconds(30)) { c in (0..<legs).allSatisfy { c.legState("client", TestCluster.session($0)) == .normal } })
        if legs >= 3 { #expect(c.probes.contains(.lastIOReconciliationThreeOrMoreLegs)) }
        c.ok("client", .mapDevice(pool: pool, sizeSectors: mapped))
        #expect(c.waitUntil(Self.settled(legs)))
        Self.expectLegsIdentical(c, legs: legs)
        Self.expectBlocks(c, 1..<16, version: 1)
    }
}
