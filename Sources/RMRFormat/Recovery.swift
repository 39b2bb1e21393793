import RMRCore

/// Reads `count` blocks of 4096 bytes starting at block `first`; `.failure` with `.io` when the
/// device cannot be read. The real store passes an O_DIRECT pread; tests pass a memory disk.
public typealias BlockReader = (_ first: UInt64, _ count: Int) -> Result<[UInt8], FormatError>

/// Everything recovery learned: the state plus where the writer continues.
public struct RecoveredMetadata: Hashable, Sendable {
    /// The newest readable header copy.
    public var header: HeaderBlock
    /// Checkpoint + replayed journal.
    public var state: DurablePoolState
    /// Generation and slot of the checkpoint the journal continues.
    public var generation: UInt64
    public var slot: Int
    /// Records durable since format (checkpoint's count + replayed).
    public var recordCount: UInt64
    /// First journal position not replayed.
    public var journalEnd: UInt32
    public var entriesReplayed: Int
    /// Sealed blocks of the recovered generation lie at or after `journalEnd` (left in flight
    /// by a crash). New records must not go to this generation: a later recovery could replay
    /// those stale blocks after the new ones. The writer then starts with a checkpoint.
    public var journalTailHasStaleBlocks: Bool
    /// Damage that recovery tolerated because a crash explains it (a torn header copy, a
    /// torn newer checkpoint, a torn journal tail).
    public var notes: [String]
}

/// Recovery: newest valid header copy → newest valid checkpoint slot → journal replay in
/// position order until the first block that is not the next one. Every fallback a crash
/// cannot explain is an error; corrupt metadata is reported, never silently used.
public enum Recovery {
    /// The replay function: nil for a blank device (both header copies all zero).
    public static func recover(deviceSectors: UInt64, read: BlockReader) -> Result<DurablePoolState?, FormatError> {
        recoverDetailed(deviceSectors: deviceSectors, read: read).map { $0?.state }
    }

    public static func recoverDetailed(deviceSectors: UInt64, read: BlockReader) -> Result<RecoveredMetadata?, FormatError> {
        do {
            return .success(try run(deviceSectors: deviceSectors, read: read))
        } catch {
            return .failure(error)
        }
    }

    static func readBlocks(_ read: BlockReader, _ first: UInt64, _ count: Int) throws(FormatError) -> [UInt8] {
        let bytes = try read(first, count).get()
        guard bytes.count == count * blockSize else {
            throw FormatError(.io, "short read of blocks \(first)..<\(first + UInt64(count)): \(bytes.count) bytes")
        }
        return bytes
    }

    static func run(deviceSectors: UInt64, read: BlockReader) throws(FormatError) -> RecoveredMetadata? {
        // A device too small for the two header copies cannot hold metadata: it is blank.
        guard deviceSectors >= MetadataLayout.dataOffsetSectors else { return nil }
        var notes: [String] = []
        guard let header = try readHeader(read, notes: &notes) else { return nil }
        let layout = header.layout
        guard deviceSectors >= layout.requiredSectors else {
            throw FormatError(.doesNotFit, "device has \(deviceSectors) sectors but its metadata ends at sector \(layout.requiredSectors) (device shrunk?)")
        }
        let checkpoint = try readCheckpoint(read, header: header, notes: &notes)
        var state = checkpoint.state
        guard state.chunkBytes == layout.chunkBytes, state.mappedSectors <= layout.dataSectors else {
            throw FormatError(.corrupt, "checkpoint generation \(checkpoint.generation): geometry (chunk \(state.chunkBytes), mapped \(state.mappedSectors)) does not match the header's layout")
        }
        let replay = try replayJournal(read, header: header, generation: checkpoint.generation,
                                       firstSequence: checkpoint.recordCount, state: &state, notes: &notes)
        return RecoveredMetadata(header: header, state: state, generation: checkpoint.generation, slot: checkpoint.slot,
                                 recordCount: replay.sequence, journalEnd: replay.end,
                                 entriesReplayed: replay.entries, journalTailHasStaleBlocks: replay.staleTail,
                                 notes: notes)
    }

