import Testing
import RMRCore
@testable import RMRFormat

// Damage a crash cannot explain must be reported, never silently turned into an older state.

@Suite struct CorruptionTests {
    /// A disk with `records` acknowledged records in the journal of generation 1.
    func diskWithJournal(records: Int, window: UInt32 = 2) throws -> (CrashHarness, MetadataLayout) {
        let (disk, _, layout) = try formattedDisk(journalBlocks: 64, window: window)
        var h = try CrashHarness(disk: disk, seed: 21, bigChance: 1_000_000)
        for _ in 0..<records { h.append(); h.issue(); try h.settle() }
        #expect(h.acked == records)
        #expect(h.writer.generation == 1)
        return (h, layout)
    }

    func recoveryError(_ disk: MemoryDisk) -> FormatError? {
        if case .failure(let e) = Recovery.recover(deviceSectors: disk.sectors, read: disk.reader) { return e }
        return nil
    }

    @Test func aDamagedAcknowledgedJournalBlockIsReported() throws {
        let (h, layout) = try diskWithJournal(records: 10)
        var disk = h.disk
        disk.flip(block: layout.journalBlock(1), offset: 100)
        let e = try #require(recoveryError(disk))
        #expect(e.kind == .corrupt)
        #expect(e.message.contains("journal position 1 (generation 1) is unreadable"))
        #expect(e.message.contains("acknowledged records lost"))
    }

    @Test func aTornJournalTailIsAcceptedAsACrash() throws {
        let (h, layout) = try diskWithJournal(records: 10)
        var disk = h.disk
        // The last block (position 9) torn: the last record was in flight at the crash.
        disk.flip(block: layout.journalBlock(9), offset: 100)
        let r = try Recovery.recoverDetailed(deviceSectors: disk.sectors, read: disk.reader).get()!
        #expect(r.state == h.expected[9])
        #expect(r.journalEnd == 9)
    }

    @Test func headerCopyDamageFallsBackToTheOtherCopy() throws {
        let (h, _) = try diskWithJournal(records: 3)
        var disk = h.disk
        disk.flip(block: 0, offset: 200)
        let r = try Recovery.recoverDetailed(deviceSectors: disk.sectors, read: disk.reader).get()!
        #expect(r.state == h.expected[3])
        #expect(r.notes.contains { $0.contains("checksum mismatch in copy 0") })
        disk.flip(block: 1, offset: 200)
        #expect(recoveryError(disk) == FormatError(.corrupt, "header checksum mismatch in copy 0 and copy 1"))
    }

    @Test func foreignDataInTheHeaderIsRejected() throws {
        var disk = MemoryDisk(sectors: 4096)
        let ext4 = Array("EXT4FSxx superblock".utf8)
        disk.bytes.replaceSubrange(0..<ext4.count, with: ext4)
        let e = try #require(recoveryError(disk))
        #expect(e.kind == .foreign)
        #expect(e.message.hasPrefix("foreign magic 0x"))
        #expect(e.message.contains("EXT4FSxx"))
        #expect(e.message.contains("header copy 0: not an RMR store"))
    }

    @Test func anUnsupportedVersionIsNamed() throws {
        var (disk, _, _) = try formattedDisk()
        for copy in 0..<2 {
            let lo = copy * 4096
            disk.bytes[lo + 12] = 9
            var block = Array(disk.bytes[lo..<(lo + 4096)])
            BlockSeal.seal(&block)
            disk.bytes.replaceSubrange(lo..<(lo + 4096), with: block)
        }
        #expect(recoveryError(disk) == FormatError(.unsupportedVersion, "unsupported format version 9 in header copy 0 (this build reads version 1)"))
    }

    @Test func aCommittedCheckpointThatIsDamagedIsReported() throws {
        // Only checkpoint: generation 1 from the format.
        var (disk, _, layout) = try formattedDisk()
        var damaged = disk
        damaged.flip(block: layout.checkpointSlotStartBlock(0) + 1, offset: 10)
        #expect(recoveryError(damaged)?.message == "no readable checkpoint: slot 0 generation 1 payload checksum mismatch; slot 1 is empty")
        // Generation 2 written and committed by the header: damaging it must not fall back to 1.
        var h = try CrashHarness(disk: disk, seed: 6, bigChance: 1_000_000)
        h.append()
        h.writer.requestCheckpoint()
        try h.settle()
        #expect(h.writer.generation == 2)
        #expect(h.writer.header.committedGeneration == 2)
        disk = h.disk
        disk.flip(block: layout.checkpointSlotStartBlock(1) + 1, offset: 10)
        let e = try #require(recoveryError(disk))
        #expect(e.message.hasPrefix("checkpoint generation 2 (slot 1) was committed (header sequence 3) but is unreadable"))
        #expect(e.message.contains("payload checksum mismatch"))
    }

