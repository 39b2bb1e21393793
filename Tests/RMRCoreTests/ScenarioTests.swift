import Testing
@testable import RMRCore

/// The notes' scenarios S3, S6, S7, S10–S17 and the acknowledgement rule, driven through the
/// core with an in-memory cluster.
@Suite struct ScenarioTests {
    let block: UInt64 = 4096
    let chunkBytes: UInt64 = 131072

    func ready(_ legs: Int) -> TestCluster {
        let c = TestCluster.guide(legs: legs)
        c.bringUp(legs: legs)
        let ok = c.waitUntil(RecoveryTests.settled(legs))
        #expect(ok)
        return c
    }

    func reassemble(_ c: TestCluster, legs: Int) {
        c.restart("client")
        c.ok("client", .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false))
        for i in 0..<legs {
            c.ok("client", .addSession(pool: pool, session: TestCluster.session(i), address: "10.0.1.\(i)", mode: .assemble))
        }
    }

    /// Starts a write while messages in `direction` ("from>to") are dropped, for the 10 ms the
    /// write takes to be sent and answered; the write then waits 30 s for the lost message.
    func startWrite(_ c: TestCluster, offset: UInt64, data: [UInt8], dropping direction: String) -> UInt64 {
        c.dropping = [direction]
        let tag = c.startBlockIO("client", .write, offset: offset, length: block, data: data)
        c.advance(.milliseconds(10))
        c.dropping = []
        return tag
    }

    func dirty(_ c: TestCluster, _ host: String, for member: MemberID) -> [ChunkIndex] {
        c.node(host).serverPool(pool)!.maps.first { $0.member == member }?.map.firstDirty(limit: 100) ?? []
    }

    /// S6: 'a' reaches A and B, 'b' reaches A only, then the client crashes. After
    /// reassembly both nodes hold the same value for chunk 9 and the divergence is resynced.
    @Test func s6ChunkNineLastIOExample() {
        let c = ready(2)
        let offset = 9 * chunkBytes
        #expect(c.blockIO("client", .write, offset: offset, length: block, data: pattern(9, 1)) == .ok(data: []))
        c.dropping.insert("10.0.0.1>10.0.1.1")  // 'b' never reaches B
        _ = c.startBlockIO("client", .write, offset: offset, length: block, data: pattern(9, 2))
        c.advance(.milliseconds(10))
        c.crash("client")
        c.dropping = []
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", offset, block) == pattern(9, 2)))
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", offset, block) == pattern(9, 1)))
        reassemble(c, legs: 2)
        #expect(c.probes.contains(.lastIOReconciliation))
        // A processed first: chunk 9 becomes dirty for B, B resyncs from A: both 'b'.
        #expect(dirty(c, "stg0", for: 43).contains(9) || c.ownDirty("stg1") == 0)
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", offset, block) == c.diskBytes("stg1", "/dev/sda", offset, block)))
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", offset, block) == pattern(9, 2)))
    }

    /// S7: B holds "chunk 2 dirty for A" with a newer map_ver; A's last-IO for chunk 2 must not
    /// mark it dirty for B. Only A resyncs chunk 2.
    @Test func s7MapVersionPicksTheNewerMap() {
        let c = ready(2)
        let offset = 2 * chunkBytes
        #expect(c.blockIO("client", .write, offset: offset, length: block, data: pattern(2, 1)) == .ok(data: []))
        c.cutLink("client", "stg0")  // A fails: map_ver++
        #expect(c.blockIO("client", .write, offset: offset, length: block, data: pattern(2, 2)) == .ok(data: []))
        #expect(dirty(c, "stg1", for: 42) == [2])
        let versionA = c.node("stg0").serverPool(pool)!.mapVersion
        let versionB = c.node("stg1").serverPool(pool)!.mapVersion
        #expect(versionA < versionB)
        c.crash("client")
        c.restoreLink("client", "stg0")
        reassemble(c, legs: 2)
        let normal = c.waitUntil(.seconds(30)) { $0.legState("client", TestCluster.session(0)) == .normal && $0.legState("client", TestCluster.session(1)) == .normal }
        #expect(normal)
        // Chunk 2 is dirty only for A (42), never for B (43).
        #expect(!dirty(c, "stg1", for: 43).contains(2))
        #expect(!dirty(c, "stg0", for: 43).contains(2))
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", offset, block) == pattern(2, 2)))
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", offset, block) == pattern(2, 2)))
    }

    /// Last-IO with 3 legs: a write that reached only A must be marked dirty for B and C both
    /// (the reference marks only the first peer map, notes §11 item 10).
    @Test func lastIOMarksEveryOtherMemberWithThreeLegs() {
        let c = ready(3)
        let offset = 5 * chunkBytes
        #expect(c.blockIO("client", .write, offset: offset, length: block, data: pattern(5, 1)) == .ok(data: []))
        c.dropping = ["10.0.0.1>10.0.1.1", "10.0.0.1>10.0.1.2"]
        _ = c.startBlockIO("client", .write, offset: offset, length: block, data: pattern(5, 2))
        c.advance(.milliseconds(10))
        c.crash("client")
        c.dropping = []
        reassemble(c, legs: 3)
        let normal = c.waitUntil(.seconds(30)) { c in (0..<3).allSatisfy { c.legState("client", TestCluster.session($0)) == .normal } }
        #expect(normal)
        #expect(c.probes.contains(.lastIOReconciliationThreeOrMoreLegs))
        let settled = c.waitUntil(RecoveryTests.settled(3))
        #expect(settled)
        for i in 0..<3 { #expect(Bool(c.diskBytes(TestCluster.storageName(i), "/dev/sda", offset, block) == pattern(5, 2))) }
    }

    /// S9: client crash, then the only node holding the write crashes before the client returns:
    /// the write intent is on disk, so the divergence is still found.
    @Test func s9ClientThenStorageCrashKeepsTheDivergence() {
        let c = ready(2)
        let offset = 3 * chunkBytes
        #expect(c.blockIO("client", .write, offset: offset, length: block, data: pattern(3, 1)) == .ok(data: []))
        c.dropping = ["10.0.0.1>10.0.1.1"]
        _ = c.startBlockIO("client", .write, offset: offset + 8192, length: block, data: pattern(3, 7))
        c.advance(.milliseconds(10))
        c.crash("client")
        c.crash("stg0")
        c.dropping = []
        c.restart("stg0")
        c.ok("stg0", .serverJoinPool(pool: pool, member: 42))
        c.ok("stg0", .addStore(device: "/dev/sda", pool: pool, mappedSectors: mapped, mode: .add))
        #expect(c.node("stg0").serverPool(pool)!.writeIntentCount > 0, "write intents restored from disk")
        c.setUpSyncPool(0, legs: 2)
        reassemble(c, legs: 2)
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", offset, 3 * block) == c.diskBytes("stg1", "/dev/sda", offset, 3 * block)))
    }

    /// S10: B fails, then A fails (A was last authoritative); A comes back first and is enabled
    /// without a map transfer, then spreads its map to B.
    @Test func s10WasLastAuthoritative() {
        let c = ready(2)
        c.cutLink("client", "stg1")
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 3)) == .ok(data: []))
        c.cutLink("client", "stg0")
        #expect(c.node("client").clientPool(pool)!.legs.first { $0.member == 42 }!.wasLastAuthoritative)
        c.restoreLink("client", "stg0")
        let aNormal = c.waitUntil(.seconds(30)) { $0.legState("client", TestCluster.session(0)) == .normal }
        #expect(aNormal)
        #expect(c.probes.contains(.wasLastAuthoritativeEnable))
        c.restoreLink("client", "stg1")
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", 0, block) == pattern(0, 3)))
    }

    /// S11: maintenance on B; writes go to A with B tracked dirty; B's backend sees no IO; on
    /// enable B gets a map update and resyncs.
    @Test func s11MaintenanceMode() {
        let c = ready(2)
        c.ok("client", .sessionEnable(pool: pool, session: TestCluster.session(1), enable: false))
        #expect(c.legState("client", TestCluster.session(1)) == .reconnecting)
        #expect(c.serverState("stg1") == .noIO)
        #expect(c.node("stg1").serverPool(pool)!.maintenance)
        let before = c.diskBytes("stg1", "/dev/sda", 0, 64 * 1024)
        for b in 0..<16 as Range<UInt64> {
            #expect(c.blockIO("client", .write, offset: b * block, length: block, data: pattern(b, 4)) == .ok(data: []))
        }
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", 0, 64 * 1024) == before), "no IO reached B's backend")
        c.advance(.seconds(10))
        #expect(c.legState("client", TestCluster.session(1)) == .reconnecting, "no map update while in maintenance")
        c.ok("client", .sessionEnable(pool: pool, session: TestCluster.session(1), enable: true))
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", 0, 64 * 1024) == c.diskBytes("stg0", "/dev/sda", 0, 64 * 1024)))
    }

    /// Fuzz seed 7249: A misses a write that B takes, while B is being put in maintenance. A
    /// times out last, but it is not the last authoritative leg: B holds the write and the
    /// record that A missed it. A comes back alone and must not be enabled as is (it would
    /// serve the old data, and could never spread its older map to B); once B leaves
    /// maintenance, last-IO reconciliation brings both legs back with the acknowledged data.
    @Test func aLegThatMissedAnAcknowledgedWriteIsNotLastAuthoritative() {
        let c = ready(2)
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 1)) == .ok(data: []))
        c.dropping = ["10.0.1.0>10.0.0.1"]  // A's answers are lost; the link stays up
        let write = c.startBlockIO("client", .write, offset: 0, length: block, data: pattern(0, 2))
        c.advance(.milliseconds(10))
        // Maintenance on B drains IO first: the write waits for A until it times out.
        let maintenance = c.admin("client", .sessionEnable(pool: pool, session: TestCluster.session(1), enable: false), within: .seconds(60))
        #expect(maintenance == .ok)
        #expect(c.blockResults[write] == .ok(data: []), "the write is on B, and B records that A missed it")
        let a = c.node("client").clientPool(pool)!.legs.first { $0.member == 42 }!
        #expect(a.state == .failed)
        #expect(!a.wasLastAuthoritative, "A missed an acknowledged write")
        #expect(c.probes.contains(.authorityLostToMissedWrite))
        c.dropping = []
        c.advance(.seconds(20))
        #expect(c.legState("client", TestCluster.session(0)) == .reconnecting, "A is not enabled while only B knows what it missed")
        #expect(!c.probes.contains(.wasLastAuthoritativeEnable))
        let r = c.admin("client", .poolEnable(pool: pool))
        guard case .failed(let e) = r else { Issue.record("pool_enable enabled A without B"); return }
        #expect(e.code == .EAGAIN)
        #expect(e.message.contains("43"))
        guard case .failed = c.blockIO("client", .read, offset: 0, length: block) else {
            Issue.record("a read was served while the only current copy is in maintenance"); return
        }
        c.ok("client", .sessionEnable(pool: pool, session: TestCluster.session(1), enable: true))
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(c.probes.contains(.lastIOReconciliation))
        #expect(Bool(c.blockIO("client", .read, offset: 0, length: block) == .ok(data: pattern(0, 2))))
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", 0, block) == pattern(0, 2)))
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", 0, block) == pattern(0, 2)))
    }

    /// The same, with the other ordering: A times out and comes back while the write's MAP_ADD
    /// to B is still on the wire (B's answers are slow). Case 2 picks A before IO drains; the
    /// drain acknowledges the write, which takes A's flag, and try_enable chooses again.
    @Test func caseTwoChoosesAgainWhenTheDrainTakesTheFlag() {
        let c = ready(2)
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 1)) == .ok(data: []))
        c.dropping = ["10.0.1.0>10.0.0.1"]
        let write = c.startBlockIO("client", .write, offset: 0, length: block, data: pattern(0, 2))
        c.advance(.milliseconds(10))
        let maintenance = c.startAdmin("client", .sessionEnable(pool: pool, session: TestCluster.session(1), enable: false))
        c.advance(.seconds(25))
        c.delays["10.0.1.1>10.0.0.1"] = .seconds(10)  // B's answers, the MAP_ADD's among them
        c.dropping = []  // A answers again (its answer to the write is already lost)
        let chosen = c.waitUntil(.seconds(20)) { $0.node("client").clientPool(pool)!.legs.first { $0.member == 42 }!.wasLastAuthoritative }
        #expect(chosen, "A timed out as the last NORMAL leg")
        let rechosen = c.waitUntil(.seconds(30)) { $0.probes.contains(.authoritativeRecoveryRechosen) }
        #expect(rechosen)
        #expect(c.blockResults[write] == .ok(data: []))
        #expect(!c.probes.contains(.wasLastAuthoritativeEnable))
        c.advance(.seconds(15))
        c.delays = [:]
        #expect(c.adminResults[maintenance] == .ok)
        #expect(c.legState("client", TestCluster.session(0)) == .reconnecting)
        c.ok("client", .sessionEnable(pool: pool, session: TestCluster.session(1), enable: true))
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.blockIO("client", .read, offset: 0, length: block) == .ok(data: pattern(0, 2))))
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", 0, block) == pattern(0, 2)))
    }

    /// Fuzz seed 1828: each leg holds a dirty record the other lacks, and last-IO reconciliation
    /// must keep both. B's answer to a write on chunk 0 is lost (the write stays in flight);
    /// A fails, and a write to chunk 2 goes to B alone (B records that A missed it). A comes
    /// back, but its map update waits for the drain, so the first write times out on B: B is
    /// FAILED, the write is acknowledged with MAP_ADD(failed B) on A alone, and A has the
    /// higher map version. Spreading A's maps alone would erase B's record and A would serve
    /// chunk 2 stale; the reconciliation merges B's records into A's first.
    @Test func lastIOKeepsTheRecordsOfEveryParticipant() {
        let c = ready(2)
        let c0: UInt64 = 0, c2: UInt64 = 2 * chunkBytes
        #expect(c.blockIO("client", .write, offset: c0, length: block, data: pattern(0, 1)) == .ok(data: []))
        #expect(c.blockIO("client", .write, offset: c2, length: block, data: pattern(2, 1)) == .ok(data: []))
        let first = startWrite(c, offset: c0, data: pattern(0, 2), dropping: "10.0.1.1>10.0.0.1")
        c.cutLink("client", "stg0")
        #expect(c.blockIO("client", .write, offset: c2, length: block, data: pattern(2, 2)) == .ok(data: []))
        c.restoreLink("client", "stg0")
        let done = c.waitUntil(.seconds(40)) { $0.blockResults[first] != nil }
        #expect(done)
        #expect(c.blockResults[first] == .ok(data: []), "on A, with the record that B missed it")
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(c.probes.contains(.lastIOReconciliation))
        #expect(c.probes.contains(.lastIOMapsMerged))
        for _ in 0..<2 {  // both legs serve reads in turn
            #expect(Bool(c.blockIO("client", .read, offset: c2, length: block) == .ok(data: pattern(2, 2))))
            #expect(Bool(c.blockIO("client", .read, offset: c0, length: block) == .ok(data: pattern(0, 2))))
        }
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", c2, block) == pattern(2, 2)))
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", c0, block) == pattern(0, 2)))
    }

    /// Fuzz seed 1828: write W1 reaches stg0 only (the request to stg1 is lost) and waits 30 s
    /// for stg1. Meanwhile W2, to the same chunk, reaches stg1 only: stg0 is failed (its link
    /// drops, W2 goes out without it) or stg0's store is replaced (W2 fails there). When W1
    /// times out on stg1, its one copy is on stg0, which lacks W2: acknowledging W1 with a
    /// MAP_ADD there would leave each leg missing an acknowledged write of the chunk, with no
    /// complete copy to resync from. W1 fails instead, and W2 survives on both legs.
    @Test(arguments: [false, true])
    func aWriteWhoseOnlyCopyMissedAnotherWriteIsNotAcknowledged(storeReplaced: Bool) {
        let c = ready(2)
        let b0: UInt64 = 0, b1: UInt64 = block
        #expect(c.blockIO("client", .write, offset: b0, length: block, data: pattern(0, 1)) == .ok(data: []))
        #expect(c.blockIO("client", .write, offset: b1, length: block, data: pattern(1, 1)) == .ok(data: []))
        let w1 = startWrite(c, offset: b0, data: pattern(0, 2), dropping: "10.0.0.1>10.0.1.1")
        #expect(c.blockResults[w1] == nil, "W1 waits for stg1")
        if storeReplaced {
            c.ok("stg0", .removeStore(pool: pool))
            c.ok("stg0", .addStore(device: "/dev/sda", pool: pool, mappedSectors: mapped, mode: .add))
            #expect(c.blockIO("client", .write, offset: b1, length: block, data: pattern(1, 2)) == .ok(data: []), "W2 on stg1 alone")
            #expect(c.probes.contains(.mapAddAfterPartialWrite))
        } else {
            c.cutLink("client", "stg0")
            #expect(c.blockIO("client", .write, offset: b1, length: block, data: pattern(1, 2)) == .ok(data: []), "W2 on stg1 alone")
            #expect(c.probes.contains(.piggybackedFailedMember))
            c.restoreLink("client", "stg0")
        }
        #expect(c.waitUntil(.seconds(10)) { $0.legState("client", TestCluster.session(0)) == .reconnecting })
        let done = c.waitUntil(.seconds(40)) { $0.blockResults[w1] != nil }
        #expect(done)
        #expect(c.blockResults[w1] == .failed(.EIO))
        #expect(c.probes.contains(.ackRefusedHolderMissedAnotherWrite))
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        for _ in 0..<2 {  // both legs serve reads in turn
            #expect(Bool(c.blockIO("client", .read, offset: b1, length: block) == .ok(data: pattern(1, 2))))
        }
        for b in [b0, b1] {
            #expect(Bool(c.diskBytes("stg0", "/dev/sda", b, block) == c.diskBytes("stg1", "/dev/sda", b, block)))
        }
        #expect(Bool(c.diskBytes("stg0", "/dev/sda", b1, block) == pattern(1, 2)))
    }

    /// Fuzz seed 824: the client fails stg0's leg on a timeout while stg0's server pool stays
    /// NORMAL, and later writes reach stg1 only. stg0 does not know it missed them; stg1 and the
    /// client do. When stg2 comes back with stg1's maps, its chunk syncs must not read from
    /// stg0, which would serve its stale copy without refusing.
    @Test func aChunkSyncSkipsAPeerItKnowsIsDirty() {
        let c = ready(3)
        let chunks: [UInt64] = [0, 1, 2, 3]
        for k in chunks {
            #expect(c.blockIO("client", .write, offset: k * chunkBytes, length: block, data: pattern(k, 1)) == .ok(data: []))
        }
        c.cutLink("client", "stg2")  // stg2 misses what follows and knows it
        c.dropping = ["10.0.1.0>10.0.0.1"]  // stg0 takes writes but its answers are lost
        let stuck = chunks.map { c.startBlockIO("client", .write, offset: $0 * chunkBytes, length: block, data: pattern($0, 2)) }
        let failed = c.waitUntil(.seconds(60)) { c in stuck.allSatisfy { c.blockResults[$0] != nil } }
        #expect(failed)
        #expect(c.legState("client", TestCluster.session(0)) != .normal)
        #expect(c.serverState("stg0") == .normal, "nothing told stg0 that the client failed its leg")
        for k in chunks {  // stg1 only: stg0 misses these without knowing
            #expect(c.blockIO("client", .write, offset: k * chunkBytes, length: block, data: pattern(k, 3)) == .ok(data: []))
        }
        #expect(dirty(c, "stg0", for: 42).isEmpty)
        #expect(dirty(c, "stg1", for: 42) == chunks)
        c.restoreLink("client", "stg2")  // stg2 returns while stg0 is still unreachable
        let synced = c.waitUntil(.seconds(60)) { $0.serverState("stg2") == .normal && $0.ownDirty("stg2") == 0 }
        #expect(synced)
        #expect(c.probes.contains(.syncSourceKnownDirtySkipped))
        c.dropping = []
        let settled = c.waitUntil(RecoveryTests.settled(3))
        #expect(settled)
        for k in chunks {
            for host in ["stg0", "stg1", "stg2"] {
                #expect(Bool(c.diskBytes(host, "/dev/sda", k * chunkBytes, block) == pattern(k, 3)), "\(host) chunk \(k)")
            }
        }
    }

    /// S16: IO hitting a dirty chunk on a NORMAL node waits for the on-demand sync; concurrent
    /// IO to the same chunk waits for the same sync; the write lands after the synced data.
    @Test func s16OnDemandSyncWithConcurrentWaiters() {
        let c = TestCluster.guide(legs: 2, syncQueueDepth: 1)
        c.bringUp(legs: 2)
        // Stop the background sync right away so chunks stay dirty for stg1.
        c.ok("stg1", .sync(pool: pool, .stop))
        c.advance(.milliseconds(50))  // the one chunk in flight at the stop finishes
        let dirtyBefore = c.ownDirty("stg1")
        #expect(dirtyBefore > 20)
        c.advance(.milliseconds(50))
        #expect(c.ownDirty("stg1") == dirtyBefore, "the stopped thread starts no new chunk")
        #expect(c.node("stg1").serverPool(pool)!.maps[0].map.isDirty(20))
        // Data written before (through stg0 only is impossible: both legs are NORMAL); use
        // stg0's disk content as the source of truth: write chunk 20 twice concurrently.
        let t1 = c.startBlockIO("client", .write, offset: 20 * chunkBytes, length: block, data: pattern(20, 1))
        let t2 = c.startBlockIO("client", .write, offset: 20 * chunkBytes + block, length: block, data: pattern(21, 1))
        let t3 = c.startBlockIO("client", .read, offset: 20 * chunkBytes + 2 * block, length: block)
        c.advance(.seconds(1))
        #expect(c.blockResults[t1] == .ok(data: []))
        #expect(c.blockResults[t2] == .ok(data: []))
        #expect(c.blockResults[t3] != nil)
        #expect(c.probes.contains(.writeToLockedChunk))
        #expect(!c.node("stg1").serverPool(pool)!.maps[0].map.isDirty(20))
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", 20 * chunkBytes, chunkBytes) == c.diskBytes("stg0", "/dev/sda", 20 * chunkBytes, chunkBytes)))
        // stg0 learned the clear through MAP_CLEAR.
        #expect(!dirty(c, "stg0", for: 43).contains(20))
        #expect(c.ownDirty("stg1") == dirtyBefore - 1)
        c.ok("stg1", .sync(pool: pool, .start))
        let clean = c.waitUntil { $0.ownDirty("stg1") == 0 }
        #expect(clean)
    }

    /// A sync peer's read of a chunk that is dirty for the node it asks is refused (EIO), so the
    /// reader tries elsewhere and no stale copy spreads. Readers skip peers they know are
    /// dirty, so in a running cluster this guard only fires when the reader does not know:
    /// the read is injected here, from stg0's sync session, while stg1 still syncs chunk 20.
    @Test func syncReadOfDirtyChunkFails() {
        let c = TestCluster.guide(legs: 2, syncQueueDepth: 1)
        c.bringUp(legs: 2)
        c.ok("stg1", .sync(pool: pool, .stop))
        c.advance(.milliseconds(50))
        #expect(dirty(c, "stg1", for: 43).contains(20), "stg1 has not synced chunk 20")
        var stg1 = c.node("stg1")
        let version = stg1.serverPool(pool)!.mapVersion
        let rid = RequestID(4_000_000)
        let read = IORequest(op: .read, offsetBytes: 20 * chunkBytes, lengthBytes: block, data: [], slot: 0,
                             mapVersion: version, failedMembers: [], target: 43)
        let effects = stg1.apply(.received(.request(rid, pool: pool, .io(read)), from: "10.0.1.0"), at: c.now)
        #expect(effects.contains(.probe(.syncReadOfDirtyChunkRefused)))
        #expect(effects.contains(.send(.response(rid, pool: pool, .failed(.EIO)), to: "10.0.1.0")))
        #expect(!effects.contains { if case .submitStore = $0 { return true } else { return false } }, "nothing read from the stale store")
        // The same read of a chunk stg1 has synced is served.
        c.ok("stg1", .sync(pool: pool, .start))
        let clean = c.waitUntil { $0.ownDirty("stg1") == 0 }
        #expect(clean)
        stg1 = c.node("stg1")
        let served = stg1.apply(.received(.request(RequestID(4_000_001), pool: pool, .io(read)), from: "10.0.1.0"), at: c.now)
        #expect(served.contains { if case .submitStore = $0 { return true } else { return false } })
    }

    /// S3: a backend write error on B: B closes its store and stops serving; the client
    /// acknowledges via A with B's chunk dirty; the admin re-adds the store; B recovers.
    @Test func s3BackendIOError() {
        let c = ready(2)
        c.hosts[c.index("stg1")].disks["/dev/sda"]!.failWrites = true
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 6)) == .ok(data: []))
        #expect(c.legState("client", TestCluster.session(1)) == .failed)
        #expect(c.serverState("stg1") == .noIO)
        #expect(c.node("stg1").store(forPool: pool)?.open == false)
        c.advance(.seconds(10))
        #expect(c.legState("client", TestCluster.session(1)) == .failed, "store check stays negative while the store is closed")
        c.hosts[c.index("stg1")].disks["/dev/sda"]!.failWrites = false
        c.ok("stg1", .removeStore(pool: pool))
        c.ok("stg1", .addStore(device: "/dev/sda", pool: pool, mappedSectors: mapped, mode: .add))
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg1", "/dev/sda", 0, block) == pattern(0, 6)))
    }

    /// S17: replace a broken disk with an empty one on a running pool; it is fully resynced.
    @Test func s17ReplaceDisk() {
        let c = ready(2)
        for b in 0..<8 as Range<UInt64> {
            #expect(c.blockIO("client", .write, offset: b * chunkBytes, length: block, data: pattern(b, 8)) == .ok(data: []))
        }
        c.ok("stg1", .removeStore(pool: pool))
        c.hosts[c.index("stg1")].disks["/dev/sdb"] = TestDisk(sizeSectors: mapped * 2 + 8192)
        // A disk with metadata is refused for replace; an empty one is taken.
        #expect(c.admin("stg1", .addStore(device: "/dev/sda", pool: pool, mappedSectors: mapped, mode: .replace)) != AdminResult.ok)
        c.ok("stg1", .addStore(device: "/dev/sdb", pool: pool, mappedSectors: mapped, mode: .replace))
        #expect(c.probes.contains(.storeReplaced))
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg1", "/dev/sdb", 0, mapped * 512) == c.diskBytes("stg0", "/dev/sda", 0, mapped * 512)))
        #expect(c.node("stg1").serverPool(pool)!.mapVersion.isReplacing == false)
    }

    /// A write submitted to the old disk completes (with an error) after the operator has
    /// already replaced the store: the error belongs to the removed store. The new store stays
    /// open, the write is acknowledged through the other leg, and the new disk is resynced.
    /// (Fuzz seed 227: before the fix the late error closed the new store for good.)
    @Test func lateCompletionFromARemovedStoreLeavesTheNewStoreOpen() {
        let c = ready(2)
        c.hosts[c.index("stg1")].disks["/dev/sda"]!.failWrites = true
        c.diskLatency = .milliseconds(10)
        let tag = c.startBlockIO("client", .write, offset: 3 * chunkBytes, length: block, data: pattern(3, 1))
        c.advance(.milliseconds(15))  // stg1 has submitted the data write; it completes at ~21 ms
        c.diskLatency = Duration(nanos: 100_000)
        c.ok("stg1", .removeStore(pool: pool))
        c.hosts[c.index("stg1")].disks["/dev/sdb"] = TestDisk(sizeSectors: mapped * 2 + 8192)
        c.ok("stg1", .addStore(device: "/dev/sdb", pool: pool, mappedSectors: mapped, mode: .replace))
        #expect(c.node("stg1").store(forPool: pool)?.open == true)
        c.advance(.milliseconds(20))  // the old disk's EIO arrives
        #expect(c.blockResults[tag] == .ok(data: []))
        #expect(c.node("stg1").store(forPool: pool)?.open == true, "a removed store's error must not close the new one")
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        #expect(Bool(c.diskBytes("stg1", "/dev/sdb", 0, mapped * 512) == c.diskBytes("stg0", "/dev/sda", 0, mapped * 512)))
        #expect(Bool(c.diskBytes("stg1", "/dev/sdb", 3 * chunkBytes, block) == pattern(3, 1)))
    }

    /// Acknowledgement rule: if every leg fails the write fails; if the MAP_ADD reaches no
    /// survivor the write fails too.
    @Test func writeFailsWhenNoLegTakesIt() {
        let c = ready(2)
        c.hosts[c.index("stg0")].disks["/dev/sda"]!.failWrites = true
        c.hosts[c.index("stg1")].disks["/dev/sda"]!.failWrites = true
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 1)) == .failed(.EIO))
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 1)) == .failed(.EIO), "no normal leg left")
    }

    @Test func readRetriesOnAnotherLeg() {
        let c = ready(2)
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 1)) == .ok(data: []))
        // Make stg0 refuse IO (store closed) without the client knowing yet.
        c.hosts[c.index("stg0")].node = {
            var n = c.node("stg0")
            _ = n.apply(.admin(.removeStore(pool: pool), token: AdminToken(999), probe: nil), at: c.now)
            return n
        }()
        var reads: [BlockIOResult] = []
        for _ in 0..<2 { reads.append(c.blockIO("client", .read, offset: 0, length: block)) }
        #expect(Bool(reads.allSatisfy { $0 == .ok(data: pattern(0, 1)) }))
        #expect(c.probes.contains(.readRetriedOnAnotherLeg))
        #expect(c.legState("client", TestCluster.session(0)) == .failed)
    }

    /// S12: graceful disassemble of every leg and reassembly; data and maps are kept.
    @Test func s12DisassembleAndReassemble() {
        let c = ready(2)
        for b in 0..<4 as Range<UInt64> {
            #expect(c.blockIO("client", .write, offset: b * block, length: block, data: pattern(b, 2)) == .ok(data: []))
        }
        c.ok("client", .unmapDevice(device: "brmr0"))
        c.ok("stg0", .deleteSession(pool: pool, session: "stg-rmr0@stg-rmr1", mode: .disassemble))
        c.ok("stg1", .deleteSession(pool: pool, session: "stg-rmr1@stg-rmr0", mode: .disassemble))
        for i in 0..<2 { c.ok("client", .deleteSession(pool: pool, session: TestCluster.session(i), mode: .disassemble)) }
        for i in 0..<2 {
            let h = TestCluster.storageName(i)
            #expect(c.serverState(h) == .registered)
            c.ok(h, .removeStore(pool: pool))
            #expect(c.serverState(h) == .empty)
            c.ok(h, .serverLeavePool(pool: pool))
            c.ok(h, .clientLeavePool(pool: pool))
        }
        c.ok("client", .clientLeavePool(pool: pool))
        // Reassemble.
        for i in 0..<2 {
            let h = TestCluster.storageName(i)
            c.ok(h, .serverJoinPool(pool: pool, member: TestCluster.member(i)))
            c.ok(h, .addStore(device: "/dev/sda", pool: pool, mappedSectors: mapped, mode: .add))
        }
        for i in 0..<2 { c.setUpSyncPool(i, legs: 2) }
        c.ok("client", .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false))
        for i in 0..<2 { c.ok("client", .addSession(pool: pool, session: TestCluster.session(i), address: "10.0.1.\(i)", mode: .assemble)) }
        let normal = c.waitUntil(.seconds(30)) { c in (0..<2).allSatisfy { c.legState("client", TestCluster.session($0)) == .normal } }
        #expect(normal)
        c.ok("client", .mapDevice(pool: pool, sizeSectors: mapped))
        for b in 0..<4 as Range<UInt64> {
            #expect(Bool(c.blockIO("client", .read, offset: b * block, length: block) == .ok(data: pattern(b, 2))))
        }
    }

    /// S13: delete a leg permanently; peers forget it; its disk is wiped; create_store accepts it again.
    @Test func s13DeleteLegAndDissolve() {
        let c = ready(2)
        c.ok("client", .unmapDevice(device: "brmr0"))
        c.ok("stg1", .deleteSession(pool: pool, session: "stg-rmr1@stg-rmr0", mode: .disassemble))
        c.ok("stg0", .deleteSession(pool: pool, session: "stg-rmr0@stg-rmr1", mode: .disassemble))
        // delete_store before the leg is deleted is refused and changes nothing.
        let digest = c.node("stg1").stateDigest
        #expect(c.admin("stg1", .deleteStore(pool: pool)) != AdminResult.ok)
        #expect(c.node("stg1").stateDigest == digest)
        c.ok("client", .deleteSession(pool: pool, session: TestCluster.session(1), mode: .delete))
        c.advance(.milliseconds(100))
        #expect(c.node("stg0").serverPool(pool)!.maps.allSatisfy { $0.member != 43 }, "A forgot member 43")
        #expect(c.node("client").clientPool(pool)!.members == [42])
        c.ok("stg1", .deleteStore(pool: pool))
        #expect(c.hosts[c.index("stg1")].disks["/dev/sda"]!.durable == nil, "metadata wiped")
        c.ok("stg1", .serverLeavePool(pool: pool))
        c.ok("stg1", .clientLeavePool(pool: pool))
        // The disk can be formatted again.
        c.ok("stg1", .serverJoinPool(pool: "other", member: 7))
        c.ok("stg1", .createStore(device: "/dev/sda", pool: "other", mappedSectors: mapped))
    }

    /// S14: a MAP_CHECK answer never clears a client map that changed after the question.
    @Test func s14MapCheckDoesNotClearAYoungMap() {
        let c = ready(2)
        c.cutLink("client", "stg1")
        #expect(c.blockIO("client", .write, offset: 0, length: block, data: pattern(0, 1)) == .ok(data: []))
        c.restoreLink("client", "stg1")
        let settled = c.waitUntil(RecoveryTests.settled(2))
        #expect(settled)
        // The client's own copy of B's map is cleared by MAP_CHECK only after 5 s of quiet.
        let cleared = c.waitUntil(.seconds(30)) { $0.node("client").clientMap(pool, member: 43)?.isEmpty ?? true }
        #expect(cleared)
        #expect(c.probes.contains(.mapCheckClearedClientMap))
    }

    @Test func createStoreRefusesADiskWithMetadata() {
        let c = ready(2)
        c.ok("stg1", .serverJoinPool(pool: "second", member: 9))
        let digest = c.node("stg1").stateDigest
        let r = c.admin("stg1", .createStore(device: "/dev/sda", pool: "second", mappedSectors: mapped))
        guard case .failed(let e) = r else { Issue.record("create_store accepted a disk with metadata"); return }
        #expect(e.code == .EEXIST)
        #expect(e.message.contains("add_store"))
        #expect(c.node("stg1").stateDigest == digest)
    }
}


