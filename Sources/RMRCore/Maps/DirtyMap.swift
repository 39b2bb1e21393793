// The dirty map: one bit per chunk, sparse, value semantics. Pure: standard library only.
//
// Layout (two levels, copy-on-write at both):
//   * A table (one object) with one entry per leaf of 2^18 chunks (256 Ki chunks = 32 KiB of
//     bits), plus one "occupied" bit per leaf so searches skip clean leaves 64 at a time:
//       nil                   -> every chunk of the leaf is clean (no memory),
//       leaf marked `isFull`  -> every chunk of the leaf is dirty (no bits; `setAll` shares one),
//       materialised leaf     -> a bitmap holding at least one dirty chunk.
//   * A materialised leaf holds, in one object: an immutable header, a summary with one bit
//     per bit word (4096 bits = 64 words = 512 bytes) telling whether that word holds a dirty
//     chunk, then the 4096 bit words. The summary is exact and kept by the same branch-free
//     single-word update on set and clear; searches skip 4096 clean chunks per summary word.
//   * The map keeps the total dirty count, so `dirtyCount` is O(1). Leaves keep no count:
//     the hot path (set/clear) then writes only the bit word, the summary word and the total.
//
// Copy-on-write: copying a DirtyMap copies nothing. The first mutation of a copy copies the
// table (8 bytes per leaf); leaves stay shared until one is written, and then only that leaf
// (32 KiB) is copied. A leaf is written only when both the table and the leaf are uniquely
// referenced, which is what makes sharing leaves between maps (and threads) sound.
//
// Invariants: bits beyond `chunkCount` in the last leaf are zero; a materialised leaf is never
// all clean (it is dropped when its summary becomes zero); it may be all dirty (single sets do
// not fold it into the marker), so equality and hashing compare by content.

/// A run of consecutive dirty chunks.
public struct ChunkRun: Hashable, Sendable, CustomStringConvertible {
    public var start: ChunkIndex
    public var count: UInt64
    public init(start: ChunkIndex, count: UInt64) { self.start = start; self.count = count }
    public var end: ChunkIndex { start + count }
    public var description: String { count == 1 ? "\(start)" : "\(start)+\(count)" }
}

// MARK: - Leaf

@usableFromInline
struct DirtyMapLeafHeader {
    /// Valid chunks in this leaf (2^18 except in the last leaf).
    @usableFromInline let valid: Int
    /// Words of bits (0 for the all-dirty marker).
    @usableFromInline let wordCount: Int
    @usableFromInline let isFull: Bool
    @inlinable init(valid: Int, wordCount: Int, isFull: Bool) {
        self.valid = valid; self.wordCount = wordCount; self.isFull = isFull
    }
}

/// One leaf: header and, tail-allocated in the same object and aligned to 64 bytes,
/// `DirtyMap.summaryWords` summary words (bit i: word i is non-zero) followed by the bit words. Reached through raw pointers: no exclusivity checks on the hot
/// path, and the bits sit at a fixed offset from the object.
@usableFromInline
final class DirtyMapLeaf: ManagedBuffer<DirtyMapLeafHeader, UInt64> {
    @inlinable static func make(valid: Int, ones: Bool) -> DirtyMapLeaf {
        let wc = (valid + 63) >> 6
        let total = DirtyMap.allocatedWords(wc)
        let leaf = unsafeDowncast(DirtyMapLeaf.create(minimumCapacity: total + DirtyMap.alignSlackWords) { _ in
            DirtyMapLeafHeader(valid: valid, wordCount: wc, isFull: false)
        }, to: DirtyMapLeaf.self)
        let b = leaf.base
        b.initialize(repeating: 0, count: total)
        if ones {
            (b + DirtyMap.summaryWords).update(repeating: ~0, count: wc)
            let tail = valid & 63
            if tail != 0 { b[DirtyMap.summaryWords + wc - 1] = (1 &<< UInt64(tail)) &- 1 }
            var i = 0
            while i < wc { b[i >> 6] |= 1 &<< UInt64(i & 63); i += 1 }
        }
        return leaf
    }

    /// The all-dirty marker for a leaf of `valid` chunks.
    @inlinable static func makeFull(valid: Int) -> DirtyMapLeaf {
        unsafeDowncast(DirtyMapLeaf.create(minimumCapacity: 0) { _ in
            DirtyMapLeafHeader(valid: valid, wordCount: 0, isFull: true)
        }, to: DirtyMapLeaf.self)
    }

