import RMRCore

// The three kinds of 4096-byte metadata block. Each starts with an 8-byte magic, a CRC32C of
// bytes 12..<4096 and the format version; a block whose CRC does not match is torn or corrupt
// and is never used. Byte offsets are listed in Docs/on-disk-format.md.

public enum BlockMagic {
    /// "RMRSTORE", "RMRCHKPT", "RMRJOURN" read as little-endian UInt64.
    public static let header = magic("RMRSTORE")
    public static let checkpoint = magic("RMRCHKPT")
    public static let journal = magic("RMRJOURN")
    static func magic(_ s: StaticString) -> UInt64 {
        precondition(s.utf8CodeUnitCount == 8, "magic must be 8 bytes")
        var v: UInt64 = 0
        for i in 0..<8 { v |= UInt64(s.utf8Start[i]) << (8 * UInt64(i)) }
        return v
    }
    /// "0x... ("EXT4....")" for error messages.
    public static func describe(_ v: UInt64) -> String {
        let hex = String(v, radix: 16)
        var text = ""
        for i in 0..<8 {
            let b = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))
            text.append(b >= 0x20 && b < 0x7F ? Character(Unicode.Scalar(b)) : ".")
        }
        return "0x" + String(repeating: "0", count: 16 - hex.count) + hex + " (\"\(text)\")"
    }
}

public enum FormatVersion {
    public static let current: UInt32 = 1
}

let blockSize = Int(MetadataLayout.blockBytes)
/// Bytes 0..<8 magic, 8..<12 CRC, 12..<16 version: the CRC covers 12..<4096.
let crcCoveredFrom = 12

/// What a raw block turned out to be.
public enum BlockClass: Hashable, Sendable {
    /// All zero: never written, or wiped.
    case zero
    /// The expected magic with a matching checksum and version.
    case sealed
    /// The expected magic but a checksum mismatch: torn or corrupt.
    case checksumMismatch
    /// The expected magic and checksum but a version this code does not read.
    case unsupportedVersion(UInt32)
    /// Some other magic.
    case foreign(UInt64)
}

enum BlockSeal {
    static func seal(_ block: inout [UInt8]) {
        precondition(block.count == blockSize, "metadata block of \(block.count) bytes")
        let crc = block.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[crcCoveredFrom...])) }
        for i in 0..<4 { block[8 + i] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(i))) }
    }

    /// All bytes zero (8 bytes at a time: this runs over every unwritten block at recovery).
    static func isZero(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { raw in
            let words = raw.count / 8
            var acc: UInt64 = 0
            for i in 0..<words { acc |= raw.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) }
            for i in (words * 8)..<raw.count { acc |= UInt64(raw[i]) }
            return acc == 0
        }
    }

    static func classify(_ block: ArraySlice<UInt8>, magic expected: UInt64) -> BlockClass {
        precondition(block.count == blockSize, "metadata block of \(block.count) bytes")
        let b = block.startIndex
        var magic: UInt64 = 0
        for i in 0..<8 { magic |= UInt64(block[b + i]) << (8 * UInt64(i)) }
        if magic != expected {
            if magic == 0 && isZero(block) { return .zero }
            return .foreign(magic)
        }
        var stored: UInt32 = 0
        for i in 0..<4 { stored |= UInt32(block[b + 8 + i]) << (8 * UInt32(i)) }
        let crc = block.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[crcCoveredFrom...])) }
        guard crc == stored else { return .checksumMismatch }
        var version: UInt32 = 0
        for i in 0..<4 { version |= UInt32(block[b + 12 + i]) << (8 * UInt32(i)) }
        guard version == FormatVersion.current else { return .unsupportedVersion(version) }
        return .sealed
    }
}

// MARK: - Header block

/// The header: identity, geometry and the pointer to the committed checkpoint. Two copies
/// (blocks 0 and 1); each update writes the copy `sequence % 2`, so a torn header write can
/// only damage the older copy.
public struct HeaderBlock: Hashable, Sendable {
    public static let maxMembersListed = 16
    public var sequence: UInt64
    /// Chosen at format; every checkpoint and journal block carries it, so blocks left by an
    /// earlier format of the same device are never mistaken for this one's.
    public var nonce: UInt64
    /// Device size at format (sectors). A device may grow, never shrink below the layout.
    public var deviceSectors: UInt64
    public var layout: MetadataLayout
    /// The newest checkpoint known to be durable when this header was written.
    public var committedGeneration: UInt64
    public var committedSlot: Int
    /// `store.chunkBytes` is the layout's chunk size (stored once).
    public var store: StoreHeader