    @Test func journalOfALostCheckpointIsReported() throws {
        // Checkpoint generation 2 completes, its journal gets records, but the header update
        // never lands; then generation 2's slot is damaged. Generation 1 must not be used.
        let (disk, _, layout) = try formattedDisk(journalBlocks: 64, window: 4)
        var h = try CrashHarness(disk: disk, seed: 5, bigChance: 1_000_000)
        h.append(); h.issue(); try h.settle()
        h.writer.requestCheckpoint()
        h.issue()
        #expect(h.inFlight.allSatisfy { $0.purpose == .checkpoint })
        while !h.inFlight.isEmpty { try h.completeOne() }
        h.issue()  // the header write, held back (never completes)
        let header = h.inFlight.filter { $0.purpose == .header }
        #expect(header.count == 1)
        h.inFlight.removeAll()
        for _ in 0..<3 { h.append() }
        h.issue()
        while !h.inFlight.isEmpty { try h.completeOne() }
        #expect(h.acked == 4)
        var damaged = h.disk
        damaged.flip(block: layout.checkpointSlotStartBlock(1), offset: 40)
        let e = try #require(recoveryError(damaged))
        #expect(e.message.contains("generation 2, newer than the newest readable checkpoint 1"))
        // Undamaged, the same disk recovers all four records from generation 2.
        let r = try Recovery.recoverDetailed(deviceSectors: h.disk.sectors, read: h.disk.reader).get()!
        #expect(r.generation == 2)
        #expect(r.state == h.expected[4])
    }

    @Test func aShrunkDeviceIsReported() throws {
        let (disk, _, layout) = try formattedDisk()
        let e = try #require({
            if case .failure(let e) = Recovery.recover(deviceSectors: layout.requiredSectors - 8, read: disk.reader) { return e }
            return nil
        }())
        #expect(e.message.contains("metadata ends at sector \(layout.requiredSectors)"))
    }

    @Test func metadataOfAnEarlierFormatIsNeverReplayed() throws {
        // Format, persist records, format again with another nonce: the old journal is gone
        // (zeroed) and old checkpoints have the wrong nonce.
        let (disk, _, _) = try formattedDisk(nonce: 1)
        var h = try CrashHarness(disk: disk, seed: 3)
        for _ in 0..<200 { try h.step() }
        try h.settle()
        var again = h.disk
        let fresh = Gen.state(poolName: "other", deviceSectors: again.sectors)
        again.apply(plan: try FormatPlan.format(fresh, deviceSectors: again.sectors, nonce: 2, journalBlocks: 16, journalWindowBlocks: 4))
        #expect(try Recovery.recover(deviceSectors: again.sectors, read: again.reader).get() == fresh)
    }

    @Test func poolNameAndMappedSizeMismatchesAreNamed() {
        let s = Gen.state(deviceSectors: 4096)
        #expect(StoreValidation.checkAdd(s, pool: "ionos_pool", mappedSectors: 512) == nil)
        #expect(StoreValidation.checkAdd(s, pool: "other", mappedSectors: 512)?.message
            == "pool name mismatch: the disk belongs to pool 'ionos_pool', the command names 'other'")
        #expect(StoreValidation.checkAdd(s, pool: "ionos_pool", mappedSectors: 1024)?.kind == .mismatch)
    }

    @Test func formatOfAMappedSizeTooLargeWritesNothing() {
        let disk = MemoryDisk(sectors: 300000 / 64)
        let state = Gen.state(chunkBytes: 128 * 1024, mappedSectors: 409600, deviceSectors: 300000)
        #expect(throws: FormatError(.doesNotFit, "mapped_size 409600 larger than device (300000 sectors)")) {
            _ = try FormatPlan.format(state, deviceSectors: 300000, nonce: 1)
        }
        #expect(disk.writesApplied == 0)
    }

    @Test func wipeLeavesABlankDisk() throws {
        var (disk, _, layout) = try formattedDisk()
        disk.apply(plan: FormatPlan.wipe(layout: layout))
        #expect(try Recovery.recover(deviceSectors: disk.sectors, read: disk.reader).get() == nil)
        let metadata = disk.bytes[(Int(layout.metadataStartBlock) * 4096)...]
        #expect(metadata.allSatisfy { $0 == 0 })
    }

    @Test func aWipeInterruptedAfterTheHeadersLeavesABlankDisk() throws {
        var (disk, _, layout) = try formattedDisk()
        disk.apply(plan: Array(FormatPlan.wipe(layout: layout).prefix(1)))
        #expect(try Recovery.recover(deviceSectors: disk.sectors, read: disk.reader).get() == nil)
    }

    /// Header content fits in the first sector and the rest of the block is zero, so a torn
    /// header write leaves either the old or the new copy: an interrupted format gives the old
    /// metadata, a blank disk or the new metadata, never an unreadable disk.
    @Test func aFormatInterruptedAnywhereLeavesOldBlankOrNewMetadata() throws {
        let (old, oldState, _) = try formattedDisk(nonce: 7)
        let state = Gen.state(poolName: "new", deviceSectors: old.sectors)
        let plan = try FormatPlan.format(state, deviceSectors: old.sectors, nonce: 8, journalBlocks: 16, journalWindowBlocks: 4)
        let writes = plan.flatMap { $0 }
        var rng = SplitMix64(seed: 99)
        for cut in 0...writes.count {
            var disk = old
            for w in writes.prefix(cut) { disk.apply(w) }
            if cut < writes.count { disk.tear(writes[cut], rng: &rng) }
            let r = Recovery.recover(deviceSectors: disk.sectors, read: disk.reader)
            switch r {
            case .success(nil): break
            case .success(let s?): #expect(s == state || s == oldState, "cut \(cut)")
            case .failure(let e): Issue.record("format cut at write \(cut): \(e.message)")
            }
        }
    }
}