    /// A private copy of a materialised leaf.
    @inlinable func copy() -> DirtyMapLeaf {
        let h = hdr.pointee
        let total = DirtyMap.allocatedWords(h.wordCount)
        let leaf = unsafeDowncast(DirtyMapLeaf.create(minimumCapacity: total + DirtyMap.alignSlackWords) { _ in h },
                                  to: DirtyMapLeaf.self)
        leaf.base.initialize(from: base, count: total)
        return leaf
    }

    @inlinable var hdr: UnsafeMutablePointer<DirtyMapLeafHeader> { withUnsafeMutablePointerToHeader { $0 } }
    /// Summary words, then bit words, starting at the first 64-byte boundary of the tail
    /// allocation (so the summary and every block of 8 words are each one cache line).
    @inlinable var base: UnsafeMutablePointer<UInt64> {
        let tail = UInt(bitPattern: withUnsafeMutablePointerToElements { $0 })
        return UnsafeMutablePointer(bitPattern: (tail &+ 63) & ~63).unsafelyUnwrapped
    }
    @inlinable var words: UnsafeMutablePointer<UInt64> { base + DirtyMap.summaryWords }
    @inlinable var summary: UnsafeMutablePointer<UInt64> { base }
    @inlinable var valid: Int { hdr.pointee.valid }
    @inlinable var wordCount: Int { hdr.pointee.wordCount }
    @inlinable var isFull: Bool { hdr.pointee.isFull }

    /// Dirty chunks in this leaf (O(words) for a materialised leaf).
    @usableFromInline var popcount: Int {
        if isFull { return valid }
        let w = words
        var n = 0
        for i in 0..<wordCount { n &+= w[i].nonzeroBitCount }
        return n
    }

    /// No dirty chunk (never true of the marker).
    @usableFromInline var summaryIsZero: Bool {
        if isFull { return false }
        let s = summary
        var any: UInt64 = 0
        for i in 0..<((wordCount + 63) >> 6) { any |= s[i] }
        return any == 0
    }

    /// Every valid chunk dirty.
    @usableFromInline var isAllDirty: Bool {
        if isFull { return true }
        let w = words, wc = wordCount
        for i in 0..<(wc - 1) where w[i] != ~0 { return false }
        let tail = valid & 63
        return w[wc - 1] == (tail == 0 ? ~0 : (1 &<< UInt64(tail)) &- 1)
    }

    /// Recompute the summary bits of words `first...last` from the words.
    @usableFromInline func resummarise(words first: Int, _ last: Int) {
        let w = words, s = summary
        for wi in first...last {
            let m: UInt64 = 1 &<< UInt64(wi & 63)
            if w[wi] != 0 { s[wi >> 6] |= m } else { s[wi >> 6] &= ~m }
        }
    }

    /// First dirty local bit at or after `from`, or nil. Materialised leaves only.
    @usableFromInline func nextSet(from: Int) -> Int? {
        let w = words, s = summary, wordCount = wordCount
        var wi = from >> 6
        if wi >= wordCount { return nil }
        let x = w[wi] & (~0 &<< UInt64(from & 63))
        if x != 0 { return (wi << 6) | x.trailingZeroBitCount }
        // Later non-zero words through the summary.
        wi += 1
        while wi < wordCount {
            let sw = wi >> 6
            let sx = s[sw] & (~0 &<< UInt64(wi & 63))
            if sx == 0 { wi = (sw + 1) << 6; continue }
            wi = (sw << 6) | sx.trailingZeroBitCount
            if wi >= wordCount { return nil }
            let y = w[wi]
            if y != 0 { return (wi << 6) | y.trailingZeroBitCount }
            wi += 1 // (unreachable: the summary is exact)
        }
        return nil
    }

    /// First clean local bit at or after `from`, or `valid` if none. Materialised leaves only.
    @usableFromInline func nextClear(from: Int) -> Int {
        let w = words, wordCount = wordCount, valid = valid
        var wi = from >> 6
        if wi >= wordCount { return valid }
        var x = ~w[wi] & (~0 &<< UInt64(from & 63))
        while true {
            if x != 0 { return min(valid, (wi << 6) | x.trailingZeroBitCount) }
            wi += 1
            if wi >= wordCount { return valid }
            x = ~w[wi]
        }
    }

