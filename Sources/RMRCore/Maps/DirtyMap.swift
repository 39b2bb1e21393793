// The dirty map: one bit per chunk, sparse, value semantics. Pure: standard library only.
//
// Layout (two levels, copy-on-write at both):
//   * `slots`: one entry per leaf of 2^18 chunks (256 Ki chunks, 32 KiB of bits).
//       nil                  -> every chunk of the leaf is clean (no memory),
//       Leaf with no words   -> every chunk of the leaf is dirty (the "full" marker),
//       Leaf with words      -> a bitmap; 0 < count < valid bits (normalised eagerly).
//   * `occupied`: one bit per leaf, set iff its slot is non-nil, so searches skip clean leaves
//     64 at a time.
//   * Inside a materialised leaf, a 512-bit summary (8 words, one cache line) has a bit per
//     block of 8 words (512 chunks) that holds any dirty bit, so searches skip clean blocks.
//   * Each leaf keeps its popcount; the map keeps the total, so `dirtyCount` is O(1).
//
// Copying a DirtyMap copies nothing: the first mutation after a copy copies the slot array
// (8 bytes per leaf) and leaves are shared until one is written (then only that leaf, 32 KiB,
// is copied). A leaf is written only when `isKnownUniquelyReferenced`, which is what makes the
// `@unchecked Sendable` on `Leaf` sound: shared leaves are only ever read.
//
// Bits beyond `chunkCount` in the last leaf are always zero.

/// A run of consecutive dirty chunks.
public struct ChunkRun: Hashable, Sendable, CustomStringConvertible {
    public var start: ChunkIndex
    public var count: UInt64
    public init(start: ChunkIndex, count: UInt64) { self.start = start; self.count = count }
    public var end: ChunkIndex { start + count }
    public var description: String { count == 1 ? "\(start)" : "\(start)+\(count)" }
}

@usableFromInline
struct DirtyMapLeafHeader {
    /// Dirty chunks in this leaf.
    @usableFromInline var count: Int
    /// Valid chunks in this leaf (2^18 except in the last leaf).
    @usableFromInline let valid: Int
    /// Words of bits (0 for the all-dirty marker).
    @usableFromInline let wordCount: Int
    @usableFromInline let isFull: Bool
    @inlinable init(count: Int, valid: Int, wordCount: Int, isFull: Bool) {
        self.count = count; self.valid = valid; self.wordCount = wordCount; self.isFull = isFull
    }
}

/// One leaf of the map: a header and, tail-allocated in the same object,
/// `DirtyMap.summaryWords` words of block summary followed by `wordCount` words of bits,
/// padded with zero words to a whole block of 8 (so a block can always be read whole).
/// The all-dirty marker has no words. Everything is reached through raw pointers (no dynamic
/// exclusivity checks on the hot path; the bits sit at a fixed offset from the object).
@usableFromInline
final class DirtyMapLeaf: ManagedBuffer<DirtyMapLeafHeader, UInt64> {
    @inlinable static func make(valid: Int, ones: Bool) -> DirtyMapLeaf {
        let wc = (valid + 63) >> 6
        let total = DirtyMap.allocatedWords(wc)
        let leaf = unsafeDowncast(DirtyMapLeaf.create(minimumCapacity: total) { _ in
            DirtyMapLeafHeader(count: ones ? valid : 0, valid: valid, wordCount: wc, isFull: false)
        }, to: DirtyMapLeaf.self)
        let b = leaf.base
        if ones {
            b.initialize(repeating: 0, count: total)
            (b + DirtyMap.summaryWords).update(repeating: ~0, count: wc)
            let tail = valid & 63
            if tail != 0 { b[DirtyMap.summaryWords + wc - 1] = (1 &<< UInt64(tail)) &- 1 }
            let blocks = (wc + 7) >> 3
            var blk = 0
            while blk < blocks { b[blk >> 6] |= 1 &<< UInt64(blk & 63); blk += 1 }
        } else {
            b.initialize(repeating: 0, count: total)
        }
        return leaf
    }

    /// The all-dirty marker for a leaf of `valid` chunks.
    @inlinable static func makeFull(valid: Int) -> DirtyMapLeaf {
        unsafeDowncast(DirtyMapLeaf.create(minimumCapacity: 0) { _ in
            DirtyMapLeafHeader(count: valid, valid: valid, wordCount: 0, isFull: true)
        }, to: DirtyMapLeaf.self)
    }