    // MARK: header

    /// The newest readable header copy, nil for blank header blocks.
    public static func readHeader(_ read: BlockReader, notes: inout [String]) throws(FormatError) -> HeaderBlock? {
        let bytes = try readBlocks(read, 0, MetadataLayout.headerCopies)
        var classes: [BlockClass] = []
        var valid: [HeaderBlock] = []
        var reasons: [String] = []
        for copy in 0..<MetadataLayout.headerCopies {
            let block = bytes[(copy * blockSize)..<((copy + 1) * blockSize)]
            let c = BlockSeal.classify(block, magic: BlockMagic.header)
            classes.append(c)
            switch c {
            case .zero: reasons.append("copy \(copy) is empty")
            case .checksumMismatch: reasons.append("checksum mismatch in copy \(copy)")
            case .unsupportedVersion(let v): reasons.append("copy \(copy) has format version \(v)")
            case .foreign(0):
                throw FormatError(.foreign, "header copy \(copy) holds data without a magic number: not an RMR store")
            case .foreign(let magic):
                throw FormatError(.foreign, "foreign magic \(BlockMagic.describe(magic)) in header copy \(copy): not an RMR store")
            case .sealed:
                do {
                    valid.append(try HeaderBlock.decode(block, copy: copy))
                } catch {
                    reasons.append(error.message)
                }
            }
        }
        if classes.allSatisfy({ $0 == .zero }) { return nil }
        if valid.isEmpty {
            for (copy, c) in classes.enumerated() {
                if case .unsupportedVersion(let v) = c {
                    throw FormatError(.unsupportedVersion, "unsupported format version \(v) in header copy \(copy) (this build reads version \(FormatVersion.current))")
                }
            }
            if classes.allSatisfy({ $0 == .checksumMismatch }) {
                throw FormatError(.corrupt, "header checksum mismatch in copy 0 and copy 1")
            }
            throw FormatError(.corrupt, "no readable header: " + reasons.joined(separator: ", "))
        }
        if valid.count == 2 && valid[0].nonce != valid[1].nonce {
            throw FormatError(.corrupt, "header copies belong to different formats (nonce \(valid[0].nonce) and \(valid[1].nonce))")
        }
        let newest = valid.max { $0.sequence < $1.sequence }!
        if valid.count == 1 { notes.append("header: used copy \(newest.copyIndex) (sequence \(newest.sequence)); " + reasons.joined(separator: ", ")) }
        return newest
    }

    // MARK: checkpoint

    struct Checkpoint {
        var generation: UInt64
        var slot: Int
        var recordCount: UInt64
        var state: DurablePoolState
    }

    /// A slot's checkpoint if it is complete and belongs to this format, else why not.
    static func readSlot(_ read: BlockReader, header: HeaderBlock, slot: Int) throws(FormatError) -> Result<(CheckpointHeader, [UInt8]), FormatError> {
        let layout = header.layout
        let start = layout.checkpointSlotStartBlock(slot)
        let first = try readBlocks(read, start, 1)
        switch BlockSeal.classify(first[...], magic: BlockMagic.checkpoint) {
        case .zero: return .failure(FormatError(.corrupt, "slot \(slot) is empty"))
        case .foreign: return .failure(FormatError(.corrupt, "slot \(slot) has no checkpoint magic"))
        case .checksumMismatch: return .failure(FormatError(.corrupt, "slot \(slot) header checksum mismatch"))
        case .unsupportedVersion(let v): return .failure(FormatError(.unsupportedVersion, "slot \(slot) has format version \(v)"))
        case .sealed: break
        }
        let ck = try CheckpointHeader.decode(first[...])
        guard ck.nonce == header.nonce else { return .failure(FormatError(.corrupt, "slot \(slot) is from an earlier format")) }
        guard ck.slot == slot, ck.payloadBlocks <= layout.checkpointSlotBlocks - 1 else {
            return .failure(FormatError(.corrupt, "slot \(slot) header names slot \(ck.slot) and \(ck.payloadBytes) payload bytes"))
        }
        let payloadBlocks = try readBlocks(read, start + 1, Int(ck.payloadBlocks))
        let payload = Array(payloadBlocks.prefix(Int(ck.payloadBytes)))
        guard CRC32C.checksum(payload) == ck.payloadCRC else {
            return .failure(FormatError(.corrupt, "slot \(slot) generation \(ck.generation) payload checksum mismatch"))
        }
        return .success((ck, payload))
    }

