import RMRCore

/// A write of whole 4096-byte blocks the driver must perform (and report back by `id`).
public struct MetadataWrite: Hashable, Sendable {
    public enum Purpose: String, Hashable, Sendable { case journal, checkpoint, header, format, wipe }
    public var id: UInt64
    /// First block (4096-byte units from the start of the device).
    public var block: UInt64
    /// A multiple of 4096 bytes.
    public var bytes: [UInt8]
    public var purpose: Purpose
    public init(id: UInt64, block: UInt64, bytes: [UInt8], purpose: Purpose) {
        precondition(bytes.count % blockSize == 0 && !bytes.isEmpty, "metadata write of \(bytes.count) bytes")
        self.id = id
        self.block = block
        self.bytes = bytes
        self.purpose = purpose
    }
    public var blockCount: Int { bytes.count / blockSize }
}

public struct PersistCompletion: Hashable, Sendable {
    public var tag: PersistTag
    public var ok: Bool
    public init(tag: PersistTag, ok: Bool) { self.tag = tag; self.ok = ok }
}

/// Turns persist records into journal, checkpoint and header block writes, and write
/// completions into persist completions. Pure: the real store and the simulator's disk model
/// drive the same code, so a crash in either recovers through `Recovery`.
///
/// Call order for a driver: `append` records as the core emits them; `takeWrites()` at the end
/// of the event-loop turn (records appended in the same turn share journal blocks); perform
/// the writes (each must be durable before it is reported); `completed(id:ok:)` per write, then
/// `takeCompletions()` and `takeWrites()` again.
///
/// Guarantees (checked by the crash tests):
/// * Completions come out in append order; a record is reported ok only when it and every
///   record before it are durable (journal entry or checkpoint written).
/// * At most `journalWindowBlocks` journal blocks past the first incomplete one are in flight,
///   which lets recovery tell a crash's torn tail from lost acknowledged records.
/// * Journal blocks of a generation are written only after that generation's checkpoint is
///   durable; the next checkpoint waits for every journal write and the header write.
/// * After a failed write every unresolved and later record is reported failed.
public struct MetadataWriter: Sendable {
    public struct Stats: Hashable, Sendable {
        public init() {}
        public var recordsAccepted: UInt64 = 0
        public var journalWrites: UInt64 = 0
        public var journalBlocks: UInt64 = 0
        /// Journal entries that carry more than one record.
        public var batchedEntries: UInt64 = 0
        public var checkpoints: UInt64 = 0
        public var checkpointBlocks: UInt64 = 0
        public var headerWrites: UInt64 = 0
        /// Block writes of any kind (what a metadata IO counter shows).
        public var metadataWrites: UInt64 { journalWrites + checkpointWriteCalls + headerWrites }
        public var checkpointWriteCalls: UInt64 = 0
    }

    /// Largest single write a checkpoint is cut into (1 MiB).
    public static let maxWriteBlocks = 256

    public let layout: MetadataLayout
    /// The newest header issued (durable once no header write is in flight).
    public private(set) var header: HeaderBlock
    /// All accepted records applied: what the disk will hold once everything completes.
    public private(set) var state: DurablePoolState
    public private(set) var failure: FormatError?
    public private(set) var stats = Stats()
    public private(set) var generation: UInt64
    public private(set) var slot: Int

    private enum UnitKind { case journal, checkpoint(generation: UInt64, slot: Int, recordCount: UInt64, store: StoreHeader), refused }
    private struct Unit {
        var tags: [PersistTag]
        var outstanding: Int
        var failed: Bool
        var kind: UnitKind
    }
    private struct InFlight {
        var unit: UInt64?
        var purpose: MetadataWrite.Purpose
        var firstPosition: UInt32
        var positions: UInt32
    }

    private var nextPosition: UInt32
    /// Lowest journal position of this generation not yet durable.
    private var completedPrefix: UInt32
    private var completedPositions: [Bool]
    /// Sequence number of the next record to go into a journal entry or checkpoint.
    private var nextSequence: UInt64
    private var pending: [(tag: PersistTag, bytes: [UInt8])] = []
    private var pendingHead = 0
    /// Units by number, resolved strictly in order.
    private var units: [UInt64: Unit] = [:]
    private var nextUnit: UInt64 = 0
    private var headUnit: UInt64 = 0
    private var inFlight: [UInt64: InFlight] = [:]
    private var nextWriteID: UInt64 = 1
    private var journalWritesInFlight = 0
    private var needCheckpoint: Bool
    private var checkpointInFlight = false
    private var headerWriteInFlight = false
    private var headerWanted: StoreHeader?
    private var ready: [PersistCompletion] = []

