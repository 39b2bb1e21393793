import Testing
import RMRCore
@testable import RMRFormat

// Property-style crash tests over the in-memory device: random appends, issues and out-of-order
// completions; a crash at a chosen step drops, applies or tears every write in flight; after
// each restart recovery must give the state after some record k with acked <= k <= appended.

@Suite struct CrashSafetyTests {
    @Test func formatThenRecoverGivesTheFormattedState() throws {
        let (disk, state, _) = try formattedDisk()
        let recovered = try Recovery.recoverDetailed(deviceSectors: disk.sectors, read: disk.reader).get()!
        #expect(recovered.state == state)
        #expect(recovered.generation == 1)
        #expect(recovered.recordCount == 0)
        #expect(recovered.notes.isEmpty)
    }

    @Test func aBlankDiskRecoversToNil() throws {
        let disk = MemoryDisk(sectors: 4096)
        #expect(try Recovery.recover(deviceSectors: disk.sectors, read: disk.reader).get() == nil)
    }

    @Test func recordsSurviveARestartWithoutCrash() throws {
        let (disk, _, _) = try formattedDisk()
        var h = try CrashHarness(disk: disk, seed: 1)
        for _ in 0..<400 { try h.step() }
        try h.settle()
        #expect(h.acked == h.appended)
        let k = try h.recoverAndCheck()
        #expect(k == h.appended)
        #expect(h.writer.stats.checkpoints == 0)  // a fresh writer
    }

    @Test func checkpointsHappenWhenTheJournalFills() throws {
        let (disk, _, _) = try formattedDisk(journalBlocks: 8, window: 2)
        var h = try CrashHarness(disk: disk, seed: 2, bigChance: 10)
        for _ in 0..<600 { try h.step() }
        try h.settle()
        #expect(h.writer.stats.checkpoints >= 3)
        #expect(h.writer.stats.headerWrites == h.writer.stats.checkpoints)
        #expect(h.writer.stats.batchedEntries > 0)
        _ = try h.recoverAndCheck()
    }

    /// The main property: many seeds, several crashes per seed at random steps.
    @Test(arguments: Array(UInt64(0)..<24))
    func crashesNeverLoseAcknowledgedRecords(seedBlock: UInt64) throws {
        for sub in 0..<8 as Range<UInt64> {
            let seed = seedBlock * 8 + sub
            var rng = SplitMix64(seed: seed ^ 0xA5A5)
            let journal: UInt32 = [8, 16, 64][Int(rng.next(below: 3))]
            let window: UInt32 = [1, 2, 4][Int(rng.next(below: 3))]
            let (disk, _, _) = try formattedDisk(journalBlocks: journal, window: window)
            var h = try CrashHarness(disk: disk, seed: seed, bigChance: 8 + rng.next(below: 30))
            for life in 0..<4 {
                let steps = Int(rng.next(below: 250))
                for _ in 0..<steps { try h.step() }
                h.crash()
                do {
                    _ = try h.recoverAndCheck()
                } catch {
                    Issue.record("seed \(seed) (journal \(journal), window \(window)) life \(life) after \(steps) steps: \(error)")
                    return
                }
            }
        }
    }

    /// The random runs reach every situation the recovery rules are about.
    @Test func crashRunsCoverTheInterestingCases() throws {
        var total = CrashHarness.Coverage()
        for seed in 1000..<1060 as Range<UInt64> {
            let (disk, _, _) = try formattedDisk(journalBlocks: 8, window: [1, 2, 4][Int(seed % 3)])
            var h = try CrashHarness(disk: disk, seed: seed, bigChance: 10)
            for _ in 0..<3 {
                for _ in 0..<150 { try h.step() }
                h.crash()
                _ = try h.recoverAndCheck()
            }
            total.add(h.coverage)
        }
        #expect(total.crashes == 180)
        #expect(total.crashesDuringCheckpoint > 0)
        #expect(total.crashesDuringHeaderWrite > 0)
        #expect(total.tornWrites > 0)
        #expect(total.multiBlockEntries > 0)
        #expect(total.unacknowledgedRecordsLost > 0)
        #expect(total.unacknowledgedRecordsSurvived > 0)
        #expect(total.staleJournalTails > 0)
        #expect(total.olderCheckpointUsed > 0)
        #expect(total.checkpointsWritten > 100)
        print("crash coverage: \(total)")
    }