    /// Set (ones) or clear local bits [lo, hi), keeping the summary exact. Materialised
    /// leaves only. Returns the change in dirty chunks.
    @usableFromInline func apply(_ lo: Int, _ hi: Int, ones: Bool) -> Int {
        let w = words
        let firstWord = lo >> 6, lastWord = (hi - 1) >> 6
        var delta = 0
        var wi = firstWord
        while wi <= lastWord {
            var m: UInt64 = ~0
            if wi == firstWord { m &= ~0 &<< UInt64(lo & 63) }
            if wi == lastWord && hi & 63 != 0 { m &= (1 &<< UInt64(hi & 63)) &- 1 }
            let old = w[wi]
            let new = ones ? old | m : old & ~m
            w[wi] = new
            delta += new.nonzeroBitCount - old.nonzeroBitCount
            wi += 1
        }
        resummarise(words: firstWord, lastWord)
        return delta
    }

    /// ORs `other`'s bits into this leaf. Returns the change in dirty chunks.
    @usableFromInline func formUnion(_ other: DirtyMapLeaf) -> Int {
        let a = words, b = other.words
        var delta = 0
        for i in 0..<wordCount {
            let old = a[i], new = old | b[i]
            a[i] = new
            delta &+= new.nonzeroBitCount &- old.nonzeroBitCount
        }
        for i in 0..<DirtyMap.summaryWords { summary[i] |= other.summary[i] }
        return delta
    }

    /// Same bits as `other` (both materialised).
    @usableFromInline func sameWords(as other: DirtyMapLeaf) -> Bool {
        if self === other { return true }
        let a = words, b = other.words
        for i in 0..<wordCount where a[i] != b[i] { return false }
        return true
    }
}

// MARK: - Table

@usableFromInline
struct DirtyMapTableHeader {
    @usableFromInline let leafCount: Int
    /// Bit `i` set iff entry `i` is non-nil.
    @usableFromInline let occupied: UnsafeMutablePointer<UInt64>
    @usableFromInline let occupiedWords: Int
}

/// The leaf table: header (with the occupied bits, separately allocated) and the entries,
/// tail-allocated.
@usableFromInline
final class DirtyMapTable: ManagedBuffer<DirtyMapTableHeader, DirtyMapLeaf?> {
    @usableFromInline static func make(leafCount: Int) -> DirtyMapTable {
        let ow = (leafCount + 63) >> 6
        let occupied = UnsafeMutablePointer<UInt64>.allocate(capacity: max(ow, 1))
        occupied.initialize(repeating: 0, count: max(ow, 1))
        let t = unsafeDowncast(DirtyMapTable.create(minimumCapacity: leafCount) { _ in
            DirtyMapTableHeader(leafCount: leafCount, occupied: occupied, occupiedWords: ow)
        }, to: DirtyMapTable.self)
        t.entries.initialize(repeating: nil, count: leafCount)
        return t
    }

    /// A copy sharing every leaf.
    @usableFromInline func copy() -> DirtyMapTable {
        let t = DirtyMapTable.make(leafCount: leafCount)
        t.entries.update(from: entries, count: leafCount)
        t.occupied.update(from: occupied, count: occupiedWords)
        return t
    }

    deinit {
        withUnsafeMutablePointers { h, e in
            e.deinitialize(count: h.pointee.leafCount)
            h.pointee.occupied.deallocate()
        }
    }

    @inlinable var entries: UnsafeMutablePointer<DirtyMapLeaf?> { withUnsafeMutablePointerToElements { $0 } }
    @inlinable var leafCount: Int { withUnsafeMutablePointerToHeader { $0.pointee.leafCount } }
    @inlinable var occupied: UnsafeMutablePointer<UInt64> { withUnsafeMutablePointerToHeader { $0.pointee.occupied } }
    @inlinable var occupiedWords: Int { withUnsafeMutablePointerToHeader { $0.pointee.occupiedWords } }

    /// Stores `leaf` at `li`, keeping the occupied bit. The table must be uniquely referenced.
    @inlinable func store(_ leaf: DirtyMapLeaf?, at li: Int) {
        entries[li] = leaf
        let m: UInt64 = 1 &<< UInt64(li & 63)
        if leaf != nil { occupied[li >> 6] |= m } else { occupied[li >> 6] &= ~m }
    }