    /// A private copy of a materialised leaf.
    @inlinable func copy() -> DirtyMapLeaf {
        let h = hdr.pointee
        let total = DirtyMap.allocatedWords(h.wordCount)
        let leaf = unsafeDowncast(DirtyMapLeaf.create(minimumCapacity: total) { _ in h }, to: DirtyMapLeaf.self)
        leaf.base.initialize(from: base, count: total)
        return leaf
    }

    @inlinable var hdr: UnsafeMutablePointer<DirtyMapLeafHeader> { withUnsafeMutablePointerToHeader { $0 } }
    /// Summary words, then bit words.
    @inlinable var base: UnsafeMutablePointer<UInt64> { withUnsafeMutablePointerToElements { $0 } }
    @inlinable var words: UnsafeMutablePointer<UInt64> { base + DirtyMap.summaryWords }
    @inlinable var summary: UnsafeMutablePointer<UInt64> { base }
    @inlinable var count: Int {
        get { hdr.pointee.count }
        set { hdr.pointee.count = newValue }
    }
    @inlinable var valid: Int { hdr.pointee.valid }
    @inlinable var wordCount: Int { hdr.pointee.wordCount }
    @inlinable var isFull: Bool { hdr.pointee.isFull }

    /// Recompute the summary bits of blocks `firstBlock...lastBlock` from the words.
    @usableFromInline func resummarise(blocks firstBlock: Int, _ lastBlock: Int) {
        let w = words, s = summary, wc = wordCount
        var blk = firstBlock
        while blk <= lastBlock {
            let lo = blk << 3, hi = min(lo + 8, wc)
            var any: UInt64 = 0
            var i = lo
            while i < hi { any |= w[i]; i += 1 }
            let m: UInt64 = 1 &<< UInt64(blk & 63)
            if any != 0 { s[blk >> 6] |= m } else { s[blk >> 6] &= ~m }
            blk += 1
        }
    }

    /// First dirty local bit at or after `from`, or nil. Materialised leaves only.
    @usableFromInline func nextSet(from: Int) -> Int? {
        let w = words, s = summary, wordCount = wordCount
        var wi = from >> 6
        if wi >= wordCount { return nil }
        var x = w[wi] & (~0 &<< UInt64(from & 63))
        if x != 0 { return (wi << 6) | x.trailingZeroBitCount }
        // The rest of this block.
        let blockEnd = min((wi | 7) + 1, wordCount)
        wi += 1
        while wi < blockEnd {
            x = w[wi]
            if x != 0 { return (wi << 6) | x.trailingZeroBitCount }
            wi += 1
        }
        // Later blocks through the summary.
        let blocks = (wordCount + 7) >> 3
        var blk = (from >> 9) + 1
        while blk < blocks {
            let sw = blk >> 6
            let sx = s[sw] & (~0 &<< UInt64(blk & 63))
            if sx == 0 { blk = (sw + 1) << 6; continue }
            blk = (sw << 6) | sx.trailingZeroBitCount
            if blk >= blocks { return nil }
            let lo = blk << 3, hi = min(lo + 8, wordCount)
            var i = lo
            while i < hi {
                x = w[i]
                if x != 0 { return (i << 6) | x.trailingZeroBitCount }
                i += 1
            }
            blk += 1 // (unreachable when the summary is exact)
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

    /// Set (ones) or clear local bits [lo, hi), keeping count and summary. Materialised only.
    /// Returns the change in dirty bits.
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
        count += delta
        resummarise(blocks: firstWord >> 3, lastWord >> 3)
        return delta
    }

    /// Content equality of two leaves of the same position.
    @usableFromInline func sameContent(as other: DirtyMapLeaf) -> Bool {
        if self === other { return true }
        let n = count, valid = valid
        if n != other.count || valid != other.valid { return false }
        if n == 0 || n == valid { return true }
        if isFull || other.isFull { return false } // (unreachable: count says full)
        let a = words, b = other.words
        for i in 0..<wordCount where a[i] != b[i] { return false }
        return true
    }
}

/// One bit per chunk, sparse. Value type (copy-on-write).
public struct DirtyMap: Hashable, Sendable {
    /// log2 of the chunks per leaf.
    @usableFromInline static let leafShift: UInt64 = 18
    /// Chunks per leaf (256 Ki: 32 KiB of bits).
    @usableFromInline static let leafBits: Int = 1 << 18
    /// Words of bits per leaf.
    @usableFromInline static let leafWords: Int = 1 << 12
    /// Summary words per leaf: one bit per block of 8 words.
    @usableFromInline static let summaryWords: Int = 8
    /// Words allocated for a leaf of `wordCount` bit words: summary + bits padded to a block.
    @inlinable static func allocatedWords(_ wordCount: Int) -> Int { summaryWords + ((wordCount + 7) & ~7) }

