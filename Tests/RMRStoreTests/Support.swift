import RMRCore
import RMRFormat

// Test support: an in-memory block device with crash semantics, and seeded generators of
// states and persist records. Pure: no IO, no clock; a seed reproduces a run.

/// A device of 512-byte sectors. A write that completes is durable; at a crash every write
/// still in flight is dropped, applied, or torn (an arbitrary subset of its sectors lands).
struct MemoryDisk {
    var bytes: [UInt8]
    /// Writes applied, for "nothing was written" checks.
    var writesApplied = 0

    init(sectors: UInt64) { bytes = [UInt8](repeating: 0, count: Int(sectors) * 512) }
    var sectors: UInt64 { UInt64(bytes.count / 512) }

    func read(_ first: UInt64, _ count: Int) -> Result<[UInt8], FormatError> {
        let lo = Int(first) * 4096
        let hi = lo + count * 4096
        guard hi <= bytes.count else { return .failure(FormatError(.io, "read beyond the memory disk")) }
        return .success(Array(bytes[lo..<hi]))
    }
    var reader: BlockReader { { self.read($0, $1) } }

    mutating func apply(_ w: MetadataWrite) {
        let lo = Int(w.block) * 4096
        bytes.replaceSubrange(lo..<(lo + w.bytes.count), with: w.bytes)
        writesApplied += 1
    }
    /// Applies a random subset of the write's sectors (possibly none, possibly all).
    mutating func tear(_ w: MetadataWrite, rng: inout SplitMix64) {
        let lo = Int(w.block) * 4096
        for s in 0..<(w.bytes.count / 512) where rng.next() & 1 == 0 {
            bytes.replaceSubrange((lo + s * 512)..<(lo + s * 512 + 512), with: w.bytes[(s * 512)..<(s * 512 + 512)])
        }
        writesApplied += 1
    }
    mutating func apply(plan: [[MetadataWrite]]) { for phase in plan { for w in phase { apply(w) } } }

    /// Flips one bit of block `block` at byte `offset`.
    mutating func flip(block: UInt64, offset: Int) { bytes[Int(block) * 4096 + offset] ^= 0x10 }
}

enum Gen {
    static func state(poolName: String = "ionos_pool", member: MemberID = 1, chunkBytes: UInt64 = 4096,
                      mappedSectors: UInt64 = 512, deviceSectors: UInt64) -> DurablePoolState {
        DurablePoolState(poolName: poolName, poolUUID: PoolUUID(high: 0x1234_5678_9ABC_DEF0, low: 0x0FED_CBA9_8765_4321),
                         member: member, chunkBytes: chunkBytes, mappedSectors: mappedSectors, deviceSectors: deviceSectors)
    }

    static func chunks(_ rng: inout SplitMix64, count: UInt64, max n: Int) -> [ChunkIndex] {
        let k = 1 + Int(rng.next(below: UInt64(n)))
        return (0..<k).map { _ in rng.next(below: count) }
    }

    static func runs(_ rng: inout SplitMix64, count: UInt64) -> [ChunkRun] {
        var out: [ChunkRun] = []
        var c = rng.next(below: 8)
        while c < count && out.count < 40 {
            let len = 1 + rng.next(below: min(16, count - c))
            out.append(ChunkRun(start: c, count: len))
            c += len + 1 + rng.next(below: 12)
        }
        return out
    }

    /// A random update valid for `state` (maps for members 1...4, chunks in range).
    static func update(_ rng: inout SplitMix64, _ state: DurablePoolState, bigChance: UInt64 = 20) -> MetadataUpdate {
        let count = state.geometry.chunkCount
        let member = MemberID(1 + rng.next(below: 4))
        // Now and then a list long enough to need two journal blocks (more than a window of
        // one block: such a record goes into a checkpoint).
        let maxList = rng.next(below: bigChance) == 0 ? 5000 : 12
        switch rng.next(below: 11) {
        case 0, 1: return .setDirty(member: member, chunks: chunks(&rng, count: count, max: maxList))
        case 2: return .clearDirty(member: member, chunks: chunks(&rng, count: count, max: maxList))
        case 3: return .setAllDirty(member: member)
        case 4: return .replaceMap(member: member, runs: runs(&rng, count: count))
        case 5: return .dropMap(member: member)
        case 6, 7: return .addIntents(chunks(&rng, count: count, max: 12))
        case 8: return .removeIntents(chunks(&rng, count: count, max: 6))
        case 9: return .clearIntents
        default:
            var h = state.storeHeader
            h.mapVersion = h.mapVersion.incremented()
            h.storeMapped = rng.next() & 1 == 0
            h.markedCreate = false
            h.members = Array(Set([state.member, member])).sorted()
            return .header(h)
        }
    }