    /// Continues the metadata recovery found. Starts with a checkpoint when the journal tail
    /// holds stale blocks of the recovered generation (see `RecoveredMetadata`).
    public init(recovered: RecoveredMetadata) {
        layout = recovered.header.layout
        header = recovered.header
        state = recovered.state
        generation = recovered.generation
        slot = recovered.slot
        nextPosition = recovered.journalEnd
        completedPrefix = recovered.journalEnd
        completedPositions = [Bool](repeating: false, count: Int(layout.journalBlocks))
        for p in 0..<Int(recovered.journalEnd) { completedPositions[p] = true }
        nextSequence = recovered.recordCount
        needCheckpoint = recovered.journalTailHasStaleBlocks
    }

    /// Nothing pending, in flight or unreported.
    public var isIdle: Bool {
        pendingHead == pending.count && units.isEmpty && inFlight.isEmpty && headerWanted == nil && ready.isEmpty
    }
    public var writesInFlight: Int { inFlight.count }

    /// Queues a record. Applied to `state` at once; durable when its completion says ok.
    public mutating func append(tag: PersistTag, record: PersistRecord) {
        stats.recordsAccepted += 1
        guard failure == nil else {
            addUnit(Unit(tags: [tag], outstanding: 0, failed: true, kind: .refused))
            resolve()
            return
        }
        for u in record.updates {
            if let problem = RecordCoding.problem(applying: u, to: state, layout: layout) {
                // The core asked for something the disk cannot hold; stop writing metadata
                // rather than record a state recovery would refuse.
                fail(FormatError(.unencodable, "persist \(tag.raw) refused: \(problem)"))
                addUnit(Unit(tags: [tag], outstanding: 0, failed: true, kind: .refused))
                resolve()
                return
            }
            state.apply(u)
        }
        pending.append((tag, RecordCoding.encode(record)))
    }

    /// Requests a checkpoint at the next opportunity (tests; compaction before a long idle).
    public mutating func requestCheckpoint() { needCheckpoint = true }

    public mutating func takeCompletions() -> [PersistCompletion] {
        defer { ready.removeAll(keepingCapacity: true) }
        return ready
    }

    /// The writes that may be issued now.
    public mutating func takeWrites() -> [MetadataWrite] {
        var out: [MetadataWrite] = []
        guard failure == nil else { return out }
        if let store = headerWanted, !headerWriteInFlight {
            issueHeader(store, into: &out)
        }
        if checkpointInFlight { return out }
        while true {
            if needCheckpoint {
                if journalWritesInFlight == 0 && !headerWriteInFlight && headerWanted == nil {
                    startCheckpoint(into: &out)
                }
                return out
            }
            guard pendingHead < pending.count else { break }
            // Batch the records that fit one block; a larger record gets an entry of its own.
            var count = 1
            var bytes = pending[pendingHead].bytes.count
            while pendingHead + count < pending.count,
                  bytes + pending[pendingHead + count].bytes.count <= JournalBlockHeader.payloadCapacity {
                bytes += pending[pendingHead + count].bytes.count
                count += 1
            }
            let blocks = UInt32(JournalBlockHeader.blocksNeeded(payloadBytes: bytes))
            if blocks > layout.journalWindowBlocks || nextPosition + blocks > layout.journalBlocks {
                // Too big for any entry, or the ring is full: the next checkpoint carries it.
                needCheckpoint = true
                continue
            }
            guard nextPosition + blocks <= completedPrefix + layout.journalWindowBlocks else { break }
            issueEntry(records: count, blocks: blocks, into: &out)
        }
        compactPending()
        return out
    }

    /// A write finished; `ok` only if it is durable.
    public mutating func completed(id: UInt64, ok: Bool) {
        guard let w = inFlight.removeValue(forKey: id) else {
            preconditionFailure("completion for unknown metadata write \(id)")
        }
        if w.purpose == .journal { journalWritesInFlight -= 1 }
        if w.purpose == .header { headerWriteInFlight = false }
        guard failure == nil else { return }
        guard ok else {
            fail(FormatError(.io, "\(w.purpose.rawValue) write failed"))
            resolve()
            return
        }
        switch w.purpose {
        case .journal:
            for p in w.firstPosition..<(w.firstPosition + w.positions) { completedPositions[Int(p)] = true }
            while completedPrefix < layout.journalBlocks && completedPositions[Int(completedPrefix)] { completedPrefix += 1 }
        case .checkpoint, .header, .format, .wipe:
            break
        }
        if let n = w.unit {
            units[n]!.outstanding -= 1
            if units[n]!.outstanding == 0, case .checkpoint(let g, let s, let count, let store) = units[n]!.kind {
                // The new generation is durable: its journal starts empty at position 0.
                generation = g
                slot = s
                nextSequence = count
                nextPosition = 0
                completedPrefix = 0
                for i in completedPositions.indices { completedPositions[i] = false }
                checkpointInFlight = false
                headerWanted = store
            }
        }
        resolve()
    }

