import RMRCore

// Binary encoding of the durable vocabulary: MetadataUpdate, PersistRecord, StoreHeader and the
// whole DurablePoolState (the checkpoint payload). Integers are LEB128 varints unless the
// field is an identifier with a fixed width; chunk lists are zigzag deltas, so sorted lists of
// nearby chunks take one or two bytes per chunk.

/// Update tags on disk. Never renumber: journals written by older builds use them.
enum UpdateTag: UInt8 {
    case header = 1, setDirty = 2, clearDirty = 3, setAllDirty = 4, replaceMap = 5, dropMap = 6,
         addIntents = 7, removeIntents = 8, clearIntents = 9
}

public enum RecordCoding {
    // MARK: chunk lists and runs

    static func writeChunks(_ chunks: [ChunkIndex], into w: inout ByteWriter) {
        w.varint(UInt64(chunks.count))
        var prev: UInt64 = 0
        for c in chunks {
            w.varint(ZigZag.encode(Int64(bitPattern: c &- prev)))
            prev = c
        }
    }
    static func readChunks(_ r: inout ByteReader) throws(FormatError) -> [ChunkIndex] {
        let n = try r.count("chunk count")
        var out: [ChunkIndex] = []
        out.reserveCapacity(n)
        var prev: UInt64 = 0
        for _ in 0..<n {
            let c = prev &+ UInt64(bitPattern: ZigZag.decode(try r.varint("chunk delta")))
            out.append(c)
            prev = c
        }
        return out
    }
    static func writeRuns(_ runs: [ChunkRun], into w: inout ByteWriter) {
        w.varint(UInt64(runs.count))
        var prevEnd: UInt64 = 0
        for run in runs {
            w.varint(ZigZag.encode(Int64(bitPattern: run.start &- prevEnd)))
            w.varint(run.count)
            prevEnd = run.start &+ run.count
        }
    }
    static func readRuns(_ r: inout ByteReader) throws(FormatError) -> [ChunkRun] {
        let n = try r.count("run count", minItemBytes: 2)
        var out: [ChunkRun] = []
        out.reserveCapacity(n)
        var prevEnd: UInt64 = 0
        for _ in 0..<n {
            let start = prevEnd &+ UInt64(bitPattern: ZigZag.decode(try r.varint("run start")))
            let count = try r.varint("run length")
            out.append(ChunkRun(start: start, count: count))
            prevEnd = start &+ count
        }
        return out
    }

    // MARK: updates and records

    public static func encode(_ header: StoreHeader, into w: inout ByteWriter) {
        w.string(header.poolName)
        w.u64(header.poolUUID.high)
        w.u64(header.poolUUID.low)
        w.u8(header.member)
        w.varint(header.chunkBytes)
        w.varint(header.mappedSectors)
        w.u8((header.storeMapped ? 1 : 0) | (header.markedCreate ? 2 : 0))
        w.u64(header.mapVersion.raw)
        w.varint(UInt64(header.members.count))
        for m in header.members { w.u8(m) }
    }
    public static func decodeStoreHeader(_ r: inout ByteReader) throws(FormatError) -> StoreHeader {
        let name = try r.string("pool name")
        let high = try r.u64("pool UUID")
        let low = try r.u64("pool UUID")
        let member = try r.u8("member id")
        let chunk = try r.varint("chunk size")
        let mapped = try r.varint("mapped size")
        let flags = try r.u8("state bits")
        guard flags & ~3 == 0 else { throw FormatError(.corrupt, "\(r.context): unknown state bits \(flags)") }
        let version = try r.u64("map version")
        let n = try r.count("member count")
        var members: [MemberID] = []
        for _ in 0..<n { members.append(try r.u8("member")) }
        return StoreHeader(poolName: name, poolUUID: PoolUUID(high: high, low: low), member: member, chunkBytes: chunk,
                           mappedSectors: mapped, storeMapped: flags & 1 != 0, mapVersion: MapVersion(raw: version),
                           members: members, markedCreate: flags & 2 != 0)
    }