    /// A random record and the state after it.
    static func record(_ rng: inout SplitMix64, _ state: DurablePoolState, bigChance: UInt64 = 20) -> (PersistRecord, DurablePoolState) {
        var s = state
        var updates: [MetadataUpdate] = []
        for _ in 0..<(1 + Int(rng.next(below: 3))) {
            let u = update(&rng, s, bigChance: bigChance)
            s.apply(u)
            updates.append(u)
        }
        return (PersistRecord(updates), s)
    }
}

extension DurablePoolState {
    func applying(_ record: PersistRecord) -> DurablePoolState {
        var s = self
        for u in record.updates { s.apply(u) }
        return s
    }
}

/// Drives a MetadataWriter against a MemoryDisk with random interleaving of appends, issues
/// and out-of-order completions, and crashes at a chosen step.
struct CrashHarness {
    var disk: MemoryDisk
    var rng: SplitMix64
    var writer: MetadataWriter
    var inFlight: [MetadataWrite] = []
    /// expected[k] = the state after the first k records of the whole history.
    var expected: [DurablePoolState]
    /// Records acknowledged ok (they are a prefix: completions come in order).
    var acked = 0
    var nextTag: UInt64 = 0
    /// Tag raw value -> record index in `expected` history.
    var tagIndex: [UInt64: Int] = [:]
    var lastCompletedIndex = -1
    var bigChance: UInt64
    var coverage = Coverage()

    /// Which interesting situations a run reached (so the property cannot pass vacuously).
    struct Coverage {
        var crashes = 0
        var crashesDuringCheckpoint = 0
        var crashesDuringHeaderWrite = 0
        var tornWrites = 0
        var multiBlockEntries = 0
        var unacknowledgedRecordsLost = 0
        var unacknowledgedRecordsSurvived = 0
        var staleJournalTails = 0
        var olderCheckpointUsed = 0
        var checkpointsWritten: UInt64 = 0
        mutating func add(_ o: Coverage) {
            crashes += o.crashes
            crashesDuringCheckpoint += o.crashesDuringCheckpoint
            crashesDuringHeaderWrite += o.crashesDuringHeaderWrite
            tornWrites += o.tornWrites
            multiBlockEntries += o.multiBlockEntries
            unacknowledgedRecordsLost += o.unacknowledgedRecordsLost
            unacknowledgedRecordsSurvived += o.unacknowledgedRecordsSurvived
            staleJournalTails += o.staleJournalTails
            olderCheckpointUsed += o.olderCheckpointUsed
            checkpointsWritten += o.checkpointsWritten
        }
    }

    init(disk: MemoryDisk, seed: UInt64, bigChance: UInt64 = 20) throws {
        self.disk = disk
        rng = SplitMix64(seed: seed)
        let recovered = try Recovery.recoverDetailed(deviceSectors: disk.sectors, read: disk.reader).get()!
        writer = MetadataWriter(recovered: recovered)
        expected = [recovered.state]
        acked = 0
        self.bigChance = bigChance
    }

    var appended: Int { expected.count - 1 }

    mutating func append() {
        let (record, after) = Gen.record(&rng, expected.last!, bigChance: bigChance)
        let tag = PersistTag(nextTag)
        tagIndex[nextTag] = expected.count - 1
        nextTag += 1
        expected.append(after)
        writer.append(tag: tag, record: record)
        precondition(writer.failure != nil || writer.state == expected.last!, "writer state diverged from the model")
    }

    mutating func issue() {
        let writes = writer.takeWrites()
        coverage.multiBlockEntries += writes.filter { $0.purpose == .journal && $0.blockCount > 1 }.count
        inFlight += writes
    }

    /// Completes one in-flight write (any of them: the device reorders).
    mutating func completeOne() throws {
        guard !inFlight.isEmpty else { return }
        let w = inFlight.remove(at: Int(rng.next(below: UInt64(inFlight.count))))
        disk.apply(w)
        writer.completed(id: w.id, ok: true)
        try collect()
    }

