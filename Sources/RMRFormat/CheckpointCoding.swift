import RMRCore

// The checkpoint payload: a whole DurablePoolState. Dirty maps and the write-intent list are
// "chunk sets", each stored as runs or as a bitmap, whichever is smaller, so the slot size has
// a bound (MetadataLayout.maxCheckpointPayloadBytes) whatever the maps look like.

enum ChunkSetTag: UInt8 { case runs = 0, bitmap = 1 }

public enum CheckpointCoding {
    /// Runs of a strictly ascending chunk list.
    static func runs(ofSorted chunks: [ChunkIndex]) -> [ChunkRun] {
        var out: [ChunkRun] = []
        for c in chunks {
            if let last = out.last, last.end == c { out[out.count - 1].count += 1 } else { out.append(ChunkRun(start: c, count: 1)) }
        }
        return out
    }

    /// Writes sorted, disjoint `runs` over `chunkCount` chunks as runs or bitmap.
    static func writeSet(_ runs: [ChunkRun], chunkCount: UInt64, into w: inout ByteWriter) {
        var runWriter = ByteWriter()
        runWriter.varint(UInt64(runs.count))
        var prevEnd: UInt64 = 0
        for r in runs {
            runWriter.varint(r.start - prevEnd)
            runWriter.varint(r.count)
            prevEnd = r.end
        }
        let bitmapBytes = (chunkCount + 7) / 8
        if UInt64(runWriter.count) <= bitmapBytes {
            w.u8(ChunkSetTag.runs.rawValue)
            w.raw(runWriter.bytes)
            return
        }
        w.u8(ChunkSetTag.bitmap.rawValue)
        var bits = [UInt8](repeating: 0, count: Int(bitmapBytes))
        for r in runs {
            var c = r.start
            while c < r.end { bits[Int(c >> 3)] |= 1 << UInt8(c & 7); c += 1 }
        }
        w.raw(bits)
    }

    static func readSet(_ r: inout ByteReader, chunkCount: UInt64, what: String) throws(FormatError) -> [ChunkRun] {
        let tag = try r.u8("\(what) encoding")
        switch ChunkSetTag(rawValue: tag) {
        case .runs:
            let n = try r.count("\(what) run count", minItemBytes: 2)
            var out: [ChunkRun] = []
            out.reserveCapacity(n)
            var prevEnd: UInt64 = 0
            for _ in 0..<n {
                let gap = try r.varint("\(what) run gap")
                let count = try r.varint("\(what) run length")
                guard gap <= chunkCount, prevEnd <= chunkCount - gap, count >= 1,
                      count <= chunkCount - (prevEnd + gap) else {
                    throw FormatError(.corrupt, "\(r.context): \(what) run beyond \(chunkCount) chunks")
                }
                out.append(ChunkRun(start: prevEnd + gap, count: count))
                prevEnd += gap + count
            }
            return out
        case .bitmap:
            let bits = try r.raw(Int((chunkCount + 7) / 8), "\(what) bitmap")
            var out: [ChunkRun] = []
            var c: UInt64 = 0
            let i = bits.startIndex
            while c < chunkCount {
                let byte = bits[i + Int(c >> 3)]
                if byte == 0 && c & 7 == 0 { c += 8; continue }
                if byte & (1 << UInt8(c & 7)) != 0 {
                    if let last = out.last, last.end == c { out[out.count - 1].count += 1 } else { out.append(ChunkRun(start: c, count: 1)) }
                }
                c += 1
            }
            // Bits past chunkCount must be zero, or the bitmap is not ours.
            if chunkCount & 7 != 0, bits[bits.endIndex - 1] >> UInt8(chunkCount & 7) != 0 {
                throw FormatError(.corrupt, "\(r.context): \(what) bitmap has bits past chunk \(chunkCount)")
            }
            return out
        case nil:
            throw FormatError(.corrupt, "\(r.context): unknown \(what) encoding \(tag)")
        }
    }