    // MARK: internals

    private mutating func addUnit(_ u: Unit) {
        units[nextUnit] = u
        nextUnit += 1
    }

    private mutating func newWrite(block: UInt64, bytes: [UInt8], purpose: MetadataWrite.Purpose, unit: UInt64?,
                                   firstPosition: UInt32 = 0, positions: UInt32 = 0) -> MetadataWrite {
        let id = nextWriteID
        nextWriteID += 1
        inFlight[id] = InFlight(unit: unit, purpose: purpose, firstPosition: firstPosition, positions: positions)
        return MetadataWrite(id: id, block: block, bytes: bytes, purpose: purpose)
    }

    private mutating func issueEntry(records count: Int, blocks: UInt32, into out: inout [MetadataWrite]) {
        let slice = pending[pendingHead..<(pendingHead + count)]
        let bytes = JournalBlockHeader.entryBlocks(nonce: header.nonce, generation: generation, position: nextPosition,
                                                   firstRecordSequence: nextSequence, records: slice.map(\.bytes))
        precondition(bytes.count == Int(blocks) * blockSize, "journal entry size")
        let unit = nextUnit
        addUnit(Unit(tags: slice.map(\.tag), outstanding: 1, failed: false, kind: .journal))
        out.append(newWrite(block: layout.journalBlock(nextPosition), bytes: bytes, purpose: .journal, unit: unit,
                            firstPosition: nextPosition, positions: blocks))
        journalWritesInFlight += 1
        stats.journalWrites += 1
        stats.journalBlocks += UInt64(blocks)
        if count > 1 { stats.batchedEntries += 1 }
        nextPosition += blocks
        nextSequence += UInt64(count)
        pendingHead += count
    }

    private mutating func startCheckpoint(into out: inout [MetadataWrite]) {
        let payload: [UInt8]
        do {
            payload = try CheckpointCoding.encode(state, layout: layout)
        } catch {
            fail(FormatError(error.kind, "checkpoint refused: \(error.message)"))
            resolve()
            return
        }
        let newGeneration = generation + 1
        let newSlot = 1 - slot
        let tags = pending[pendingHead...].map(\.tag)
        let recordCount = nextSequence + UInt64(tags.count)
        pendingHead = pending.count
        compactPending()
        let bytes = CheckpointHeader.blocks(nonce: header.nonce, generation: newGeneration, recordCount: recordCount,
                                            slot: newSlot, payload: payload)
        let totalBlocks = bytes.count / blockSize
        let pieces = (totalBlocks + MetadataWriter.maxWriteBlocks - 1) / MetadataWriter.maxWriteBlocks
        let unit = nextUnit
        addUnit(Unit(tags: tags, outstanding: pieces, failed: false,
                     kind: .checkpoint(generation: newGeneration, slot: newSlot, recordCount: recordCount, store: state.storeHeader)))
        let start = layout.checkpointSlotStartBlock(newSlot)
        for piece in 0..<pieces {
            let lo = piece * MetadataWriter.maxWriteBlocks
            let hi = min(totalBlocks, lo + MetadataWriter.maxWriteBlocks)
            out.append(newWrite(block: start + UInt64(lo), bytes: Array(bytes[(lo * blockSize)..<(hi * blockSize)]),
                                purpose: .checkpoint, unit: unit))
            stats.checkpointWriteCalls += 1
        }
        stats.checkpoints += 1
        stats.checkpointBlocks += UInt64(totalBlocks)
        checkpointInFlight = true
        needCheckpoint = false
    }

    private mutating func issueHeader(_ store: StoreHeader, into out: inout [MetadataWrite]) {
        var next = header
        next.sequence += 1
        next.committedGeneration = generation
        next.committedSlot = slot
        next.store = store
        next.store.chunkBytes = layout.chunkBytes
        let bytes: [UInt8]
        do {
            bytes = try next.encode()
        } catch {
            fail(error)
            resolve()
            return
        }
        header = next
        headerWanted = nil
        headerWriteInFlight = true
        stats.headerWrites += 1
        out.append(newWrite(block: UInt64(next.copyIndex), bytes: bytes, purpose: .header, unit: nil))
    }

    private mutating func compactPending() {
        if pendingHead == pending.count {
            pending.removeAll(keepingCapacity: true)
            pendingHead = 0
        } else if pendingHead > 1024 {
            pending.removeFirst(pendingHead)
            pendingHead = 0
        }
    }

    private mutating func fail(_ error: FormatError) {
        if failure == nil { failure = error }
        for n in headUnit..<nextUnit { units[n]?.failed = true }
        for p in pending[pendingHead...] { addUnit(Unit(tags: [p.tag], outstanding: 0, failed: true, kind: .refused)) }
        pendingHead = pending.count
        compactPending()
        headerWanted = nil
        needCheckpoint = false
        checkpointInFlight = false
    }

