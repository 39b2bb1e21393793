import Testing
@testable import RMRCore

@Suite struct DurableStateTests {
    func fresh() -> DurablePoolState {
        var s = DurablePoolState(poolName: "p", poolUUID: PoolUUID(high: 1, low: 2), member: 42, chunkBytes: 131072,
                                 mappedSectors: 8192, deviceSectors: 20000)
        s.apply(.replaceMap(member: 42, runs: []))
        return s
    }

    @Test func updatesAreIdempotentSoAReplayedJournalConverges() {
        let updates: [MetadataUpdate] = [
            .setDirty(member: 43, chunks: [3, 1, 2]), .addIntents([9, 4, 7]), .removeIntents([4]),
            .clearDirty(member: 43, chunks: [2]), .setAllDirty(member: 44), .dropMap(member: 44), .addIntents([4, 4, 1]),
        ]
        var once = fresh()
        for u in updates { once.apply(u) }
        var twice = fresh()
        for u in updates { twice.apply(u) }
        for u in updates { twice.apply(u) }
        #expect(once == twice)
        #expect(once.writeIntents == [1, 4, 7, 9], "sorted, no duplicates")
        #expect(once.map(for: 43)?.runs() == [ChunkRun(start: 1, count: 1), ChunkRun(start: 3, count: 1)])
        #expect(once.map(for: 44) == nil)
        #expect(once.mapMembers == [42, 43])
    }

    @Test func replaceMapOverwrites() {
        var s = fresh()
        s.apply(.setAllDirty(member: 42))
        s.apply(.replaceMap(member: 42, runs: [ChunkRun(start: 5, count: 2)]))
        #expect(s.map(for: 42)?.dirtyCount == 2)
    }
}

/// Bad input from a peer (out-of-range chunks, runs past the volume, messages without a session)
/// is answered with an error and changes nothing.
@Suite struct BadPeerInputTests {
    @Test func outOfRangeMapAddAndMarkDirtyAreRefusedWithoutChange() {
        let c = TestCluster.guide(legs: 2)
        c.bringUp(legs: 2)
        let before = c.node("stg0").stateDigest
        let rid = RequestID(1_000_000)
        c.apply(c.index("stg0"), .received(.request(rid, pool: pool, .mapAdd(chunk: 1 << 40, failedMembers: [43], mapVersion: .initial)), from: "10.0.0.1"))
        c.apply(c.index("stg0"), .received(.request(RequestID(1_000_001), pool: pool, .markDirty(chunks: [999_999], except: 42)), from: "10.0.0.1"))
        #expect(c.node("stg0").stateDigest == before)
        #expect(c.rejections.count >= 2)
    }

    @Test func aStrangerCannotDriveAPool() {
        let c = TestCluster.guide(legs: 2)
        c.bringUp(legs: 2)
        c.addHost("intruder", "10.6.6.6")
        let before = c.node("stg0").stateDigest
        for (i, r) in [Request.enablePool(false), .mapDisable, .leave(member: 42, delete: true, fromSyncPool: false), .mapReady].enumerated() {
            c.apply(c.index("stg0"), .received(.request(RequestID(2_000_000 + UInt64(i)), pool: pool, r), from: "10.6.6.6"))
        }
        #expect(c.node("stg0").stateDigest == before)
        #expect(c.serverState("stg0") == .normal)
    }
}