    public init(sequence: UInt64, nonce: UInt64, deviceSectors: UInt64, layout: MetadataLayout,
                committedGeneration: UInt64, committedSlot: Int, store: StoreHeader) {
        self.sequence = sequence
        self.nonce = nonce
        self.deviceSectors = deviceSectors
        self.layout = layout
        self.committedGeneration = committedGeneration
        self.committedSlot = committedSlot
        self.store = store
    }

    public var copyIndex: Int { Int(sequence % 2) }

    public func encode() throws(FormatError) -> [UInt8] {
        let name = Array(store.poolName.utf8)
        guard name.count <= Limits.maxPoolNameBytes else {
            throw FormatError(.unencodable, "pool name of \(name.count) bytes is longer than \(Limits.maxPoolNameBytes)")
        }
        guard store.members.count <= HeaderBlock.maxMembersListed else {
            throw FormatError(.unencodable, "\(store.members.count) members, the header lists at most \(HeaderBlock.maxMembersListed)")
        }
        precondition(store.chunkBytes == layout.chunkBytes, "header chunk size differs from the layout's")
        var w = ByteWriter(capacity: blockSize)
        w.u64(BlockMagic.header)
        w.u32(0)                                    // 8: CRC, sealed below
        w.u32(FormatVersion.current)                // 12
        w.u64(sequence)                             // 16
        w.u64(nonce)                                // 24
        w.u64(deviceSectors)                        // 32
        w.u64(MetadataLayout.dataOffsetSectors)     // 40
        w.u64(layout.dataSectors)                   // 48
        w.u64(layout.chunkBytes)                    // 56
        w.u64(layout.metadataStartBlock)            // 64
        w.u64(layout.checkpointSlotBlocks)          // 72
        w.u32(layout.journalBlocks)                 // 80
        w.u32(layout.journalWindowBlocks)           // 84
        w.u32(layout.maxMembers)                    // 88
        w.u8(UInt8(committedSlot))                  // 92
        w.u8(store.member)                          // 93
        w.u8((store.storeMapped ? 1 : 0) | (store.markedCreate ? 2 : 0))  // 94
        w.u8(UInt8(store.members.count))            // 95
        w.u64(committedGeneration)                  // 96
        w.u64(store.poolUUID.high)                  // 104
        w.u64(store.poolUUID.low)                   // 112
        w.u64(store.mapVersion.raw)                 // 120
        w.u64(store.mappedSectors)                  // 128
        var members = store.members.map { $0 }
        members += [MemberID](repeating: 0, count: HeaderBlock.maxMembersListed - members.count)
        for m in members { w.u8(m) }                // 136..<152
        w.u16(UInt16(name.count))                   // 152
        w.raw(name)                                 // 154..<154+255
        w.pad(to: blockSize)
        var block = w.bytes
        BlockSeal.seal(&block)
        return block
    }