    /// Crash exactly at every step of one run (including in the middle of checkpoints).
    @Test func everyCrashPointOfOneRun() throws {
        let (disk, _, _) = try formattedDisk(journalBlocks: 8, window: 2)
        let steps = 200
        for crashAt in 0..<steps {
            var h = try CrashHarness(disk: disk, seed: 4242, bigChance: 12)
            for _ in 0..<crashAt { try h.step() }
            h.crash()
            do {
                _ = try h.recoverAndCheck()
                // And the restarted writer keeps working.
                for _ in 0..<30 { try h.step() }
                h.crash()
                _ = try h.recoverAndCheck()
            } catch {
                Issue.record("crash at step \(crashAt): \(error)")
                return
            }
        }
    }

    @Test func persistsCompleteInOrderEvenWhenWritesCompleteOutOfOrder() throws {
        let (disk, _, _) = try formattedDisk(journalBlocks: 64, window: 8)
        var h = try CrashHarness(disk: disk, seed: 9)
        for _ in 0..<50 { h.append(); h.issue() }
        // Complete the newest writes first: nothing may be reported until the oldest lands.
        h.inFlight.sort { $0.id > $1.id }
        while h.inFlight.count > 1 {
            let w = h.inFlight.removeFirst()
            h.disk.apply(w)
            h.writer.completed(id: w.id, ok: true)
            #expect(h.writer.takeCompletions().isEmpty)
        }
        try h.completeOne()
        #expect(h.acked > 0)
        try h.settle()
        #expect(h.acked == h.appended)
    }

    @Test func aFailedWriteFailsItAndEverythingAfterInOrder() throws {
        let (disk, _, _) = try formattedDisk(journalBlocks: 64, window: 8)
        var h = try CrashHarness(disk: disk, seed: 10, bigChance: 1000)
        for _ in 0..<3 { h.append(); h.issue() }
        let first = h.inFlight.removeFirst()
        h.disk.apply(first)
        h.writer.completed(id: first.id, ok: true)
        let second = h.inFlight.removeFirst()
        h.writer.completed(id: second.id, ok: false)
        h.append()
        h.issue()
        #expect(h.writer.failure?.kind == .io)
        let completions = h.writer.takeCompletions()
        #expect(completions.map(\.ok).first == true)
        #expect(completions.dropFirst().allSatisfy { !$0.ok })
        #expect(completions.map(\.tag.raw) == completions.map(\.tag.raw).sorted())
        #expect(completions.count == 4)
    }

    @Test func anUnappliableRecordIsRefusedNotTrappedOn() throws {
        let (disk, _, _) = try formattedDisk()
        var h = try CrashHarness(disk: disk, seed: 11)
        h.writer.append(tag: PersistTag(77), record: PersistRecord([.setDirty(member: 1, chunks: [64])]))
        let c = h.writer.takeCompletions()
        #expect(c == [PersistCompletion(tag: PersistTag(77), ok: false)])
        #expect(h.writer.failure?.message.contains("chunk 64 outside the 64 chunks") == true)
        // A fifth dirty map does not fit the layout's four.
        var h2 = try CrashHarness(disk: disk, seed: 12)
        h2.writer.append(tag: PersistTag(1), record: PersistRecord((1...5).map { .setAllDirty(member: $0) }))
        #expect(h2.writer.takeCompletions().first?.ok == false)
        #expect(h2.writer.failure?.message.contains("room for 4") == true)
    }
}