    /// Index of the first non-nil entry at or after `from`.
    @usableFromInline func nextOccupied(from: Int) -> Int? {
        var li = from
        let n = leafCount, occ = occupied
        while li < n {
            let wi = li >> 6
            let x = occ[wi] & (~0 &<< UInt64(li & 63))
            if x != 0 { return (wi << 6) | x.trailingZeroBitCount }
            li = (wi + 1) << 6
        }
        return nil
    }
}

// MARK: - Map

/// One bit per chunk, sparse. Value type (copy-on-write).
public struct DirtyMap: Hashable, Sendable {
    /// log2 of the chunks per leaf.
    @usableFromInline static let leafShift: UInt64 = 18
    /// Chunks per leaf (256 Ki: 32 KiB of bits).
    @usableFromInline static let leafBits: Int = 1 << 18
    /// Words of bits per leaf.
    @usableFromInline static let leafWords: Int = 1 << 12
    /// Summary words per leaf: one bit per bit word.
    @usableFromInline static let summaryWords: Int = 64
    /// Words used by a leaf of `wordCount` bit words: summary + bits.
    @inlinable static func allocatedWords(_ wordCount: Int) -> Int { summaryWords + wordCount }
    /// Extra tail words allocated so the leaf payload can start on a 64-byte boundary.
    @usableFromInline static let alignSlackWords = 7

    public let chunkCount: UInt64
    /// Dirty chunks, O(1).
    public var dirtyCount: UInt64 { _dirtyCount }
    @usableFromInline var _dirtyCount: UInt64 = 0
    /// `nonisolated(unsafe)` because ManagedBuffer (table and leaves) is declared non-Sendable.
    /// Sharing is sound: table and leaves are only written while uniquely referenced
    /// (copy-on-write), so anything reachable from several maps is only ever read.
    @usableFromInline nonisolated(unsafe) var table: DirtyMapTable

    public init(chunkCount: UInt64) {
        precondition(chunkCount <= Limits.maxChunks, "chunk count \(chunkCount) above \(Limits.maxChunks)")
        self.chunkCount = chunkCount
        table = DirtyMapTable.make(leafCount: Int((chunkCount + UInt64(DirtyMap.leafBits) - 1) >> DirtyMap.leafShift))
    }

    public init(chunkCount: UInt64, allDirty: Bool) {
        self.init(chunkCount: chunkCount)
        if allDirty { setAll() }
    }

    public var isEmpty: Bool { dirtyCount == 0 }

    @inlinable var leafCount: Int { table.leafCount }

    /// Valid chunks in leaf `li`.
    @inlinable func validBits(_ li: Int) -> Int {
        let start = UInt64(li) << DirtyMap.leafShift
        return Int(min(UInt64(DirtyMap.leafBits), chunkCount - start))
    }

    // MARK: single bits