    public let chunkCount: UInt64
    /// Dirty chunks, O(1).
    public var dirtyCount: UInt64 { _dirtyCount }
    @usableFromInline var _dirtyCount: UInt64 = 0
    /// One entry per leaf. `nonisolated(unsafe)` because ManagedBuffer (our leaf) is declared
    /// non-Sendable; sharing is sound because a leaf is only written while uniquely referenced
    /// (copy-on-write), so leaves reachable from several maps are only ever read.
    @usableFromInline nonisolated(unsafe) var slots: ContiguousArray<DirtyMapLeaf?>
    /// Bit `i` set iff `slots[i] != nil`.
    @usableFromInline var occupied: ContiguousArray<UInt64>

    public init(chunkCount: UInt64) {
        precondition(chunkCount <= Limits.maxChunks, "chunk count \(chunkCount) above \(Limits.maxChunks)")
        self.chunkCount = chunkCount
        let leaves = Int((chunkCount + UInt64(DirtyMap.leafBits) - 1) >> DirtyMap.leafShift)
        slots = ContiguousArray(repeating: nil, count: leaves)
        occupied = ContiguousArray(repeating: 0, count: (leaves + 63) >> 6)
    }

    public init(chunkCount: UInt64, allDirty: Bool) {
        self.init(chunkCount: chunkCount)
        if allDirty { setAll() }
    }

    public var isEmpty: Bool { dirtyCount == 0 }

    @inlinable var leafCount: Int { slots.count }

    /// Valid chunks in leaf `li`.
    @inlinable func validBits(_ li: Int) -> Int {
        let start = UInt64(li) << DirtyMap.leafShift
        return Int(min(UInt64(DirtyMap.leafBits), chunkCount - start))
    }

    @inlinable mutating func markOccupied(_ li: Int, _ on: Bool) {
        let m: UInt64 = 1 &<< UInt64(li & 63)
        if on { occupied[li >> 6] |= m } else { occupied[li >> 6] &= ~m }
    }

    // MARK: single bits

    @inlinable @inline(__always)
    public func isDirty(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        guard let leaf = slots[Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)] else { return false }
        if leaf.isFull { return true }
        let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
        return (leaf.base[DirtyMap.summaryWords &+ wi] &>> (c & 63)) & 1 != 0
    }

