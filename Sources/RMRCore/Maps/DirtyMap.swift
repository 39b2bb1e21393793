// PLACEHOLDER implementation (a helper replaces it with the sparse two-level bitmap).
// The API below is the contract the rest of the core uses.

/// A run of consecutive dirty chunks.
public struct ChunkRun: Hashable, Sendable, CustomStringConvertible {
    public var start: ChunkIndex
    public var count: UInt64
    public init(start: ChunkIndex, count: UInt64) { self.start = start; self.count = count }
    public var end: ChunkIndex { start + count }
    public var description: String { count == 1 ? "\(start)" : "\(start)+\(count)" }
}

/// One bit per chunk, sparse. Value type.
public struct DirtyMap: Hashable, Sendable {
    public let chunkCount: UInt64
    private var words: [UInt64: UInt64] = [:]
    public private(set) var dirtyCount: UInt64 = 0

    public init(chunkCount: UInt64) { self.chunkCount = chunkCount }
    public init(chunkCount: UInt64, allDirty: Bool) {
        self.chunkCount = chunkCount
        if allDirty { setAll() }
    }
    public var isEmpty: Bool { dirtyCount == 0 }

    public func isDirty(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        return (words[c >> 6] ?? 0) & (1 << (c & 63)) != 0
    }
    @discardableResult public mutating func set(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let w = words[c >> 6] ?? 0
        let bit: UInt64 = 1 << (c & 63)
        if w & bit != 0 { return false }
        words[c >> 6] = w | bit
        dirtyCount += 1
        return true
    }
    @discardableResult public mutating func clear(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let w = words[c >> 6] ?? 0
        let bit: UInt64 = 1 << (c & 63)
        if w & bit == 0 { return false }
        let n = w & ~bit
        if n == 0 { words[c >> 6] = nil } else { words[c >> 6] = n }
        dirtyCount -= 1
        return true
    }
    public mutating func setAll() { var c: UInt64 = 0; while c < chunkCount { set(c); c += 1 } }
    public mutating func clearAll() { words = [:]; dirtyCount = 0 }
    public mutating func insert(runs: [ChunkRun]) { for r in runs { var c = r.start; while c < r.end { set(c); c += 1 } } }
    public mutating func formUnion(_ other: DirtyMap) { insert(runs: other.runs()) }
    public func nextDirty(from c: ChunkIndex) -> ChunkIndex? {
        var i = c
        while i < chunkCount { if isDirty(i) { return i }; i += 1 }
        return nil
    }
    public func firstDirty(limit: Int) -> [ChunkIndex] {
        var out: [ChunkIndex] = []
        var c: ChunkIndex = 0
        while out.count < limit, let n = nextDirty(from: c) { out.append(n); c = n + 1 }
        return out
    }
    public func runs() -> [ChunkRun] {
        var out: [ChunkRun] = []
        var c: ChunkIndex = 0
        while let n = nextDirty(from: c) {
            var e = n
            while e < chunkCount && isDirty(e) { e += 1 }
            out.append(ChunkRun(start: n, count: e - n))
            c = e
        }
        return out
    }
    public var approximateMemoryBytes: Int { words.count * 16 + 64 }
}