    @inlinable @inline(__always)
    public func isDirty(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        guard let leaf = table.entries[Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)] else { return false }
        if leaf.isFull { return true }
        let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
        return (leaf.base[DirtyMap.summaryWords &+ wi] &>> (c & 63)) & 1 != 0
    }

    /// Marks `c` dirty; true if it was clean.
    @inlinable @inline(__always) @discardableResult
    public mutating func set(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let li = Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)
        if isKnownUniquelyReferenced(&table) {
            let e = table.entries + li
            if isKnownUniquelyReferenced(&e.pointee) {
                let leaf = e.pointee.unsafelyUnwrapped
                if leaf.isFull { return false }
                let b = leaf.base
                let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
                let p = b + (DirtyMap.summaryWords &+ wi)
                let old = p.pointee
                let new = old | (1 &<< (c & 63))
                p.pointee = new
                b[wi &>> 6] |= 1 &<< UInt64(wi & 63)
                let added = (old ^ new) &>> (c & 63)
                _dirtyCount &+= added
                return added != 0
            }
        }
        return setSlow(c, li)
    }

    @usableFromInline mutating func setSlow(_ c: ChunkIndex, _ li: Int) -> Bool {
        if let leaf = table.entries[li], leaf.isFull { return false }
        _ = writableLeaf(li) // allocate, or take a private copy of a shared leaf
        return set(c)
    }

    /// Marks `c` clean; true if it was dirty.
    @inlinable @inline(__always) @discardableResult
    public mutating func clear(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let li = Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)
        if isKnownUniquelyReferenced(&table) {
            let e = table.entries + li
            if isKnownUniquelyReferenced(&e.pointee) {
                let leaf = e.pointee.unsafelyUnwrapped
                if !leaf.isFull {
                    let b = leaf.base
                    let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
                    let p = b + (DirtyMap.summaryWords &+ wi)
                    let old = p.pointee
                    let new = old & ~(1 &<< (c & 63))
                    p.pointee = new
                    // Summary bit of this word off iff the word became zero (branch-free).
                    let sp = b + (wi &>> 6)
                    let s = sp.pointee & ~(new == 0 ? 1 &<< UInt64(wi & 63) : 0)
                    sp.pointee = s
                    let removed = (old ^ new) &>> (c & 63)
                    _dirtyCount &-= removed
                    if s == 0 { dropIfClean(li) }
                    return removed != 0
                }
            }
        }
        return clearSlow(c, li)
    }

    @usableFromInline mutating func clearSlow(_ c: ChunkIndex, _ li: Int) -> Bool {
        if table.entries[li] == nil { return false }
        _ = writableLeaf(li) // expand the all-dirty marker, or copy a shared leaf
        return clear(c)
    }

    /// Frees leaf `li` if it holds no dirty chunk (so clean leaves cost no memory).
    @usableFromInline mutating func dropIfClean(_ li: Int) {
        if let leaf = table.entries[li], leaf.summaryIsZero { uniqueTable().store(nil, at: li) }
    }

    /// The table, copied first if shared.
    @inlinable mutating func uniqueTable() -> DirtyMapTable {
        if !isKnownUniquelyReferenced(&table) { table = table.copy() }
        return table
    }

    /// Leaf `li` materialised and uniquely owned, ready to write: allocates a clean leaf for an
    /// empty entry, expands the all-dirty marker, copies a shared leaf. Checks uniqueness
    /// before binding any local reference, so an unshared leaf is never copied.
    @usableFromInline mutating func writableLeaf(_ li: Int) -> DirtyMapLeaf {
        let t = uniqueTable()
        let e = t.entries + li
        if isKnownUniquelyReferenced(&e.pointee) {
            let leaf = e.pointee.unsafelyUnwrapped
            if !leaf.isFull { return leaf }
        }
        let fresh: DirtyMapLeaf
        if let leaf = e.pointee {
            fresh = leaf.isFull ? DirtyMapLeaf.make(valid: leaf.valid, ones: true) : leaf.copy()
        } else {
            fresh = DirtyMapLeaf.make(valid: validBits(li), ones: false)
        }
        t.store(fresh, at: li)
        return fresh
    }

    // MARK: whole map and ranges

    public mutating func setAll() {
        let n = leafCount
        let t = DirtyMapTable.make(leafCount: n)
        if n > 0 {
            let full = DirtyMapLeaf.makeFull(valid: DirtyMap.leafBits)
            for i in 0..<(n - 1) { t.store(full, at: i) }
            let lastValid = validBits(n - 1)
            t.store(lastValid == DirtyMap.leafBits ? full : DirtyMapLeaf.makeFull(valid: lastValid), at: n - 1)
        }
        table = t
        _dirtyCount = chunkCount
    }

    public mutating func clearAll() {
        table = DirtyMapTable.make(leafCount: leafCount)
        _dirtyCount = 0
    }

    /// Marks every chunk of `range` dirty.
    public mutating func setRange(_ range: Range<UInt64>) {
        precondition(range.upperBound <= chunkCount, "range \(range) out of range \(chunkCount)")
        var c = range.lowerBound
        while c < range.upperBound {
            let li = Int(c >> DirtyMap.leafShift)
            let leafStart = UInt64(li) << DirtyMap.leafShift
            let valid = validBits(li)
            let lo = Int(c - leafStart)
            let hi = Int(min(range.upperBound - leafStart, UInt64(valid)))
            c = leafStart + UInt64(hi)
            let current = table.entries[li]
            if let current, current.isFull { continue }
            if lo == 0 && hi == valid {
                _dirtyCount += UInt64(valid - (current?.popcount ?? 0))
                uniqueTable().store(DirtyMapLeaf.makeFull(valid: valid), at: li)
                continue
            }
            let leaf = writableLeaf(li)
            _dirtyCount += UInt64(leaf.apply(lo, hi, ones: true))
        }
    }

    /// Marks every chunk of `range` clean.
    public mutating func clearRange(_ range: Range<UInt64>) {
        precondition(range.upperBound <= chunkCount, "range \(range) out of range \(chunkCount)")
        var c = range.lowerBound
        while c < range.upperBound {
            let li = Int(c >> DirtyMap.leafShift)
            let leafStart = UInt64(li) << DirtyMap.leafShift
            let valid = validBits(li)
            let lo = Int(c - leafStart)
            let hi = Int(min(range.upperBound - leafStart, UInt64(valid)))
            c = leafStart + UInt64(hi)
            guard let current = table.entries[li] else { continue }
            if lo == 0 && hi == valid {
                _dirtyCount -= UInt64(current.popcount)
                uniqueTable().store(nil, at: li)
                continue
            }
            let leaf = writableLeaf(li)
            _dirtyCount -= UInt64(-leaf.apply(lo, hi, ones: false))
            if leaf.summaryIsZero { uniqueTable().store(nil, at: li) }
        }
    }

    public mutating func insert(runs: [ChunkRun]) {
        for r in runs {
            precondition(r.count <= chunkCount && r.start <= chunkCount - r.count,
                         "run \(r) out of range \(chunkCount)")
            setRange(r.start..<r.start + r.count)
        }
    }

    /// Adds every dirty chunk of `other` (same chunk count). Leaves this map lacks are shared
    /// with `other` (copied only if written later).
    public mutating func formUnion(_ other: DirtyMap) {
        precondition(other.chunkCount == chunkCount,
                     "union of maps of \(other.chunkCount) and \(chunkCount) chunks")
        if other.table === table { return }
        var li = 0
        while let found = other.table.nextOccupied(from: li) {
            li = found + 1
            let theirs = other.table.entries[found].unsafelyUnwrapped
            guard let mine = table.entries[found] else {
                _dirtyCount += UInt64(theirs.popcount)
                uniqueTable().store(theirs, at: found)
                continue
            }
            if mine === theirs || mine.isFull { continue }
            if theirs.isFull {
                _dirtyCount += UInt64(theirs.valid - mine.popcount)
                uniqueTable().store(theirs, at: found)
                continue
            }
            _dirtyCount += UInt64(writableLeaf(found).formUnion(theirs))
        }
    }

    // MARK: searching

    /// The first dirty chunk at or after `c`, or nil (also nil when `c >= chunkCount`).
    public func nextDirty(from c: ChunkIndex) -> ChunkIndex? {
        if c >= chunkCount { return nil }
        let t = table
        var li = Int(c >> DirtyMap.leafShift)
        var local = Int(c & UInt64(DirtyMap.leafBits - 1))
        while let found = t.nextOccupied(from: li) {
            if found != li { li = found; local = 0 }
            let leaf = t.entries[li].unsafelyUnwrapped
            let base = UInt64(li) << DirtyMap.leafShift
            if leaf.isFull { return base + UInt64(local) }
            if let bit = leaf.nextSet(from: local) { return base + UInt64(bit) }
            li += 1; local = 0
        }
        return nil
    }

    /// The first clean chunk at or after `c`, or `chunkCount` if none.
    @usableFromInline func nextClean(from c: ChunkIndex) -> ChunkIndex {
        if c >= chunkCount { return chunkCount }
        let t = table
        var li = Int(c >> DirtyMap.leafShift)
        var local = Int(c & UInt64(DirtyMap.leafBits - 1))
        while li < t.leafCount {
            let base = UInt64(li) << DirtyMap.leafShift
            guard let leaf = t.entries[li] else { return base + UInt64(local) }
            if !leaf.isFull {
                let bit = leaf.nextClear(from: local)
                if bit < leaf.valid { return base + UInt64(bit) }
            }
            li += 1; local = 0
        }
        return chunkCount
    }

    /// The first `limit` dirty chunks, ascending.
    public func firstDirty(limit: Int) -> [ChunkIndex] {
        var out: [ChunkIndex] = []
        guard limit > 0 else { return out }
        out.reserveCapacity(Int(min(UInt64(limit), dirtyCount)))
        var c: ChunkIndex = 0
        while out.count < limit, let n = nextDirty(from: c) {
            out.append(n)
            c = n + 1
        }
        return out
    }

    /// Calls `body` with each maximal run of dirty chunks [start, end), ascending.
    @inlinable func forEachRun(_ body: (ChunkIndex, ChunkIndex) -> Void) {
        var c: ChunkIndex = 0
        while let s = nextDirty(from: c) {
            let e = nextClean(from: s)
            body(s, e)
            c = e
        }
    }

    /// The maximal runs of dirty chunks, ascending.
    public func runs() -> [ChunkRun] {
        var out: [ChunkRun] = []
        forEachRun { s, e in out.append(ChunkRun(start: s, count: e - s)) }
        return out
    }

    /// Number of maximal dirty runs. Cost: the non-zero words of materialised leaves plus one
    /// step per leaf; it does not allocate.
    public var runCount: Int {
        let t = table
        var runs = 0
        var prevDirty = false // is the chunk just before the current leaf dirty?
        for li in 0..<t.leafCount {
            guard let leaf = t.entries[li] else { prevDirty = false; continue }
            if leaf.isFull {
                if !prevDirty { runs += 1 }
                prevDirty = true
                continue
            }
            // Count 0->1 transitions over the non-zero words only.
            let w = leaf.words, s = leaf.summary, wc = leaf.wordCount
            var carry: UInt64 = prevDirty ? 1 : 0 // top bit of the word before, as 0/1
            var expect = 0                        // the word whose predecessor `carry` describes
            for sw in 0..<((wc + 63) >> 6) {
                var sx = s[sw]
                while sx != 0 {
                    let i = (sw << 6) | sx.trailingZeroBitCount
                    sx &= sx &- 1
                    if i != expect { carry = 0 } // clean words in between
                    let x = w[i]
                    runs += (x & ~((x &<< 1) | carry)).nonzeroBitCount
                    carry = x &>> 63
                    expect = i + 1
                }
            }
            prevDirty = (w[wc - 1] &>> UInt64((leaf.valid - 1) & 63)) & 1 != 0
        }
        return runs
    }

    // MARK: memory

    /// Heap bytes held by this map (table, occupied bits, leaves), counting 16 bytes of
    /// allocator overhead per allocation. Leaves shared with copies are counted in full; one
    /// leaf instance shared by neighbouring entries (the all-dirty marker of `setAll`) once.
    public var approximateMemoryBytes: Int {
        let mallocOverhead = 16
        let objectHeader = 16
        let t = table
        var bytes = objectHeader + MemoryLayout<DirtyMapTableHeader>.stride
            + t.leafCount * MemoryLayout<DirtyMapLeaf?>.stride + mallocOverhead
        bytes += max(t.occupiedWords, 1) * 8 + mallocOverhead
        let leafObject = objectHeader + MemoryLayout<DirtyMapLeafHeader>.stride + mallocOverhead
        var previous: DirtyMapLeaf? = nil
        var li = 0
        while let found = t.nextOccupied(from: li) {
            li = found + 1
            let leaf = t.entries[found].unsafelyUnwrapped
            if leaf === previous { continue }
            previous = leaf
            bytes += leafObject
            if !leaf.isFull { bytes += (DirtyMap.allocatedWords(leaf.wordCount) + DirtyMap.alignSlackWords) * 8 }
        }
        return bytes
    }

    // MARK: equality by content

    public static func == (lhs: DirtyMap, rhs: DirtyMap) -> Bool {
        if lhs.chunkCount != rhs.chunkCount || lhs.dirtyCount != rhs.dirtyCount { return false }
        let a = lhs.table, b = rhs.table
        if a === b { return true }
        for li in 0..<a.leafCount {
            let x = a.entries[li], y = b.entries[li]
            if x === y { continue }
            switch (x, y) {
            case (nil, nil): continue
            case (nil, let l?), (let l?, nil): if !l.summaryIsZero { return false }
            case (let l?, let m?):
                if l.isFull || m.isFull {
                    if !(l.isAllDirty && m.isAllDirty) { return false }
                } else if !l.sameWords(as: m) { return false }
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(chunkCount)
        hasher.combine(dirtyCount)
        let t = table
        for li in 0..<t.leafCount {
            // Canonical form per leaf: 0 clean, 1 all dirty, 2 + bits otherwise.
            guard let leaf = t.entries[li], !leaf.summaryIsZero else { hasher.combine(0 as UInt8); continue }
            if leaf.isAllDirty { hasher.combine(1 as UInt8); continue }
            hasher.combine(2 as UInt8)
            hasher.combine(bytes: UnsafeRawBufferPointer(start: leaf.words, count: leaf.wordCount * 8))
        }
    }

    // MARK: run encoding

    /// Compact encoding of the maximal runs: varint(run count), then per run
    /// varint(gap from the previous run's end, or from 0) and varint(count - 1).
    /// Size is proportional to the number of runs, not to the volume.
    public func encodedRuns() -> [UInt8] {
        var body: [UInt8] = []
        var n: UInt64 = 0
        var prevEnd: UInt64 = 0
        forEachRun { s, e in
            DirtyMap.appendVarint(s - prevEnd, to: &body)
            DirtyMap.appendVarint(e - s - 1, to: &body)
            prevEnd = e
            n += 1
        }
        var out: [UInt8] = []
        out.reserveCapacity(body.count + 10)
        DirtyMap.appendVarint(n, to: &out)
        out.append(contentsOf: body)
        return out
    }

    /// The same encoding for an explicit list of runs (e.g. one slice of a map transfer).
    /// Runs must be non-empty, ascending, and neither overlap nor touch.
    public static func encode(runs: [ChunkRun]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(runs.count * 4 + 10)
        appendVarint(UInt64(runs.count), to: &out)
        var prevEnd: UInt64 = 0
        for (i, r) in runs.enumerated() {
            precondition(r.count > 0, "empty run \(r)")
            precondition(i == 0 ? r.start >= prevEnd : r.start > prevEnd,
                         "run \(r) overlaps, touches or precedes the previous run")
            appendVarint(r.start - prevEnd, to: &out)
            appendVarint(r.count - 1, to: &out)
            prevEnd = r.start + r.count
        }
        return out
    }

    /// Decodes `encodedRuns()` / `encode(runs:)` output, validating it against `chunkCount`.
    /// Throws `RMRError(.EINVAL, ...)` naming the problem: truncated, overlong or non-minimal
    /// varints, a run count the bytes cannot hold, runs past `chunkCount`, runs touching or
    /// overlapping the previous one (not maximal), trailing bytes. Never traps.
    public static func decodeRuns(_ bytes: [UInt8], chunkCount: UInt64) throws -> [ChunkRun] {
        var pos = 0
        func varint(_ what: String) throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            let start = pos
            while true {
                guard pos < bytes.count else {
                    throw RMRError(.EINVAL, "dirty map runs: truncated varint (\(what)) at byte \(start)")
                }
                let b = bytes[pos]
                pos += 1
                let payload = UInt64(b & 0x7f)
                if shift > 63 || (shift == 63 && payload > 1) {
                    throw RMRError(.EINVAL, "dirty map runs: varint (\(what)) at byte \(start) overflows 64 bits")
                }
                value |= payload << shift
                if b & 0x80 == 0 {
                    if b == 0 && shift > 0 {
                        throw RMRError(.EINVAL, "dirty map runs: non-minimal varint (\(what)) at byte \(start)")
                    }
                    return value
                }
                shift += 7
            }
        }
        let n = try varint("run count")
        // Every run takes at least 2 bytes: reject impossible counts before allocating.
        guard n <= UInt64(bytes.count - pos) / 2 else {
            throw RMRError(.EINVAL, "dirty map runs: run count \(n) does not fit in \(bytes.count) bytes (truncated)")
        }
        var out: [ChunkRun] = []
        out.reserveCapacity(Int(n))
        var prevEnd: UInt64 = 0
        for i in 0..<n {
            let gap = try varint("gap of run \(i)")
            let countMinus1 = try varint("length of run \(i)")
            if i > 0 && gap == 0 {
                throw RMRError(.EINVAL, "dirty map runs: run \(i) at \(prevEnd) touches or overlaps the previous run")
            }
            guard gap <= chunkCount && prevEnd <= chunkCount - gap else {
                throw RMRError(.EINVAL, "dirty map runs: run \(i) starts past chunk count \(chunkCount)")
            }
            let start = prevEnd + gap
            guard countMinus1 < chunkCount - start else {
                throw RMRError(.EINVAL, "dirty map runs: run \(i) at \(start) of \(countMinus1 &+ 1) chunks ends past chunk count \(chunkCount)")
            }
            let count = countMinus1 + 1
            out.append(ChunkRun(start: start, count: count))
            prevEnd = start + count
        }
        if pos != bytes.count {
            throw RMRError(.EINVAL, "dirty map runs: \(bytes.count - pos) trailing bytes after \(n) runs")
        }
        return out
    }

    @usableFromInline static func appendVarint(_ v: UInt64, to out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}