    mutating func collect() throws {
        for c in writer.takeCompletions() {
            guard let index = tagIndex[c.tag.raw] else { throw HarnessError("completion for unknown tag \(c.tag.raw)") }
            guard index == lastCompletedIndex + 1 else {
                throw HarnessError("persist \(index) completed after \(lastCompletedIndex): out of order")
            }
            guard c.ok else { throw HarnessError("persist \(index) failed") }
            lastCompletedIndex = index
            acked = index + 1
        }
    }

    /// One random step.
    mutating func step(appendWeight: UInt64 = 4) throws {
        switch rng.next(below: 10) {
        case 0..<appendWeight: append()
        case appendWeight..<(appendWeight + 2): issue()
        default: try completeOne()
        }
    }

    /// Crash: each in-flight write is dropped, applied or torn.
    mutating func crash() {
        // Half the crashes come right after an issue, so that writes are in flight.
        if rng.next() & 1 == 0 { issue() }
        coverage.crashes += 1
        if inFlight.contains(where: { $0.purpose == .checkpoint }) { coverage.crashesDuringCheckpoint += 1 }
        if inFlight.contains(where: { $0.purpose == .header }) { coverage.crashesDuringHeaderWrite += 1 }
        coverage.checkpointsWritten += writer.stats.checkpoints
        for w in inFlight {
            switch rng.next(below: 3) {
            case 0: break
            case 1: disk.apply(w)
            default: disk.tear(w, rng: &rng); coverage.tornWrites += 1
            }
        }
        inFlight = []
    }

    /// Recovers and checks: the state is the one after some record k with acked <= k <= appended.
    /// Returns k, and restarts the writer from the recovered metadata.
    mutating func recoverAndCheck() throws -> Int {
        let recovered: RecoveredMetadata
        switch Recovery.recoverDetailed(deviceSectors: disk.sectors, read: disk.reader) {
        case .success(let r?): recovered = r
        case .success(nil): throw HarnessError("recovery found a blank disk")
        case .failure(let e): throw HarnessError("recovery failed: \(e.message)")
        }
        let k = Int(recovered.recordCount)
        guard k >= acked, k <= appended else {
            throw HarnessError("recovered \(k) records; \(acked) were acknowledged, \(appended) appended")
        }
        guard expected[k] == recovered.state else {
            throw HarnessError("recovered state differs from the state after its \(k) records (acked \(acked))")
        }
        if k < appended { coverage.unacknowledgedRecordsLost += 1 }
        if k > acked { coverage.unacknowledgedRecordsSurvived += 1 }
        if recovered.journalTailHasStaleBlocks { coverage.staleJournalTails += 1 }
        if recovered.notes.contains(where: { $0.hasPrefix("checkpoint: used") }) { coverage.olderCheckpointUsed += 1 }
        expected.removeSubrange((k + 1)...)
        acked = k
        lastCompletedIndex = k - 1
        tagIndex = tagIndex.filter { $0.value < k }
        writer = MetadataWriter(recovered: recovered)
        return k
    }

    /// Runs until every accepted record is durable.
    mutating func settle() throws {
        var guardSteps = 0
        while !writer.isIdle || !inFlight.isEmpty {
            issue()
            try completeOne()
            guardSteps += 1
            if guardSteps > 100_000 { throw HarnessError("writer does not settle") }
        }
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// A formatted memory disk: mapped 512 sectors (64 chunks of 4 KiB), a small journal so that
/// checkpoints happen often.
func formattedDisk(journalBlocks: UInt32 = 16, window: UInt32 = 4, mappedSectors: UInt64 = 512,
                   chunkBytes: UInt64 = 4096, nonce: UInt64 = 0xC0FFEE) throws -> (MemoryDisk, DurablePoolState, MetadataLayout) {
    let layout = try MetadataLayout(dataSectors: mappedSectors, chunkBytes: chunkBytes,
                                    journalBlocks: journalBlocks, journalWindowBlocks: window)
    var disk = MemoryDisk(sectors: layout.requiredSectors)
    let state = Gen.state(chunkBytes: chunkBytes, mappedSectors: mappedSectors, deviceSectors: disk.sectors)
    disk.apply(plan: try FormatPlan.format(state, deviceSectors: disk.sectors, nonce: nonce,
                                           journalBlocks: journalBlocks, journalWindowBlocks: window))
    return (disk, state, layout)
}