    /// Encodes the whole state. Fails if it does not fit `layout` (too many maps, unsorted
    /// intents, a name too long): the caller then refuses the persist instead of writing.
    public static func encode(_ s: DurablePoolState, layout: MetadataLayout) throws(FormatError) -> [UInt8] {
        guard s.poolName.utf8.count <= Limits.maxPoolNameBytes else {
            throw FormatError(.unencodable, "pool name of \(s.poolName.utf8.count) bytes is longer than \(Limits.maxPoolNameBytes)")
        }
        guard s.maps.count <= Int(layout.maxMembers), s.maps.count == s.mapMembers.count else {
            throw FormatError(.unencodable, "\(s.maps.count) dirty maps, the layout has room for \(layout.maxMembers)")
        }
        guard s.members.count <= HeaderBlock.maxMembersListed else {
            throw FormatError(.unencodable, "\(s.members.count) members, at most \(HeaderBlock.maxMembersListed)")
        }
        let chunkCount = s.geometry.chunkCount
        guard chunkCount <= layout.chunkCount else {
            throw FormatError(.unencodable, "\(chunkCount) chunks, the layout has room for \(layout.chunkCount)")
        }
        for (a, b) in zip(s.writeIntents, s.writeIntents.dropFirst()) where a >= b {
            throw FormatError(.unencodable, "write intents not strictly ascending at \(a), \(b)")
        }
        if let last = s.writeIntents.last, last >= chunkCount {
            throw FormatError(.unencodable, "write intent for chunk \(last) beyond \(chunkCount) chunks")
        }
        var w = ByteWriter(capacity: 1024)
        w.string(s.poolName)
        w.u64(s.poolUUID.high)
        w.u64(s.poolUUID.low)
        w.u8(s.member)
        w.varint(s.chunkBytes)
        w.varint(s.mappedSectors)
        w.varint(s.deviceSectors)
        w.u8((s.storeMapped ? 1 : 0) | (s.markedCreate ? 2 : 0))
        w.u64(s.mapVersion.raw)
        w.varint(UInt64(s.members.count))
        for m in s.members { w.u8(m) }
        w.varint(UInt64(s.maps.count))
        for (m, map) in zip(s.mapMembers, s.maps) {
            w.u8(m)
            w.varint(map.chunkCount)
            writeSet(map.runs(), chunkCount: map.chunkCount, into: &w)
        }
        writeSet(runs(ofSorted: s.writeIntents), chunkCount: chunkCount, into: &w)
        precondition(UInt64(w.count) <= MetadataLayout.maxCheckpointPayloadBytes(chunkCount: layout.chunkCount, maxMembers: layout.maxMembers),
                     "checkpoint payload \(w.count) bytes exceeds the layout bound")
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], context: String) throws(FormatError) -> DurablePoolState {
        var r = ByteReader(bytes, context: context)
        let name = try r.string("pool name")
        let uuid = PoolUUID(high: try r.u64("pool UUID"), low: try r.u64("pool UUID"))
        let member = try r.u8("member id")
        let chunk = try r.varint("chunk size")
        let mapped = try r.varint("mapped size")
        let device = try r.varint("device size")
        guard chunk.nonzeroBitCount == 1, chunk >= Limits.minChunkBytes, chunk <= Limits.maxChunkBytes else {
            throw FormatError(.corrupt, "\(context): chunk size \(chunk) invalid")
        }
        guard mapped <= MetadataLayout.maxDataSectors else { throw FormatError(.corrupt, "\(context): mapped size \(mapped) invalid") }
        var s = DurablePoolState(poolName: name, poolUUID: uuid, member: member, chunkBytes: chunk,
                                 mappedSectors: mapped, deviceSectors: device)
        let flags = try r.u8("state bits")
        guard flags & ~3 == 0 else { throw FormatError(.corrupt, "\(context): unknown state bits \(flags)") }
        s.storeMapped = flags & 1 != 0
        s.markedCreate = flags & 2 != 0
        s.mapVersion = MapVersion(raw: try r.u64("map version"))
        let memberCount = try r.count("member count")
        s.members = []
        for _ in 0..<memberCount { s.members.append(try r.u8("member")) }
        let mapCount = try r.count("map count", minItemBytes: 3)
        var previous: Int = -1
        for _ in 0..<mapCount {
            let m = try r.u8("map member")
            guard Int(m) > previous else { throw FormatError(.corrupt, "\(context): map members not ascending at \(m)") }
            previous = Int(m)
            let count = try r.varint("map chunk count")
            guard count <= Limits.maxChunks else { throw FormatError(.corrupt, "\(context): map of \(count) chunks") }
            var map = DirtyMap(chunkCount: count)
            map.insert(runs: try readSet(&r, chunkCount: count, what: "map \(m)"))
            s.mapMembers.append(m)
            s.maps.append(map)
        }
        let intents = try readSet(&r, chunkCount: s.geometry.chunkCount, what: "write intents")
        for run in intents { for c in run.start..<run.end { s.writeIntents.append(c) } }
        guard r.isAtEnd else { throw FormatError(.corrupt, "\(context): \(r.remaining) bytes after the state") }
        return s
    }
}