/// Notes §11 item 12: the client comes back while a member is still down. Reconciliation waits
/// for every member of pool_md; `pool_enable` says which one; when it returns all converge.
@Suite struct MissingMemberTests {
    @Test func clientReturnsWhileAMemberIsDown() {
        let c = TestCluster.guide(legs: 3)
        c.bringUp(legs: 3)
        let settled = c.waitUntil(RecoveryTests.settled(3))
        #expect(settled)
        #expect(c.blockIO("client", .write, offset: 0, length: 4096, data: pattern(0, 1)) == .ok(data: []))
        c.crash("client")
        c.crash("stg2")
        c.restart("client")
        c.ok("client", .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false))
        for i in 0..<2 {
            c.ok("client", .addSession(pool: pool, session: TestCluster.session(i), address: "10.0.1.\(i)", mode: .assemble))
        }
        c.advance(.seconds(10))
        #expect(c.legState("client", TestCluster.session(0)) == .reconnecting)
        let r = c.admin("client", .poolEnable(pool: pool))
        guard case .failed(let e) = r else { Issue.record("pool_enable succeeded without member 44"); return }
        #expect(e.code == .EAGAIN)
        #expect(e.message.contains("44"))
        #expect(c.serverState("stg0") == .noIO, "no IO is served before every member is reconciled")
        // The node returns; the operator rebuilds it and assembles its leg.
        c.restart("stg2")
        c.ok("stg2", .serverJoinPool(pool: pool, member: 44))
        c.ok("stg2", .addStore(device: "/dev/sda", pool: pool, mappedSectors: mapped, mode: .add))
        c.setUpSyncPool(2, legs: 3)
        c.ok("client", .addSession(pool: pool, session: TestCluster.session(2), address: "10.0.1.2", mode: .assemble))
        let normal = c.waitUntil(.seconds(60)) { c in (0..<3).allSatisfy { c.legState("client", TestCluster.session($0)) == .normal } }
        #expect(normal)
        c.ok("client", .mapDevice(pool: pool, sizeSectors: mapped))
        #expect(Bool(c.blockIO("client", .read, offset: 0, length: 4096) == .ok(data: pattern(0, 1))))
    }
}