    static func readCheckpoint(_ read: BlockReader, header: HeaderBlock, notes: inout [String]) throws(FormatError) -> Checkpoint {
        var best: (CheckpointHeader, [UInt8])?
        var reasons: [String] = []
        for slot in 0..<2 {
            switch try readSlot(read, header: header, slot: slot) {
            case .success(let found):
                if best == nil || found.0.generation > best!.0.generation { best = found }
            case .failure(let why):
                reasons.append(why.message)
            }
        }
        guard let (ck, payload) = best else {
            throw FormatError(.corrupt, "no readable checkpoint: " + reasons.joined(separator: "; "))
        }
        if ck.generation < header.committedGeneration {
            throw FormatError(.corrupt, "checkpoint generation \(header.committedGeneration) (slot \(header.committedSlot)) was committed "
                + "(header sequence \(header.sequence)) but is unreadable: " + reasons.joined(separator: "; "))
        }
        let damage = reasons.filter { !$0.hasSuffix("is empty") && !$0.hasSuffix("earlier format") }
        if !damage.isEmpty { notes.append("checkpoint: used generation \(ck.generation) in slot \(ck.slot); " + damage.joined(separator: "; ")) }
        let state = try CheckpointCoding.decode(payload, context: "checkpoint generation \(ck.generation) in slot \(ck.slot)")
        return Checkpoint(generation: ck.generation, slot: ck.slot, recordCount: ck.recordCount, state: state)
    }

    // MARK: journal

    /// Sealed journal blocks of this format, by position (nil: empty, torn, foreign or stale).
    static func scanJournal(_ read: BlockReader, header: HeaderBlock) throws(FormatError) -> [(JournalBlockHeader, ArraySlice<UInt8>)?] {
        let layout = header.layout
        var out: [(JournalBlockHeader, ArraySlice<UInt8>)?] = []
        out.reserveCapacity(Int(layout.journalBlocks))
        let piece = 256
        var pos = 0
        while pos < Int(layout.journalBlocks) {
            let n = min(piece, Int(layout.journalBlocks) - pos)
            let bytes = try readBlocks(read, layout.journalBlock(UInt32(pos)), n)
            for i in 0..<n {
                let block = bytes[(i * blockSize)..<((i + 1) * blockSize)]
                guard BlockSeal.classify(block, magic: BlockMagic.journal) == .sealed else { out.append(nil); continue }
                let h = try JournalBlockHeader.decode(block)
                let fits = Int(h.payloadBytes) <= JournalBlockHeader.payloadCapacity
                guard h.nonce == header.nonce, h.position == UInt32(pos + i), fits else { out.append(nil); continue }
                let start = block.startIndex + JournalBlockHeader.headerBytes
                out.append((h, block[start..<(start + Int(h.payloadBytes))]))
            }
            pos += n
        }
        return out
    }

    struct Replay { var end: UInt32; var sequence: UInt64; var entries: Int; var staleTail: Bool }