    public static func encode(_ update: MetadataUpdate, into w: inout ByteWriter) {
        switch update {
        case .header(let h):
            w.u8(UpdateTag.header.rawValue)
            encode(h, into: &w)
        case .setDirty(let m, let chunks):
            w.u8(UpdateTag.setDirty.rawValue); w.u8(m); writeChunks(chunks, into: &w)
        case .clearDirty(let m, let chunks):
            w.u8(UpdateTag.clearDirty.rawValue); w.u8(m); writeChunks(chunks, into: &w)
        case .setAllDirty(let m):
            w.u8(UpdateTag.setAllDirty.rawValue); w.u8(m)
        case .replaceMap(let m, let runs):
            w.u8(UpdateTag.replaceMap.rawValue); w.u8(m); writeRuns(runs, into: &w)
        case .dropMap(let m):
            w.u8(UpdateTag.dropMap.rawValue); w.u8(m)
        case .addIntents(let chunks):
            w.u8(UpdateTag.addIntents.rawValue); writeChunks(chunks, into: &w)
        case .removeIntents(let chunks):
            w.u8(UpdateTag.removeIntents.rawValue); writeChunks(chunks, into: &w)
        case .clearIntents:
            w.u8(UpdateTag.clearIntents.rawValue)
        }
    }
    public static func decodeUpdate(_ r: inout ByteReader) throws(FormatError) -> MetadataUpdate {
        let raw = try r.u8("update tag")
        guard let tag = UpdateTag(rawValue: raw) else {
            throw FormatError(.corrupt, "\(r.context): unknown update tag \(raw)")
        }
        switch tag {
        case .header: return .header(try decodeStoreHeader(&r))
        case .setDirty: return .setDirty(member: try r.u8("member"), chunks: try readChunks(&r))
        case .clearDirty: return .clearDirty(member: try r.u8("member"), chunks: try readChunks(&r))
        case .setAllDirty: return .setAllDirty(member: try r.u8("member"))
        case .replaceMap: return .replaceMap(member: try r.u8("member"), runs: try readRuns(&r))
        case .dropMap: return .dropMap(member: try r.u8("member"))
        case .addIntents: return .addIntents(try readChunks(&r))
        case .removeIntents: return .removeIntents(try readChunks(&r))
        case .clearIntents: return .clearIntents
        }
    }

    public static func encode(_ record: PersistRecord, into w: inout ByteWriter) {
        w.varint(UInt64(record.updates.count))
        for u in record.updates { encode(u, into: &w) }
    }
    public static func encode(_ record: PersistRecord) -> [UInt8] {
        var w = ByteWriter()
        encode(record, into: &w)
        return w.bytes
    }
    public static func decodeRecord(_ r: inout ByteReader) throws(FormatError) -> PersistRecord {
        let n = try r.count("update count")
        var updates: [MetadataUpdate] = []
        updates.reserveCapacity(n)
        for _ in 0..<n { updates.append(try decodeUpdate(&r)) }
        return PersistRecord(updates)
    }

    // MARK: validation (a record the state cannot take must be refused, not trapped on)

    /// Why `update` cannot be applied to `state` within `layout`, or nil. `DurablePoolState.apply`
    /// traps on a chunk outside a map; the writer refuses such a record and recovery reports it.
    public static func problem(applying update: MetadataUpdate, to state: DurablePoolState,
                               layout: MetadataLayout) -> String? {
        let chunkCount = state.geometry.chunkCount
        func outOfRange(_ chunks: [ChunkIndex]) -> String? {
            guard let bad = chunks.first(where: { $0 >= chunkCount }) else { return nil }
            return "chunk \(bad) outside the \(chunkCount) chunks of the store"
        }
        func newMap(_ m: MemberID) -> String? {
            if state.mapMembers.contains(m) || state.mapMembers.count < Int(layout.maxMembers) { return nil }
            return "a dirty map for member \(m) would be map \(state.mapMembers.count + 1); the layout has room for \(layout.maxMembers)"
        }
        switch update {
        case .header(let h):
            if h.chunkBytes != state.chunkBytes {
                return "chunk size change \(state.chunkBytes) -> \(h.chunkBytes) is not supported on disk"
            }
            if h.mappedSectors != state.mappedSectors {
                return "mapped_size change \(state.mappedSectors) -> \(h.mappedSectors) is not supported on disk"
            }
            if h.members.count > HeaderBlock.maxMembersListed {
                return "\(h.members.count) members, the header lists at most \(HeaderBlock.maxMembersListed)"
            }
            if h.poolName.utf8.count > Limits.maxPoolNameBytes {
                return "pool name of \(h.poolName.utf8.count) bytes is longer than \(Limits.maxPoolNameBytes)"
            }
            return nil
        case .setDirty(let m, let chunks), .clearDirty(let m, let chunks):
            return outOfRange(chunks) ?? newMap(m)
        case .setAllDirty(let m):
            return newMap(m)
        case .replaceMap(let m, let runs):
            if let bad = runs.first(where: { $0.start > chunkCount || $0.count > chunkCount - $0.start }) {
                return "run \(bad) outside the \(chunkCount) chunks of the store"
            }
            return newMap(m)
        case .dropMap:
            return nil
        case .addIntents(let chunks), .removeIntents(let chunks):
            return outOfRange(chunks)
        case .clearIntents:
            return nil
        }
    }
}