/// Extending a live pool with a third leg (migration, notes S13): the new store is mapped
/// before it serves, it syncs fully, and then the old leg can be deleted.
@Suite struct ExtendTests {
    @Test func addALegToAMappedPoolThenRetireAnOldOne() {
        let c = TestCluster.guide(legs: 3)
        // Bring up 2 legs only; stg2 is prepared but joins later.
        for i in 0..<3 {
            c.ok(TestCluster.storageName(i), .serverJoinPool(pool: pool, member: TestCluster.member(i)))
            c.ok(TestCluster.storageName(i), .createStore(device: "/dev/sda", pool: pool, mappedSectors: mapped))
        }
        c.ok("client", .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false))
        for i in 0..<2 {
            c.ok("client", .addSession(pool: pool, session: TestCluster.session(i), address: "10.0.1.\(i)", mode: .create))
            c.ok("client", .sessionEnable(pool: pool, session: TestCluster.session(i), enable: true))
        }
        for i in 0..<2 { c.setUpSyncPool(i, legs: 2) }
        c.ok("client", .mapDevice(pool: pool, sizeSectors: mapped))
        for b in 0..<8 as Range<UInt64> {
            #expect(c.blockIO("client", .write, offset: b * 131072, length: 4096, data: pattern(b, 1)) == .ok(data: []))
        }
        // The new leg.
        c.ok("client", .addSession(pool: pool, session: TestCluster.session(2), address: "10.0.1.2", mode: .create))
        c.ok("client", .sessionEnable(pool: pool, session: TestCluster.session(2), enable: true))
        #expect(c.node("stg2").store(forPool: pool)?.mapped == true)
        c.setUpSyncPool(2, legs: 3)
        for i in 0..<2 {
            c.ok(TestCluster.storageName(i), .addSession(pool: pool, session: "stg-rmr\(i)@stg-rmr2", address: "10.0.1.2", mode: nil))
        }
        #expect(c.blockIO("client", .write, offset: 20 * 131072, length: 4096, data: pattern(20, 1)) == .ok(data: []))
        let settled = c.waitUntil(RecoveryTests.settled(3))
        #expect(settled)
        for b in 0..<8 as Range<UInt64> {
            #expect(Bool(c.diskBytes("stg2", "/dev/sda", b * 131072, 4096) == pattern(b, 1)))
        }
        // Retire stg0.
        c.ok("client", .deleteSession(pool: pool, session: TestCluster.session(0), mode: .delete))
        #expect(c.node("client").clientPool(pool)!.members == [43, 44])
        #expect(Bool(c.blockIO("client", .read, offset: 3 * 131072, length: 4096) == .ok(data: pattern(3, 1))))
    }
}