    /// Decodes a block that `BlockSeal.classify` called `.sealed` for the header magic.
    public static func decode(_ block: ArraySlice<UInt8>, copy: Int) throws(FormatError) -> HeaderBlock {
        var r = ByteReader(Array(block), offset: 16, context: "header copy \(copy)")
        let sequence = try r.u64()
        let nonce = try r.u64()
        let deviceSectors = try r.u64()
        let dataOffset = try r.u64()
        let dataSectors = try r.u64()
        let chunkBytes = try r.u64()
        let metadataStart = try r.u64()
        let slotBlocks = try r.u64()
        let journalBlocks = try r.u32()
        let window = try r.u32()
        let maxMembers = try r.u32()
        let slot = try r.u8()
        let member = try r.u8()
        let flags = try r.u8()
        let memberCount = try r.u8()
        let generation = try r.u64()
        let uuid = PoolUUID(high: try r.u64(), low: try r.u64())
        let mapVersion = MapVersion(raw: try r.u64())
        let mappedSectors = try r.u64()
        let membersRaw = try r.raw(maxMembersListed)
        let nameCount = Int(try r.u16())
        guard dataOffset == MetadataLayout.dataOffsetSectors else {
            throw FormatError(.corrupt, "header copy \(copy): data offset \(dataOffset) sectors, this format uses \(MetadataLayout.dataOffsetSectors)")
        }
        guard slot <= 1, flags & ~3 == 0, Int(memberCount) <= maxMembersListed, nameCount <= Limits.maxPoolNameBytes else {
            throw FormatError(.corrupt, "header copy \(copy): field out of range (slot \(slot), state bits \(flags), \(memberCount) members, name \(nameCount) bytes)")
        }
        let layout: MetadataLayout
        do {
            layout = try MetadataLayout(dataSectors: dataSectors, chunkBytes: chunkBytes, maxMembers: maxMembers,
                                        journalBlocks: journalBlocks, journalWindowBlocks: window)
        } catch {
            throw FormatError(.corrupt, "header copy \(copy): layout invalid: \(error.message)")
        }
        guard layout.metadataStartBlock == metadataStart, layout.checkpointSlotBlocks == slotBlocks else {
            throw FormatError(.corrupt, "header copy \(copy): layout inconsistent (metadata at block \(metadataStart), slots of \(slotBlocks) blocks; computed \(layout.metadataStartBlock), \(layout.checkpointSlotBlocks))")
        }
        guard let name = String(validating: try r.raw(nameCount), as: UTF8.self) else {
            throw FormatError(.corrupt, "header copy \(copy): pool name is not UTF-8")
        }
        let store = StoreHeader(poolName: name, poolUUID: uuid, member: member, chunkBytes: chunkBytes,
                                mappedSectors: mappedSectors, storeMapped: flags & 1 != 0, mapVersion: mapVersion,
                                members: Array(membersRaw.prefix(Int(memberCount))), markedCreate: flags & 2 != 0)
        return HeaderBlock(sequence: sequence, nonce: nonce, deviceSectors: deviceSectors, layout: layout,
                           committedGeneration: generation, committedSlot: Int(slot), store: store)
    }
}

extension DurablePoolState {
    /// The header-sized part of the state.
    public var storeHeader: StoreHeader {
        StoreHeader(poolName: poolName, poolUUID: poolUUID, member: member, chunkBytes: chunkBytes,
                    mappedSectors: mappedSectors, storeMapped: storeMapped, mapVersion: mapVersion,
                    members: members, markedCreate: markedCreate)
    }
}

// MARK: - Checkpoint slot

/// First block of a checkpoint slot; the payload (CheckpointCoding) follows in the next blocks.
public struct CheckpointHeader: Hashable, Sendable {
    public var nonce: UInt64
    public var generation: UInt64
    /// Persist records folded into this checkpoint since format (journal sequence numbers
    /// continue from here).
    public var recordCount: UInt64
    public var payloadBytes: UInt64
    public var payloadCRC: UInt32
    public var slot: Int

    public init(nonce: UInt64, generation: UInt64, recordCount: UInt64, payloadBytes: UInt64, payloadCRC: UInt32, slot: Int) {
        self.nonce = nonce
        self.generation = generation
        self.recordCount = recordCount
        self.payloadBytes = payloadBytes
        self.payloadCRC = payloadCRC
        self.slot = slot
    }

    public var payloadBlocks: UInt64 { (payloadBytes + MetadataLayout.blockBytes - 1) / MetadataLayout.blockBytes }

    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: blockSize)
        w.u64(BlockMagic.checkpoint)
        w.u32(0)
        w.u32(FormatVersion.current)   // 12
        w.u64(nonce)                   // 16
        w.u64(generation)              // 24
        w.u64(recordCount)             // 32
        w.u64(payloadBytes)            // 40
        w.u32(payloadCRC)              // 48
        w.u32(UInt32(slot))            // 52
        w.pad(to: blockSize)
        var block = w.bytes
        BlockSeal.seal(&block)
        return block
    }

    public static func decode(_ block: ArraySlice<UInt8>) throws(FormatError) -> CheckpointHeader {
        var r = ByteReader(Array(block), offset: 16, context: "checkpoint header")
        let h = CheckpointHeader(nonce: try r.u64(), generation: try r.u64(), recordCount: try r.u64(),
                                 payloadBytes: try r.u64(), payloadCRC: try r.u32(), slot: Int(try r.u32()))
        return h
    }

    /// The blocks of a checkpoint: header block then payload padded to whole blocks.
    public static func blocks(nonce: UInt64, generation: UInt64, recordCount: UInt64, slot: Int, payload: [UInt8]) -> [UInt8] {
        let header = CheckpointHeader(nonce: nonce, generation: generation, recordCount: recordCount,
                                      payloadBytes: UInt64(payload.count), payloadCRC: CRC32C.checksum(payload), slot: slot)
        var out = header.encode()
        out.reserveCapacity(blockSize + payload.count + blockSize)
        out += payload
        let rem = out.count % blockSize
        if rem != 0 { out += [UInt8](repeating: 0, count: blockSize - rem) }
        return out
    }
}