    /// Reports finished units in order.
    private mutating func resolve() {
        while headUnit < nextUnit, let u = units[headUnit], u.failed || u.outstanding == 0 {
            for t in u.tags { ready.append(PersistCompletion(tag: t, ok: !u.failed)) }
            units[headUnit] = nil
            headUnit += 1
        }
    }
}

/// Writes for `create_store` / `wipe`: phases, each durable before the next starts.
public enum FormatPlan {
    /// Fresh metadata for `state` on a device of `deviceSectors`. Throws (before any write is
    /// planned) if the geometry does not fit or the state cannot be encoded.
    /// Phase 1 zeroes both header copies, so a crash mid-format leaves a blank disk, never a
    /// header pointing at half-written metadata. Phase 2 writes checkpoint generation 1 in slot 0
    /// and zeroes slot 1 and the journal. Phase 3 writes both header copies.
    public static func format(_ state: DurablePoolState, deviceSectors: UInt64, nonce: UInt64,
                              journalBlocks: UInt32 = MetadataLayout.defaultJournalBlocks,
                              journalWindowBlocks: UInt32 = MetadataLayout.defaultJournalWindowBlocks) throws(FormatError) -> [[MetadataWrite]] {
        let layout = try MetadataLayout.forDevice(deviceSectors: deviceSectors, mappedSectors: state.mappedSectors,
                                                  chunkBytes: state.chunkBytes, journalBlocks: journalBlocks,
                                                  journalWindowBlocks: journalWindowBlocks)
        let payload = try CheckpointCoding.encode(state, layout: layout)
        var store = state.storeHeader
        store.chunkBytes = layout.chunkBytes
        var ids = IDs()
        let checkpoint = CheckpointHeader.blocks(nonce: nonce, generation: 1, recordCount: 0, slot: 0, payload: payload)
        var phase2 = split(checkpoint, at: layout.checkpointSlotStartBlock(0), purpose: .format, ids: &ids)
        phase2.append(MetadataWrite(id: ids.next(), block: layout.checkpointSlotStartBlock(1),
                                    bytes: [UInt8](repeating: 0, count: blockSize), purpose: .format))
        phase2 += zeroes(from: layout.journalStartBlock, count: UInt64(layout.journalBlocks), purpose: .format, ids: &ids)
        var both: [UInt8] = []
        for copy in 0..<MetadataLayout.headerCopies {
            // Copy 0 holds sequence 2 (the newest), copy 1 sequence 1.
            let h = HeaderBlock(sequence: UInt64(2 - copy), nonce: nonce, deviceSectors: deviceSectors, layout: layout,
                                committedGeneration: 1, committedSlot: 0, store: store)
            both += try h.encode()
        }
        return [
            zeroes(from: 0, count: UInt64(MetadataLayout.headerCopies), purpose: .format, ids: &ids),
            phase2,
            [MetadataWrite(id: ids.next(), block: 0, bytes: both, purpose: .format)],
        ]
    }

    /// Erases the metadata: both header copies first (the disk reads as blank from then on),
    /// then the checkpoint slots and the journal when the layout is known.
    public static func wipe(layout: MetadataLayout?) -> [[MetadataWrite]] {
        var ids = IDs()
        var phases = [zeroes(from: 0, count: UInt64(MetadataLayout.headerCopies), purpose: .wipe, ids: &ids)]
        if let layout {
            phases.append(zeroes(from: layout.metadataStartBlock, count: layout.metadataBlocks, purpose: .wipe, ids: &ids))
        }
        return phases
    }

    struct IDs {
        var value: UInt64 = 0
        mutating func next() -> UInt64 { value += 1; return value }
    }

    static func split(_ bytes: [UInt8], at block: UInt64, purpose: MetadataWrite.Purpose, ids: inout IDs) -> [MetadataWrite] {
        let blocks = bytes.count / blockSize
        var out: [MetadataWrite] = []
        var lo = 0
        while lo < blocks {
            let hi = min(blocks, lo + MetadataWriter.maxWriteBlocks)
            out.append(MetadataWrite(id: ids.next(), block: block + UInt64(lo),
                                     bytes: Array(bytes[(lo * blockSize)..<(hi * blockSize)]), purpose: purpose))
            lo = hi
        }
        return out
    }

    static func zeroes(from block: UInt64, count: UInt64, purpose: MetadataWrite.Purpose, ids: inout IDs) -> [MetadataWrite] {
        var out: [MetadataWrite] = []
        var b: UInt64 = 0
        while b < count {
            let n = min(count - b, UInt64(MetadataWriter.maxWriteBlocks))
            out.append(MetadataWrite(id: ids.next(), block: block + b, bytes: [UInt8](repeating: 0, count: Int(n) * blockSize),
                                     purpose: purpose))
            b += n
        }
        return out
    }
}