    /// Marks `c` dirty; true if it was clean.
    @inlinable @inline(__always) @discardableResult
    public mutating func set(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let li = Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)
        if isKnownUniquelyReferenced(&slots[li]) {
            let leaf = slots[li].unsafelyUnwrapped
            let h = leaf.hdr
            if !h.pointee.isFull {
                let b = leaf.base
                let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
                let p = b + (DirtyMap.summaryWords &+ wi)
                let old = p.pointee
                let new = old | (1 &<< (c & 63))
                p.pointee = new
                b[wi &>> 9] |= 1 &<< UInt64((wi &>> 3) & 63)
                let added = Int(truncatingIfNeeded: (old ^ new) &>> (c & 63))
                h.pointee.count &+= added
                _dirtyCount &+= UInt64(truncatingIfNeeded: added)
                if h.pointee.count == h.pointee.valid { becameFull(li) }
                return added != 0
            }
            return false
        }
        return setSlow(c, li)
    }

    @usableFromInline mutating func setSlow(_ c: ChunkIndex, _ li: Int) -> Bool {
        if let leaf = slots[li], leaf.isFull { return false }
        _ = writableLeaf(li) // allocate, or take a private copy of a shared leaf
        return set(c)
    }

    @usableFromInline mutating func becameFull(_ li: Int) {
        slots[li] = DirtyMapLeaf.makeFull(valid: validBits(li))
    }

    /// Marks `c` clean; true if it was dirty.
    @inlinable @inline(__always) @discardableResult
    public mutating func clear(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let li = Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)
        if isKnownUniquelyReferenced(&slots[li]) {
            let leaf = slots[li].unsafelyUnwrapped
            let h = leaf.hdr
            if !h.pointee.isFull {
                let b = leaf.base
                let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
                let w = b + DirtyMap.summaryWords
                let old = w[wi]
                let new = old & ~(1 &<< (c & 63))
                w[wi] = new
                // Keep the block's summary bit exact without a data-dependent branch: OR the
                // block's words (same cache line as the word just written).
                let blk = w + (wi & ~7)
                let any = (blk[0] | blk[1] | blk[2] | blk[3]) | (blk[4] | blk[5] | blk[6] | blk[7])
                let sbit: UInt64 = 1 &<< UInt64((wi &>> 3) & 63)
                let sp = b + (wi &>> 9)
                sp.pointee = (sp.pointee & ~sbit) | (any == 0 ? 0 : sbit)
                let removed = Int(truncatingIfNeeded: (old ^ new) &>> (c & 63))
                h.pointee.count &-= removed
                _dirtyCount &-= UInt64(truncatingIfNeeded: removed)
                if h.pointee.count == 0 { becameEmpty(li) }
                return removed != 0
            }
            return clearSlow(c, li)
        }
        if slots[li] == nil { return false }
        return clearSlow(c, li)
    }

    @usableFromInline mutating func clearSlow(_ c: ChunkIndex, _ li: Int) -> Bool {
        _ = writableLeaf(li) // expand the all-dirty marker, or copy a shared leaf
        return clear(c)
    }

    @usableFromInline mutating func becameEmpty(_ li: Int) {
        slots[li] = nil
        markOccupied(li, false)
    }

    /// Leaf `li` materialised and uniquely owned, ready to write (allocating a clean leaf for
    /// an empty slot, expanding the all-dirty marker). Checks uniqueness before binding any
    /// local reference, so an unshared leaf is never copied.
    @usableFromInline mutating func writableLeaf(_ li: Int) -> DirtyMapLeaf {
        if isKnownUniquelyReferenced(&slots[li]) {
            let leaf = slots[li].unsafelyUnwrapped
            if !leaf.isFull { return leaf }
        }
        let fresh: DirtyMapLeaf
        if let leaf = slots[li] {
            fresh = leaf.isFull ? DirtyMapLeaf.make(valid: leaf.valid, ones: true) : leaf.copy()
        } else {
            fresh = DirtyMapLeaf.make(valid: validBits(li), ones: false)
            markOccupied(li, true)
        }
        slots[li] = fresh
        return fresh
    }

    // MARK: whole map and ranges

    public mutating func setAll() {
        let n = leafCount
        guard n > 0 else { return }
        var newSlots = ContiguousArray<DirtyMapLeaf?>(repeating: nil, count: n)
        let full = DirtyMapLeaf.makeFull(valid: DirtyMap.leafBits)
        for i in 0..<(n - 1) { newSlots[i] = full }
        let lastValid = validBits(n - 1)
        newSlots[n - 1] = lastValid == DirtyMap.leafBits ? full : DirtyMapLeaf.makeFull(valid: lastValid)
        slots = newSlots
        var occ = ContiguousArray<UInt64>(repeating: ~0, count: occupied.count)
        if n & 63 != 0 { occ[occ.count - 1] = (1 &<< UInt64(n & 63)) &- 1 }
        occupied = occ
        _dirtyCount = chunkCount
    }

    public mutating func clearAll() {
        slots = ContiguousArray(repeating: nil, count: leafCount)
        occupied = ContiguousArray(repeating: 0, count: occupied.count)
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
            let oldCount = slots[li]?.count ?? 0
            if oldCount == valid { continue }
            if lo == 0 && hi == valid {
                _dirtyCount += UInt64(valid - oldCount)
                slots[li] = DirtyMapLeaf.makeFull(valid: valid)
                markOccupied(li, true)
                continue
            }
            let leaf = writableLeaf(li)
            _dirtyCount += UInt64(leaf.apply(lo, hi, ones: true))
            if leaf.count == leaf.valid { becameFull(li) }
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
            let oldCount = slots[li]?.count ?? 0
            if oldCount == 0 { continue }
            if lo == 0 && hi == valid {
                _dirtyCount -= UInt64(oldCount)
                becameEmpty(li)
                continue
            }
            let leaf = writableLeaf(li)
            _dirtyCount -= UInt64(-leaf.apply(lo, hi, ones: false))
            if leaf.count == 0 { becameEmpty(li) }
        }
    }

    public mutating func insert(runs: [ChunkRun]) {
        for r in runs {
            precondition(r.count <= chunkCount && r.start <= chunkCount - r.count,
                         "run \(r) out of range \(chunkCount)")
            setRange(r.start..<r.start + r.count)
        }
    }

    /// Adds every dirty chunk of `other` (same chunk count).
    public mutating func formUnion(_ other: DirtyMap) {
        precondition(other.chunkCount == chunkCount,
                     "union of maps of \(other.chunkCount) and \(chunkCount) chunks")
        var oi = 0
        while let li = other.nextOccupiedLeaf(from: oi) {
            oi = li + 1
            let theirs = other.slots[li].unsafelyUnwrapped
            let mineCount = slots[li]?.count ?? 0
            if mineCount == 0 {
                slots[li] = theirs // shared until written
                markOccupied(li, true)
                _dirtyCount += UInt64(theirs.count)
                continue
            }
            if mineCount == theirs.valid || slots[li] === theirs { continue }
            if theirs.isFull {
                _dirtyCount += UInt64(theirs.count - mineCount)
                slots[li] = theirs
                continue
            }
            let leaf = writableLeaf(li)
            let a = leaf.words, b = theirs.words
            var n = 0
            for i in 0..<leaf.wordCount { a[i] |= b[i]; n += a[i].nonzeroBitCount }
            for i in 0..<DirtyMap.summaryWords { leaf.summary[i] |= theirs.summary[i] }
            _dirtyCount += UInt64(n - leaf.count)
            leaf.count = n
            if n == leaf.valid { becameFull(li) }
        }
    }

    // MARK: searching

    /// Index of the first non-nil slot at or after `from`.
    @usableFromInline func nextOccupiedLeaf(from: Int) -> Int? {
        var li = from
        let n = leafCount
        while li < n {
            let wi = li >> 6
            let x = occupied[wi] & (~0 &<< UInt64(li & 63))
            if x != 0 { return (wi << 6) | x.trailingZeroBitCount }
            li = (wi + 1) << 6
        }
        return nil
    }

    /// The first dirty chunk at or after `c`, or nil (also nil when `c >= chunkCount`).
    public func nextDirty(from c: ChunkIndex) -> ChunkIndex? {
        if c >= chunkCount { return nil }
        var li = Int(c >> DirtyMap.leafShift)
        var local = Int(c & UInt64(DirtyMap.leafBits - 1))
        while let found = nextOccupiedLeaf(from: li) {
            if found != li { li = found; local = 0 }
            let leaf = slots[li].unsafelyUnwrapped
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
        var li = Int(c >> DirtyMap.leafShift)
        var local = Int(c & UInt64(DirtyMap.leafBits - 1))
        while li < leafCount {
            let base = UInt64(li) << DirtyMap.leafShift
            guard let leaf = slots[li] else { return base + UInt64(local) }
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
        out.reserveCapacity(min(limit, Int(min(dirtyCount, UInt64(Int.max)))))
        var c: ChunkIndex = 0
        while out.count < limit, let n = nextDirty(from: c) {
            out.append(n)
            c = n + 1
        }
        return out
    }

    /// Calls `body` with each maximal run of dirty chunks, ascending; stops when it returns false.
    @inlinable func forEachRun(_ body: (ChunkIndex, ChunkIndex) -> Bool) {
        var c: ChunkIndex = 0
        while let s = nextDirty(from: c) {
            let e = nextClean(from: s)
            if !body(s, e) { return }
            c = e
        }
    }

    /// The maximal runs of dirty chunks, ascending.
    public func runs() -> [ChunkRun] {
        var out: [ChunkRun] = []
        forEachRun { s, e in out.append(ChunkRun(start: s, count: e - s)); return true }
        return out
    }

    /// Number of maximal dirty runs. Cost: proportional to the dirty blocks (512 chunks each)
    /// of partial leaves plus the leaf count; full and clean leaves cost one step.
    public var runCount: Int {
        var runs = 0
        var prevDirty = false // is the chunk just before the current leaf dirty?
        for li in 0..<leafCount {
            guard let leaf = slots[li] else { prevDirty = false; continue }
            if leaf.isFull {
                if !prevDirty { runs += 1 }
                prevDirty = true
                continue
            }
            // Count 0->1 transitions over the non-zero blocks only.
            let w = leaf.words, s = leaf.summary
            let blocks = (leaf.wordCount + 7) >> 3
            var prevWordTop: UInt64 = prevDirty ? 1 : 0 // bit 63 of the word before, as 0/1
            var expectWord = 0 // index of the word whose predecessor is in prevWordTop
            for sw in 0..<((blocks + 63) >> 6) {
                var sx = s[sw]
                while sx != 0 {
                    let blk = (sw << 6) | sx.trailingZeroBitCount
                    sx &= sx &- 1
                    let lo = blk << 3, hi = min(lo + 8, leaf.wordCount)
                    if lo != expectWord { prevWordTop = 0 } // skipped clean words in between
                    for i in lo..<hi {
                        let x = w[i]
                        runs += (x & ~((x &<< 1) | prevWordTop)).nonzeroBitCount
                        prevWordTop = x &>> 63
                    }
                    expectWord = hi
                }
            }
            let lastWord = leaf.wordCount - 1
            let lastBitDirty = (w[lastWord] &>> UInt64((leaf.valid - 1) & 63)) & 1 != 0
            prevDirty = lastBitDirty
        }
        return runs
    }

    // MARK: memory

    /// Heap bytes held by this map (slot array, occupancy bits, leaves), counting 16 bytes
    /// of allocator overhead per allocation. Leaves shared with copies are counted in full;
    /// one leaf instance shared by neighbouring slots (the all-dirty marker of `setAll`) once.
    public var approximateMemoryBytes: Int {
        let mallocOverhead = 16
        let arrayHeader = 32
        let leafObject = 16 + MemoryLayout<DirtyMapLeafHeader>.stride // object header + leaf header
        var bytes = arrayHeader + mallocOverhead + slots.count * MemoryLayout<DirtyMapLeaf?>.stride
        bytes += arrayHeader + mallocOverhead + occupied.count * 8
        var previous: DirtyMapLeaf? = nil
        for case let leaf? in slots {
            if leaf === previous { continue }
            previous = leaf
            bytes += leafObject + mallocOverhead
            if !leaf.isFull { bytes += DirtyMap.allocatedWords(leaf.wordCount) * 8 }
        }
        return bytes
    }

    // MARK: equality by content

    public static func == (lhs: DirtyMap, rhs: DirtyMap) -> Bool {
        if lhs.chunkCount != rhs.chunkCount || lhs.dirtyCount != rhs.dirtyCount { return false }
        for li in 0..<lhs.leafCount {
            switch (lhs.slots[li], rhs.slots[li]) {
            case (nil, nil): continue
            case (nil, let b?): if b.count != 0 { return false }
            case (let a?, nil): if a.count != 0 { return false }
            case (let a?, let b?): if !a.sameContent(as: b) { return false }
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(chunkCount)
        hasher.combine(dirtyCount)
        for li in 0..<leafCount {
            guard let leaf = slots[li], leaf.count != 0 else { hasher.combine(0 as Int); continue }
            hasher.combine(leaf.count)
            if leaf.count != leaf.valid, !leaf.isFull {
                hasher.combine(bytes: UnsafeRawBufferPointer(start: leaf.words, count: leaf.wordCount * 8))
            }
        }
    }

    // MARK: run encoding

    /// Compact encoding of the maximal runs: varint(run count), then per run
    /// varint(gap from the previous run's end, or from 0) and varint(count - 1).
    /// Size is proportional to the number of runs, not to the volume.
    public func encodedRuns() -> [UInt8] {
        var out: [UInt8] = []
        var body: [UInt8] = []
        var n = 0
        var prevEnd: UInt64 = 0
        forEachRun { s, e in
            DirtyMap.appendVarint(s - prevEnd, to: &body)
            DirtyMap.appendVarint(e - s - 1, to: &body)
            prevEnd = e
            n += 1
            return true
        }
        out.reserveCapacity(body.count + 10)
        DirtyMap.appendVarint(UInt64(n), to: &out)
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

    /// Decodes `encodedRuns()` output, validating it against `chunkCount`. Throws
    /// `RMRError(.EINVAL, ...)` naming the problem for truncated or overlong varints, run
    /// counts that do not match the bytes, runs past `chunkCount`, touching/overlapping runs
    /// (non-maximal) and trailing bytes.
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
                if shift == 63 && payload > 1 || shift > 63 {
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
        // Every run takes at least 2 bytes: reject absurd counts before allocating.
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