// MARK: - Journal block

/// One block of a journal entry. An entry holds one or more whole PersistRecords (a batch)
/// and spans `partCount` consecutive blocks.
public struct JournalBlockHeader: Hashable, Sendable {
    public static let headerBytes = 56
    public static let payloadCapacity = blockSize - headerBytes
    public var nonce: UInt64
    /// The checkpoint this journal continues; blocks of other generations are stale.
    public var generation: UInt64
    public var position: UInt32
    public var partIndex: UInt16
    public var partCount: UInt16
    public var payloadBytes: UInt32
    public var recordCount: UInt32
    /// Sequence number of the entry's first record (records since format).
    public var firstRecordSequence: UInt64

    public init(nonce: UInt64, generation: UInt64, position: UInt32, partIndex: UInt16, partCount: UInt16,
                payloadBytes: UInt32, recordCount: UInt32, firstRecordSequence: UInt64) {
        self.nonce = nonce
        self.generation = generation
        self.position = position
        self.partIndex = partIndex
        self.partCount = partCount
        self.payloadBytes = payloadBytes
        self.recordCount = recordCount
        self.firstRecordSequence = firstRecordSequence
    }

    public static func decode(_ block: ArraySlice<UInt8>) throws(FormatError) -> JournalBlockHeader {
        var r = ByteReader(Array(block.prefix(headerBytes)), offset: 16, context: "journal block")
        return JournalBlockHeader(nonce: try r.u64(), generation: try r.u64(), position: try r.u32(),
                                  partIndex: try r.u16(), partCount: try r.u16(), payloadBytes: try r.u32(),
                                  recordCount: try r.u32(), firstRecordSequence: try r.u64())
    }

    /// The blocks of one entry holding `records` (already encoded with RecordCoding).
    public static func entryBlocks(nonce: UInt64, generation: UInt64, position: UInt32,
                                   firstRecordSequence: UInt64, records: [[UInt8]]) -> [UInt8] {
        var payload: [UInt8] = []
        for r in records { payload += r }
        let parts = max(1, (payload.count + payloadCapacity - 1) / payloadCapacity)
        precondition(parts <= Int(UInt16.max), "journal entry of \(parts) blocks")
        var out: [UInt8] = []
        out.reserveCapacity(parts * blockSize)
        for part in 0..<parts {
            let lo = part * payloadCapacity
            let hi = min(payload.count, lo + payloadCapacity)
            var w = ByteWriter(capacity: blockSize)
            w.u64(BlockMagic.journal)
            w.u32(0)
            w.u32(FormatVersion.current)               // 12
            w.u64(nonce)                               // 16
            w.u64(generation)                          // 24
            w.u32(position + UInt32(part))             // 32
            w.u16(UInt16(part))                        // 36
            w.u16(UInt16(parts))                       // 38
            w.u32(UInt32(hi - lo))                     // 40
            w.u32(UInt32(records.count))               // 44
            w.u64(firstRecordSequence)                 // 48
            w.raw(payload[lo..<hi])                    // 56
            w.pad(to: blockSize)
            var block = w.bytes
            BlockSeal.seal(&block)
            out += block
        }
        return out
    }

    /// Blocks an entry with `payloadBytes` of records needs.
    public static func blocksNeeded(payloadBytes: Int) -> Int {
        max(1, (payloadBytes + payloadCapacity - 1) / payloadCapacity)
    }
}