    static func replayJournal(_ read: BlockReader, header: HeaderBlock, generation: UInt64, firstSequence: UInt64,
                              state: inout DurablePoolState, notes: inout [String]) throws(FormatError) -> Replay {
        let layout = header.layout
        let blocks = try scanJournal(read, header: header)
        let n = blocks.count
        var pos = 0
        var sequence = firstSequence
        var entries = 0
        var stopReason = "end of journal"
        entryLoop: while pos < n {
            guard let (h, firstPayload) = blocks[pos], h.generation == generation else {
                stopReason = "position \(pos) holds no block of generation \(generation)"
                break
            }
            let context = "journal entry at position \(pos) (generation \(generation))"
            guard h.partIndex == 0, h.partCount >= 1, pos + Int(h.partCount) <= n else {
                throw FormatError(.corrupt, "\(context): part \(h.partIndex) of \(h.partCount) where an entry must start")
            }
            guard h.firstRecordSequence == sequence else {
                throw FormatError(.corrupt, "\(context): record sequence \(h.firstRecordSequence), expected \(sequence)")
            }
            var payload = Array(firstPayload)
            for part in 1..<Int(h.partCount) {
                guard let (p, more) = blocks[pos + part], p.generation == generation, p.partIndex == UInt16(part),
                      p.partCount == h.partCount, p.firstRecordSequence == sequence else {
                    // A multi-block entry missing a part was in flight at the crash.
                    stopReason = "\(context): part \(part) of \(h.partCount) missing or torn"
                    break entryLoop
                }
                payload += more
            }
            var r = ByteReader(payload, context: context)
            for _ in 0..<h.recordCount {
                let record = try RecordCoding.decodeRecord(&r)
                for u in record.updates {
                    if let problem = RecordCoding.problem(applying: u, to: state, layout: layout) {
                        throw FormatError(.corrupt, "\(context): cannot apply \(u): \(problem)")
                    }
                    state.apply(u)
                }
            }
            guard r.isAtEnd else { throw FormatError(.corrupt, "\(context): \(r.remaining) bytes after \(h.recordCount) records") }
            sequence += UInt64(h.recordCount)
            pos += Int(h.partCount)
            entries += 1
        }
        // The writer issues position q only after every position <= q - window is durable. A
        // block of this generation at q >= end + window therefore proves that `end` was durable
        // and has since been damaged: acknowledged metadata is missing.
        let window = Int(layout.journalWindowBlocks)
        var staleTail = false
        for q in pos..<n {
            guard let (h, _) = blocks[q] else { continue }
            if h.generation == generation { staleTail = true }
            if h.generation > generation {
                throw FormatError(.corrupt, "journal block at position \(q) has generation \(h.generation), newer than the newest readable checkpoint \(generation): a committed checkpoint is lost")
            }
            if h.generation == generation && q >= pos + window {
                throw FormatError(.corrupt, "journal position \(pos) (generation \(generation)) is unreadable but position \(q) was written after it was durable: acknowledged records lost (\(stopReason))")
            }
        }
        if pos < n && stopReason.contains("torn") { notes.append("journal: stopped at position \(pos): \(stopReason)") }
        return Replay(end: UInt32(pos), sequence: sequence, entries: entries, staleTail: staleTail)
    }
}

/// The replay function as a free function (`recover(blocks reader)` of the format spec).
public func recover(deviceSectors: UInt64, read: BlockReader) -> Result<DurablePoolState?, FormatError> {
    Recovery.recover(deviceSectors: deviceSectors, read: read)
}

/// Checks of `add_store mode=add` that need the metadata: the disk must belong to the named
/// pool and have the requested mapped size. The core decides; this names what is wrong.
public enum StoreValidation {
    public static func checkAdd(_ state: DurablePoolState, pool: String, mappedSectors: UInt64) -> FormatError? {
        if state.poolName != pool {
            return FormatError(.mismatch, "pool name mismatch: the disk belongs to pool '\(state.poolName)', the command names '\(pool)'")
        }
        if state.mappedSectors != mappedSectors {
            return FormatError(.mismatch, "mapped_size mismatch: the disk has \(state.mappedSectors) sectors, the command asks for \(mappedSectors)")
        }
        return nil
    }
}
