// The dirty map: one bit per chunk, sparse, value semantics. Pure: standard library, plus the
// cache hint of CPrefetch (a prefetch changes no value; see "Prefetching" below).
//
// Layout:
//   * Chunks are grouped in leaves of 2^18 (256 Ki chunks, 32 KiB of bits). A table (one
//     object, the copy-on-write unit of the map) has two words per leaf, side by side (one
//     cache line holds four leaves):
//       bits  0          every chunk of the leaf is clean (no memory),
//             1          every chunk of the leaf is dirty (no memory: `setAll` is cheap),
//             otherwise  the address of the leaf's bit words (64-byte aligned), owned by the
//                        table: allocated when the leaf first needs bits, freed when the entry
//                        is replaced or the table dies. No other table ever refers to them.
//       meta  for a bitmap leaf, its dirty count (low 32 bits, exact) and its search summary
//             (high 32 bits, one per group of 128 words = 8192 chunks); 0 for the markers.
//     A test is one table load and one word load. A set or clear writes the bit word and the
//     meta word next to the entry it just read, without branching on the word's old value:
//     set ORs in the group's summary bit and adds 0 or 1 to the count, clear subtracts.
//     The clear that brings the count to 0 frees the leaf, so clean leaves cost no memory.
//   * The summary is a superset: a group's bit is set whenever the group holds a dirty chunk.
//     A single clear leaves the bit set when it empties the group (knowing would take a scan
//     of the group); range operations recompute the bits of the groups they touch, and the
//     summary goes with the leaf when it is freed. `nextDirty` skips clean leaves 64 at a
//     time (one "occupied" bit per leaf) and unmarked groups a bit at a time; a stale bit
//     costs one scan of its 1 KiB group.
//   * The map keeps the total dirty count, so `dirtyCount` is O(1).
//
// Copy-on-write, whole table: copying a DirtyMap copies nothing; maps share the table (and
// so its leaves) until one of them is mutated, which first makes a private deep copy of the
// table (its entries, summaries and every bitmap leaf: O(bitmap leaves x 32 KiB), like the
// first write to a copied Array). Leaves are never shared between tables, so a table that is
// uniquely referenced owns every leaf it points to: a mutation needs exactly one uniqueness
// check (of the table), and anything reachable from several maps is only ever read.
//
// Batches: that check is a runtime call, and on random single sets / clears over a large map
// it costs about a third of the time. `withWriter` makes the check once and hands the body a
// `~Copyable` `DirtyMap.Writer` over the (now unique) table whose set / clear / isDirty make
// no runtime call; `set(contentsOf:)` / `clear(contentsOf:)` are built on it. See
// `withWriter` for why skipping the per-operation check is sound.
//
// Prefetching: random operations over a large map are bound by memory latency (one miss per
// operation, into 64 MiB of leaves for a full 64 TiB map), and the CPU overlaps only the few
// misses its reorder window holds. The batch calls over a random-access collection
// (`set(contentsOf:)`, `clear(contentsOf:)`, `dirtyCount(among:)`) prefetch the bit word of
// the chunk `prefetchDistance` operations ahead, and `prefetch(_:)` lets callers of single
// operations do the same (`rmr-bench map`: about 1.6x the byte-per-chunk baseline, against
// 0.7-1.2x without).
//
// Single calls keep `isKnownUniquelyReferenced`. Reading the table's reference-count word
// inline instead (tried: no call, but no clear gain on set either) is not a sound check: the
// optimiser does not know such a load observes the count, so it may delay or drop the
// retain of a second copy of the map past it (copy propagation may sink the copy into the
// slow path) and the shared table would look unique. Reshaping the single calls like the
// writer's (one out-of-line slow path merged before the count update) made no measurable
// difference, so they were left as they are.
//
// Invariants (`checkInvariants()`): bits beyond `chunkCount` in the last leaf are zero; a
// bitmap leaf is never all clean (it is freed when its last dirty chunk is cleared); its
// count is exact and its summary covers every non-zero word; it may be all dirty (single
// sets do not fold it into the marker), so equality and hashing compare by content.

import CPrefetch

/// A run of consecutive dirty chunks.
public struct ChunkRun: Hashable, Sendable, CustomStringConvertible {
    public var start: ChunkIndex
    public var count: UInt64
    public init(start: ChunkIndex, count: UInt64) { self.start = start; self.count = count }
    public var end: ChunkIndex { start + count }
    public var description: String { count == 1 ? "\(start)" : "\(start)+\(count)" }
}

// MARK: - Leaf bits

/// Bit-level algorithms on one leaf's words `w` (`wc` words, `valid` chunks) and its search
/// summary `s` (bit `g` for words [128 g, 128 g + 128)).
@usableFromInline
enum DirtyMapBits {
    @inlinable @inline(__always) static func words(_ raw: UInt) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer(bitPattern: raw).unsafelyUnwrapped
    }

    /// `wc` uninitialised words, 64-byte aligned; the caller fills them and stores the address
    /// in a table entry, which owns them from then on.
    @usableFromInline static func allocate(_ wc: Int) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutableRawPointer.allocate(byteCount: max(wc, 1) * 8, alignment: 64)
            .bindMemory(to: UInt64.self, capacity: max(wc, 1))
    }

    @usableFromInline static func clean(_ wc: Int) -> UnsafeMutablePointer<UInt64> {
        let w = allocate(wc)
        w.initialize(repeating: 0, count: wc)
        return w
    }

    /// All `valid` chunks dirty (bits past `valid` zero).
    @usableFromInline static func dirty(_ wc: Int, valid: Int) -> UnsafeMutablePointer<UInt64> {
        let w = allocate(wc)
        w.initialize(repeating: ~0, count: wc)
        let tail = valid & 63
        if tail != 0 { w[wc - 1] = (1 &<< UInt64(tail)) &- 1 }
        return w
    }

    @usableFromInline static func copy(_ from: UnsafeMutablePointer<UInt64>, _ wc: Int) -> UnsafeMutablePointer<UInt64> {
        let w = allocate(wc)
        w.initialize(from: from, count: wc)
        return w
    }

    /// Summary bits of groups `g0...g1` (local word groups), marking `g` for each one with a
    /// group number in range; 0 if `g0 > g1`.
    @usableFromInline static func groupRange(_ g0: Int, _ g1: Int) -> UInt {
        if g0 > g1 { return 0 }
        let upTo: UInt = g1 >= 63 ? ~0 : (1 &<< UInt(g1 + 1)) &- 1
        return upTo & ~((1 &<< UInt(g0)) &- 1)
    }

    /// The exact summary bits of groups `g0...g1`: bit `g` set iff group `g` has a non-zero word.
    @usableFromInline static func summary(_ w: UnsafeMutablePointer<UInt64>, _ wc: Int, _ g0: Int, _ g1: Int) -> UInt {
        var s: UInt = 0
        var g = g0
        while g <= g1 {
            var wi = g << DirtyMap.groupWordShift
            let end = min(wi + DirtyMap.groupWords, wc)
            var any: UInt64 = 0
            while wi < end { any |= w[wi]; wi += 1 }
            if any != 0 { s |= 1 &<< UInt(g) }
            g += 1
        }
        return s
    }

    /// First dirty local bit at or after `from`, or nil. Visits only the words of groups
    /// marked in `s` (past the word holding `from`).
    @usableFromInline static func nextSet(_ w: UnsafeMutablePointer<UInt64>, _ s: UInt,
                                          _ wc: Int, from: Int) -> Int? {
        var wi = from >> 6
        if wi >= wc { return nil }
        let x = w[wi] & (~0 &<< UInt64(from & 63))
        if x != 0 { return (wi << 6) | x.trailingZeroBitCount }
        wi += 1
        while wi < wc {
            let gi = wi >> DirtyMap.groupWordShift
            let marked = s & (~0 &<< UInt(gi))
            if marked == 0 { return nil }
            let next = marked.trailingZeroBitCount
            if next != gi { wi = next << DirtyMap.groupWordShift; continue }
            let end = min((gi + 1) << DirtyMap.groupWordShift, wc)
            // Skip clean words 8 at a time (the group is mostly clean when sparse).
            while wi + 8 <= end && (w[wi] | w[wi + 1] | w[wi + 2] | w[wi + 3]) | (w[wi + 4] | w[wi + 5] | w[wi + 6] | w[wi + 7]) == 0 {
                wi += 8
            }
            while wi < end {
                let y = w[wi]
                if y != 0 { return (wi << 6) | y.trailingZeroBitCount }
                wi += 1
            }
        }
        return nil
    }

    /// First clean local bit at or after `from`, or `valid` if none.
    @usableFromInline static func nextClear(_ w: UnsafeMutablePointer<UInt64>, _ wc: Int, _ valid: Int, from: Int) -> Int {
        var wi = from >> 6
        if wi >= wc { return valid }
        var x = ~w[wi] & (~0 &<< UInt64(from & 63))
        while true {
            if x != 0 { return min(valid, (wi << 6) | x.trailingZeroBitCount) }
            wi += 1
            if wi >= wc { return valid }
            x = ~w[wi]
        }
    }

    /// Sets (`ones`) or clears local bits [lo, hi). Returns the change in dirty chunks (the
    /// caller keeps the leaf's count and summary).
    @usableFromInline static func apply(_ w: UnsafeMutablePointer<UInt64>, _ lo: Int, _ hi: Int, ones: Bool) -> Int {
        let firstWord = lo >> 6, lastWord = (hi - 1) >> 6
        var delta = 0
        for wi in firstWord...lastWord {
            var m: UInt64 = ~0
            if wi == firstWord { m &= ~0 &<< UInt64(lo & 63) }
            if wi == lastWord && hi & 63 != 0 { m &= (1 &<< UInt64(hi & 63)) &- 1 }
            let old = w[wi]
            let new = ones ? old | m : old & ~m
            w[wi] = new
            delta += new.nonzeroBitCount - old.nonzeroBitCount
        }
        return delta
    }

    /// Prefetches the bit word of chunk `c` when `raw`, its leaf's entry, is a bitmap (a
    /// marker has no word to load). A cache hint only: nothing observable changes.
    @inlinable @inline(__always) static func prefetch(_ raw: UInt, _ c: ChunkIndex) {
        if raw > DirtyMap.fullBits {
            let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
            rmr_prefetch_write(words(raw) + wi)
        }
    }

    @usableFromInline static func popcount(_ w: UnsafeMutablePointer<UInt64>, _ wc: Int) -> Int {
        var n = 0
        for i in 0..<wc { n &+= w[i].nonzeroBitCount }
        return n
    }

    @usableFromInline static func same(_ a: UnsafeMutablePointer<UInt64>, _ b: UnsafeMutablePointer<UInt64>, _ wc: Int) -> Bool {
        for i in 0..<wc where a[i] != b[i] { return false }
        return true
    }
}

// MARK: - Table

@usableFromInline
struct DirtyMapTableHeader {
    @usableFromInline let leafCount: Int
    /// Chunks of the map (the last leaf may be partial).
    @usableFromInline let chunkCount: UInt64
    /// Bit `i` set iff entry `i` is not clean.
    @usableFromInline let occupied: UnsafeMutablePointer<UInt64>
    @usableFromInline let occupiedWords: Int
    /// Entries holding a bitmap.
    @usableFromInline var bitmapLeaves: Int
}

/// The leaf table: header, then two words per leaf tail-allocated (bits at 2 i, meta at
/// 2 i + 1; see the layout note at the top of the file). Owns the bit words of its bitmap
/// entries.
@usableFromInline
final class DirtyMapTable: ManagedBuffer<DirtyMapTableHeader, UInt> {
    @usableFromInline static func make(chunkCount: UInt64) -> DirtyMapTable {
        let leafCount = Int((chunkCount + UInt64(DirtyMap.leafBits) - 1) >> DirtyMap.leafShift)
        let ow = max((leafCount + 63) >> 6, 1)
        let occupied = UnsafeMutablePointer<UInt64>.allocate(capacity: ow)
        occupied.initialize(repeating: 0, count: ow)
        let t = unsafeDowncast(DirtyMapTable.create(minimumCapacity: 2 * leafCount) { _ in
            DirtyMapTableHeader(leafCount: leafCount, chunkCount: chunkCount, occupied: occupied, occupiedWords: ow,
                                bitmapLeaves: 0)
        }, to: DirtyMapTable.self)
        t.entries.initialize(repeating: 0, count: 2 * leafCount)
        return t
    }

    /// A deep copy: the same entries, summaries and counts, with a private copy of every
    /// bitmap leaf (leaves are never shared between tables).
    @usableFromInline func copy() -> DirtyMapTable {
        let t = DirtyMapTable.make(chunkCount: head.pointee.chunkCount)
        let n = leafCount, src = entries, dst = t.entries
        for li in 0..<n {
            let raw = src[2 * li]
            dst[2 * li] = raw > DirtyMap.fullBits
                ? UInt(bitPattern: DirtyMapBits.copy(DirtyMapBits.words(raw), wordCount(li)))
                : raw
            dst[2 * li + 1] = src[2 * li + 1]
        }
        t.occupied.update(from: occupied, count: occupiedWords)
        t.head.pointee.bitmapLeaves = head.pointee.bitmapLeaves
        return t
    }

    deinit {
        withUnsafeMutablePointers { h, e in
            for li in 0..<h.pointee.leafCount where e[2 * li] > DirtyMap.fullBits {
                UnsafeMutableRawPointer(bitPattern: e[2 * li]).unsafelyUnwrapped.deallocate()
            }
            e.deinitialize(count: 2 * h.pointee.leafCount)
            h.pointee.occupied.deallocate()
        }
    }

    @inlinable var entries: UnsafeMutablePointer<UInt> { withUnsafeMutablePointerToElements { $0 } }
    @inlinable var head: UnsafeMutablePointer<DirtyMapTableHeader> { withUnsafeMutablePointerToHeader { $0 } }
    @inlinable var leafCount: Int { head.pointee.leafCount }
    @inlinable var occupied: UnsafeMutablePointer<UInt64> { head.pointee.occupied }
    @inlinable var occupiedWords: Int { head.pointee.occupiedWords }
    /// Entry `li`: clean, all dirty or the address of its bits.
    @inlinable @inline(__always) func bits(_ li: Int) -> UInt { entries[li &<< 1] }
    /// Meta word of entry `li`: count and summary of a bitmap leaf, 0 for the markers.
    @inlinable @inline(__always) func meta(_ li: Int) -> UInt { entries[(li &<< 1) | 1] }
    /// Replaces the meta word of bitmap leaf `li`. The table must be uniquely referenced.
    @inlinable @inline(__always) func setMeta(_ meta: UInt, _ li: Int) { entries[(li &<< 1) | 1] = meta }
    /// Valid chunks in leaf `li` (the last leaf may be partial).
    @usableFromInline func validBits(_ li: Int) -> Int {
        let start = UInt64(li) << DirtyMap.leafShift
        return Int(min(UInt64(DirtyMap.leafBits), head.pointee.chunkCount - start))
    }
    /// Words of leaf `li`'s bitmap.
    @usableFromInline func wordCount(_ li: Int) -> Int { (validBits(li) + 63) >> 6 }

    /// The bits of leaf `li` as a bitmap, ready to write: allocates a clean leaf for a clean
    /// entry (count 0 until the caller sets a chunk), expands the all-dirty marker. The table
    /// must be uniquely referenced.
    @usableFromInline func writableBits(_ li: Int) -> UnsafeMutablePointer<UInt64> {
        let raw = bits(li)
        if raw > DirtyMap.fullBits { return DirtyMapBits.words(raw) }
        let valid = validBits(li), wc = (valid + 63) >> 6
        if raw == DirtyMap.cleanBits {
            let w = DirtyMapBits.clean(wc)
            store(UInt(bitPattern: w), meta: 0, at: li)
            return w
        }
        let w = DirtyMapBits.dirty(wc, valid: valid)
        store(UInt(bitPattern: w), meta: UInt(valid) | DirtyMap.allGroups(wc) &<< DirtyMap.summaryShift, at: li)
        return w
    }

    /// Stores `entry` and its `meta` word at `li`, keeping the occupied bit and the bitmap
    /// count. Frees the bits of the bitmap it replaces; a new bitmap entry must be freshly
    /// allocated (owned by no other entry or table). The table must be uniquely referenced.
    @usableFromInline func store(_ entry: UInt, meta: UInt, at li: Int) {
        let m: UInt64 = 1 &<< UInt64(li & 63)
        if entry != DirtyMap.cleanBits { occupied[li >> 6] |= m } else { occupied[li >> 6] &= ~m }
        let e = entries + 2 * li
        e[1] = meta
        let old = e[0]
        if old == entry { return }
        if old > DirtyMap.fullBits { UnsafeMutableRawPointer(bitPattern: old).unsafelyUnwrapped.deallocate() }
        let was = old > DirtyMap.fullBits ? 1 : 0, now = entry > DirtyMap.fullBits ? 1 : 0
        e[0] = entry
        head.pointee.bitmapLeaves += now - was
    }

    /// Index of the first non-clean entry at or after `from`.
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
    /// log2 of the chunks per summary group (8192: 128 words, 1 KiB), and of its words; 32
    /// groups per leaf.
    @usableFromInline static let groupShift: UInt64 = 13
    @usableFromInline static let groupWordShift: Int = 7
    @usableFromInline static let groupWords: Int = 1 << 7
    /// The meta word: count in the low 32 bits, summary above.
    @usableFromInline static let countMask: UInt = 0xFFFF_FFFF
    @usableFromInline static let summaryShift: UInt = 32
    /// Entry `bits` values that are not addresses.
    @usableFromInline static let cleanBits: UInt = 0
    @usableFromInline static let fullBits: UInt = 1

    public let chunkCount: UInt64
    /// Dirty chunks, O(1).
    public var dirtyCount: UInt64 { _dirtyCount }
    @usableFromInline var _dirtyCount: UInt64 = 0
    /// `nonisolated(unsafe)` because ManagedBuffer (the table) is declared non-Sendable.
    /// Sharing is sound: a table (and the leaves only it owns) is only written while uniquely
    /// referenced (copy-on-write), so anything reachable from several maps is only ever read.
    @usableFromInline nonisolated(unsafe) var table: DirtyMapTable

    public init(chunkCount: UInt64) {
        precondition(chunkCount <= Limits.maxChunks, "chunk count \(chunkCount) above \(Limits.maxChunks)")
        self.chunkCount = chunkCount
        table = DirtyMapTable.make(chunkCount: chunkCount)
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
    @inlinable func wordCount(_ li: Int) -> Int { (validBits(li) + 63) >> 6 }

    /// Summary bits of all the groups of a leaf of `wc` words.
    @inlinable static func allGroups(_ wc: Int) -> UInt {
        DirtyMapBits.groupRange(0, (wc - 1) >> DirtyMap.groupWordShift)
    }

    // MARK: single bits

    @inlinable @inline(__always)
    public func isDirty(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let raw = table.bits(Int(truncatingIfNeeded: c &>> DirtyMap.leafShift))
        if raw <= DirtyMap.fullBits { return raw == DirtyMap.fullBits }
        let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
        return (DirtyMapBits.words(raw)[wi] &>> (c & 63)) & 1 != 0
    }

    /// A hint, no effect on the map: starts loading the word that holds chunk `c`'s bit into
    /// the cache, so that an operation on `c` a few operations later finds it there. Random
    /// single operations over a large map wait for memory; issuing the hint about
    /// `prefetchDistance` operations ahead lets those waits overlap (`rmr-bench map` shows
    /// the gain). The batch calls (`set(contentsOf:)`, `clear(contentsOf:)`,
    /// `dirtyCount(among:)`) do this themselves. Out-of-range chunks are ignored.
    @inlinable @inline(__always)
    public func prefetch(_ c: ChunkIndex) {
        if c < chunkCount { DirtyMapBits.prefetch(table.bits(Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)), c) }
    }

    /// How many operations ahead the batch calls prefetch: enough misses in flight to cover a
    /// memory access, few enough that the prefetched lines are still in L1 when used.
    public static let prefetchDistance = 16

    /// Marks `c` dirty; true if it was clean.
    @inlinable @inline(__always) @discardableResult
    public mutating func set(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let li = Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)
        // A uniquely referenced table owns its leaves: one check covers both.
        if _fastPath(isKnownUniquelyReferenced(&table)) {
            let e = table.entries + (li &<< 1)
            let raw = e[0]
            if _fastPath(raw > DirtyMap.fullBits) {
                let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
                let p = DirtyMapBits.words(raw) + wi
                let old = p.pointee
                p.pointee = old | (1 &<< (c & 63))
                let added = (~old &>> (c & 63)) & 1 // 0 or 1, visibly (no branch for the caller)
                // Count += added; summary bit 32 + (group of c in the leaf): `&<<` takes the
                // shift modulo 64, so OR-ing 32 into the chunk's group number selects it.
                let group = UInt(truncatingIfNeeded: c &>> DirtyMap.groupShift) | DirtyMap.summaryShift
                e[1] = (e[1] | (1 &<< group)) &+ UInt(truncatingIfNeeded: added)
                _dirtyCount &+= added
                return added != 0
            }
            if raw == DirtyMap.fullBits { return false }
        }
        return setSlow(c, li)
    }

    @usableFromInline mutating func setSlow(_ c: ChunkIndex, _ li: Int) -> Bool {
        if table.bits(li) == DirtyMap.fullBits { return false }
        _ = writableBits(li) // copy a shared table, allocate a clean leaf
        return set(c)
    }

    /// Marks `c` clean; true if it was dirty.
    @inlinable @inline(__always) @discardableResult
    public mutating func clear(_ c: ChunkIndex) -> Bool {
        precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
        let li = Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)
        if _fastPath(isKnownUniquelyReferenced(&table)) {
            let e = table.entries + (li &<< 1)
            let raw = e[0]
            if _fastPath(raw > DirtyMap.fullBits) {
                let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
                let p = DirtyMapBits.words(raw) + wi
                let old = p.pointee
                // old & ~(1 << k), spelled as a rotate of ~1 so that it compiles to one `btr`
                // (LLVM makes `~(1 << k)` a shift of -1 and a decrement).
                let k = c & 63
                p.pointee = old & ((~1 &<< k) | (~1 &>> (64 &- k)))
                let removed = (old &>> k) & 1
                // Count -= removed (the summary keeps its bit: it may now be stale).
                let meta = e[1] &- UInt(truncatingIfNeeded: removed)
                e[1] = meta
                _dirtyCount &-= removed
                // A bitmap leaf's count is never 0 before a clear: 0 now means this clear took
                // its last dirty chunk.
                if _slowPath(meta & DirtyMap.countMask == 0) { freeLeaf(li) }
                return removed != 0
            }
            if raw == DirtyMap.cleanBits { return false }
        }
        return clearSlow(c, li)
    }

    @usableFromInline mutating func clearSlow(_ c: ChunkIndex, _ li: Int) -> Bool {
        if table.bits(li) == DirtyMap.cleanBits { return false }
        _ = writableBits(li) // copy a shared table, expand the all-dirty marker
        return clear(c)
    }

    /// Frees bitmap leaf `li`, which holds no dirty chunk. The table must be uniquely referenced.
    @usableFromInline mutating func freeLeaf(_ li: Int) {
        table.store(DirtyMap.cleanBits, meta: 0, at: li)
    }

    /// The table, deep-copied first if shared.
    @inlinable mutating func uniqueTable() -> DirtyMapTable {
        if !isKnownUniquelyReferenced(&table) { table = table.copy() }
        return table
    }

    /// The bits of leaf `li` as a bitmap owned by this map's (unique) table, ready to write:
    /// copies a shared table, allocates a clean leaf for a clean entry (count 0 until the
    /// caller sets a chunk), expands the all-dirty marker.
    @usableFromInline mutating func writableBits(_ li: Int) -> UnsafeMutablePointer<UInt64> {
        uniqueTable().writableBits(li)
    }

    /// Dirty chunks of leaf `li` (O(1)).
    @usableFromInline func popcount(_ li: Int) -> Int {
        let raw = table.bits(li)
        if raw == DirtyMap.cleanBits { return 0 }
        if raw == DirtyMap.fullBits { return validBits(li) }
        return Int(table.meta(li) & DirtyMap.countMask)
    }

    /// Checks every layout invariant (see the top of the file) and `dirtyCount`; traps on a
    /// violation. O(bitmap leaves x 32 KiB): for tests.
    func checkInvariants() {
        let t = table
        var total: UInt64 = 0
        var bitmaps = 0
        for li in 0..<t.leafCount {
            let raw = t.bits(li), meta = t.meta(li)
            let occupied = (t.occupied[li >> 6] >> UInt64(li & 63)) & 1 != 0
            precondition(occupied == (raw != DirtyMap.cleanBits), "leaf \(li): occupied bit wrong")
            if raw <= DirtyMap.fullBits {
                precondition(meta == 0, "leaf \(li): marker with meta \(meta)")
                if raw == DirtyMap.fullBits { total += UInt64(validBits(li)) }
                continue
            }
            bitmaps += 1
            let w = DirtyMapBits.words(raw), wc = wordCount(li), valid = validBits(li)
            let n = DirtyMapBits.popcount(w, wc)
            precondition(n > 0, "leaf \(li): all-clean bitmap")
            precondition(UInt(n) == meta & DirtyMap.countMask, "leaf \(li): count \(meta & DirtyMap.countMask), bits \(n)")
            let summary = meta >> DirtyMap.summaryShift
            let exact = DirtyMapBits.summary(w, wc, 0, (wc - 1) >> DirtyMap.groupWordShift)
            precondition(exact & ~summary == 0, "leaf \(li): summary \(summary) misses groups of \(exact)")
            precondition(summary & ~DirtyMap.allGroups(wc) == 0, "leaf \(li): summary \(summary) past the leaf")
            if valid & 63 != 0 {
                precondition(w[wc - 1] >> UInt64(valid & 63) == 0, "leaf \(li): bits past chunkCount")
            }
            total += UInt64(n)
        }
        for wi in 0..<t.occupiedWords {
            let first = wi << 6
            let stray = first + 64 <= t.leafCount ? 0 : t.occupied[wi] & ~((1 &<< UInt64(max(t.leafCount - first, 0))) &- 1)
            precondition(stray == 0, "occupied bits past the last leaf")
        }
        precondition(bitmaps == t.head.pointee.bitmapLeaves, "bitmap count \(t.head.pointee.bitmapLeaves), found \(bitmaps)")
        precondition(total == dirtyCount, "dirtyCount \(dirtyCount), counted \(total)")
    }

    // MARK: whole map and ranges

    public mutating func setAll() {
        let t = DirtyMapTable.make(chunkCount: chunkCount)
        for li in 0..<t.leafCount { t.store(DirtyMap.fullBits, meta: 0, at: li) }
        table = t
        _dirtyCount = chunkCount
    }

    public mutating func clearAll() {
        table = DirtyMapTable.make(chunkCount: chunkCount)
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
            if table.bits(li) == DirtyMap.fullBits { continue }
            if lo == 0 && hi == valid {
                _dirtyCount += UInt64(valid - popcount(li))
                uniqueTable().store(DirtyMap.fullBits, meta: 0, at: li)
                continue
            }
            let w = writableBits(li)
            let added = DirtyMapBits.apply(w, lo, hi, ones: true)
            let touched = DirtyMapBits.groupRange(lo >> Int(DirtyMap.groupShift), (hi - 1) >> Int(DirtyMap.groupShift))
            table.setMeta((table.meta(li) | touched &<< DirtyMap.summaryShift) + UInt(added), li)
            _dirtyCount += UInt64(added)
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
            if table.bits(li) == DirtyMap.cleanBits { continue }
            if lo == 0 && hi == valid {
                _dirtyCount -= UInt64(popcount(li))
                uniqueTable().store(DirtyMap.cleanBits, meta: 0, at: li)
                continue
            }
            let w = writableBits(li)
            let removed = -DirtyMapBits.apply(w, lo, hi, ones: false)
            _dirtyCount -= UInt64(removed)
            let t = table
            let count = (t.meta(li) & DirtyMap.countMask) - UInt(removed)
            if count == 0 { freeLeaf(li); continue }
            // Recompute the summary bits of the touched groups (this also drops stale ones).
            let g0 = lo >> Int(DirtyMap.groupShift), g1 = (hi - 1) >> Int(DirtyMap.groupShift)
            let summary = (t.meta(li) >> DirtyMap.summaryShift) & ~DirtyMapBits.groupRange(g0, g1)
                | DirtyMapBits.summary(w, wordCount(li), g0, g1)
            t.setMeta(count | summary &<< DirtyMap.summaryShift, li)
        }
    }

    public mutating func insert(runs: [ChunkRun]) {
        for r in runs {
            precondition(r.count <= chunkCount && r.start <= chunkCount - r.count,
                         "run \(r) out of range \(chunkCount)")
            setRange(r.start..<r.start + r.count)
        }
    }

    /// Adds every dirty chunk of `other` (same chunk count). Bitmap leaves this map lacks are
    /// copied from `other` (tables never share leaves).
    public mutating func formUnion(_ other: DirtyMap) {
        precondition(other.chunkCount == chunkCount,
                     "union of maps of \(other.chunkCount) and \(chunkCount) chunks")
        let theirTable = other.table
        if theirTable === table { return }
        var next = 0
        while let li = theirTable.nextOccupied(from: next) {
            next = li + 1
            let theirs = theirTable.bits(li)
            let mine = table.bits(li)
            if mine == DirtyMap.fullBits { continue }
            if theirs == DirtyMap.fullBits {
                _dirtyCount += UInt64(validBits(li) - popcount(li))
                uniqueTable().store(DirtyMap.fullBits, meta: 0, at: li)
                continue
            }
            let wc = wordCount(li)
            let theirMeta = theirTable.meta(li)
            if mine == DirtyMap.cleanBits {
                _dirtyCount += UInt64(theirMeta & DirtyMap.countMask)
                // A private copy, with their count and summary.
                uniqueTable().store(UInt(bitPattern: DirtyMapBits.copy(DirtyMapBits.words(theirs), wc)),
                                    meta: theirMeta, at: li)
                continue
            }
            let a = writableBits(li), b = DirtyMapBits.words(theirs)
            var delta = 0
            for i in 0..<wc {
                let old = a[i], new = old | b[i]
                a[i] = new
                delta &+= new.nonzeroBitCount &- old.nonzeroBitCount
            }
            // Both summaries cover their words, so their union covers the union's.
            table.setMeta((table.meta(li) | theirMeta & ~DirtyMap.countMask) + UInt(delta), li)
            _dirtyCount += UInt64(delta)
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
            let raw = t.bits(li)
            let base = UInt64(li) << DirtyMap.leafShift
            if raw == DirtyMap.fullBits { return base + UInt64(local) }
            if let bit = DirtyMapBits.nextSet(DirtyMapBits.words(raw), t.meta(li) >> DirtyMap.summaryShift,
                                              wordCount(li), from: local) {
                return base + UInt64(bit)
            }
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
            let raw = t.bits(li)
            if raw == DirtyMap.cleanBits { return base + UInt64(local) }
            if raw != DirtyMap.fullBits {
                let valid = validBits(li)
                let bit = DirtyMapBits.nextClear(DirtyMapBits.words(raw), wordCount(li), valid, from: local)
                if bit < valid { return base + UInt64(bit) }
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

    /// Number of maximal dirty runs. Cost: the summary-marked 8192-chunk groups of bitmap
    /// leaves plus one step per leaf; it does not allocate.
    public var runCount: Int {
        let t = table
        var runs = 0
        var prevDirty = false // is the chunk just before the current leaf dirty?
        for li in 0..<t.leafCount {
            let raw = t.bits(li)
            if raw == DirtyMap.cleanBits { prevDirty = false; continue }
            if raw == DirtyMap.fullBits {
                if !prevDirty { runs += 1 }
                prevDirty = true
                continue
            }
            // Count 0->1 transitions over the marked groups only.
            let w = DirtyMapBits.words(raw), wc = wordCount(li)
            var marked = t.meta(li) >> DirtyMap.summaryShift
            var carry: UInt64 = prevDirty ? 1 : 0 // top bit of the word before, as 0/1
            var expect = 0                        // the word whose predecessor `carry` describes
            while marked != 0 {
                let gi = marked.trailingZeroBitCount
                marked &= marked &- 1
                let lo = gi << DirtyMap.groupWordShift, hi = min(lo + DirtyMap.groupWords, wc)
                if lo != expect { carry = 0 } // unmarked (clean) words in between
                for i in lo..<hi {
                    let x = w[i]
                    runs += (x & ~((x &<< 1) | carry)).nonzeroBitCount
                    carry = x &>> 63
                }
                expect = hi
            }
            prevDirty = (w[wc - 1] &>> UInt64((validBits(li) - 1) & 63)) & 1 != 0
        }
        return runs
    }

    // MARK: memory

    /// Heap bytes held by this map: table (entries and meta words), occupied bits and leaf
    /// bits, counting 16 bytes of allocator overhead per allocation (64 for 64-byte-aligned
    /// ones). A table shared with copies of the map (until one of them is written) is counted
    /// in full.
    public var approximateMemoryBytes: Int {
        let mallocOverhead = 16, alignedOverhead = 64
        let t = table
        var bytes = 16 + MemoryLayout<DirtyMapTableHeader>.stride
            + 2 * t.leafCount * MemoryLayout<UInt>.stride + mallocOverhead
        bytes += t.occupiedWords * 8 + mallocOverhead
        var next = 0
        while let li = t.nextOccupied(from: next) {
            next = li + 1
            if t.bits(li) == DirtyMap.fullBits { continue }
            bytes += wordCount(li) * 8 + alignedOverhead      // bits
        }
        return bytes
    }

    // MARK: equality by content

    /// 0 clean, 1 all dirty, 2 otherwise (O(1): a bitmap leaf's count is exact).
    @usableFromInline func leafKind(_ li: Int) -> Int {
        let raw = table.bits(li)
        if raw == DirtyMap.cleanBits { return 0 }
        if raw == DirtyMap.fullBits { return 1 }
        let n = Int(table.meta(li) & DirtyMap.countMask)
        return n == 0 ? 0 : n == validBits(li) ? 1 : 2
    }

    public static func == (lhs: DirtyMap, rhs: DirtyMap) -> Bool {
        if lhs.chunkCount != rhs.chunkCount || lhs.dirtyCount != rhs.dirtyCount { return false }
        let a = lhs.table, b = rhs.table
        if a === b { return true }
        for li in 0..<a.leafCount {
            let x = a.bits(li), y = b.bits(li)
            if x == y { continue }
            let k = lhs.leafKind(li)
            if k != rhs.leafKind(li) { return false }
            if k == 2 && !DirtyMapBits.same(DirtyMapBits.words(x), DirtyMapBits.words(y), lhs.wordCount(li)) {
                return false
            }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(chunkCount)
        hasher.combine(dirtyCount)
        for li in 0..<leafCount {
            let k = leafKind(li)
            hasher.combine(UInt8(k))
            if k == 2 {
                hasher.combine(bytes: UnsafeRawBufferPointer(start: DirtyMapBits.words(table.bits(li)),
                                                             count: wordCount(li) * 8))
            }
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

// MARK: - Batch writer

extension DirtyMap {
    /// Runs `body` with a writer over this map's table: the copy-on-write uniqueness check (and
    /// the deep copy, if the table is shared) happens once here, and the writer's `set`, `clear`
    /// and `isDirty` then cost no runtime call. The dirty-count change is folded back into the
    /// map when `body` returns or throws.
    ///
    /// Soundness. The writer mutates the table without checking that it is uniquely referenced;
    /// that is sound because it is unique for the whole batch:
    ///   * it is made unique (copied if shared) before the writer exists;
    ///   * during `body`, `self` is under exclusive (inout) access, so no one can read, copy or
    ///     assign the map (an overlapping access inside `body` is a compile-time error or a
    ///     runtime exclusivity trap; in a module built with `-enforce-exclusivity=unchecked` it
    ///     is undefined behaviour, as it is for any inout argument), so no second reference to
    ///     the table can be taken, and no operation of the map can replace or copy it under the
    ///     writer;
    ///   * the writer is `~Copyable` and has no public initialiser: `body` gets it `inout`, so
    ///     it cannot be copied, returned or kept past the batch; it could only be exchanged
    ///     with the writer of another batch, which the identity check at the end of each batch
    ///     turns into a trap;
    ///   * the writer's own strong reference keeps the table (and so its entries pointer)
    ///     alive whatever `body` does.
    /// The writer keeps every invariant of the map at each step (allocating, expanding and
    /// freeing leaves like the single calls); only `dirtyCount` lags until the batch ends, and
    /// no one can read it meanwhile.
    @inlinable @discardableResult
    public mutating func withWriter<R>(_ body: (inout Writer) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&table) { table = table.copy() }
        var writer = Writer(table: table, chunkCount: chunkCount)
        defer {
            precondition(writer.table === table, "DirtyMap.Writer exchanged with another batch's writer")
            _dirtyCount &+= writer.delta
        }
        return try body(&writer)
    }

    /// Marks every chunk of `chunks` dirty (one copy-on-write check for the lot); returns how
    /// many were clean. An empty sequence leaves the map (and a table it shares) untouched.
    @inlinable @discardableResult
    public mutating func set<S: Sequence>(contentsOf chunks: S) -> Int where S.Element == ChunkIndex {
        var it = chunks.makeIterator()
        guard let first = it.next() else { return 0 }
        return withWriter { w in
            var n = w.set(first) ? 1 : 0
            while let c = it.next() { n &+= w.set(c) ? 1 : 0 }
            return n
        }
    }

    /// Marks every chunk of `chunks` clean (one copy-on-write check for the lot); returns how
    /// many were dirty. Like single `clear` calls, clearing a map with no dirty chunk never
    /// copies a shared table (the indices are still range-checked).
    @inlinable @discardableResult
    public mutating func clear<S: Sequence>(contentsOf chunks: S) -> Int where S.Element == ChunkIndex {
        var it = chunks.makeIterator()
        guard let first = it.next() else { return 0 }
        if dirtyCount == 0 {
            var c: ChunkIndex? = first
            while let x = c {
                precondition(x < chunkCount, "chunk \(x) out of range \(chunkCount)")
                c = it.next()
            }
            return 0
        }
        return withWriter { w in
            var n = w.clear(first) ? 1 : 0
            while let c = it.next() { n &+= w.clear(c) ? 1 : 0 }
            return n
        }
    }

    /// `set(contentsOf:)` for a random-access collection (an array of chunk indices, as the
    /// core passes): the same result, with the bit word of each chunk prefetched
    /// `prefetchDistance` operations ahead, so random indices over a large map wait for
    /// memory in parallel instead of one at a time.
    @inlinable @discardableResult
    public mutating func set<C: RandomAccessCollection>(contentsOf chunks: C) -> Int where C.Element == ChunkIndex {
        if chunks.isEmpty { return 0 }
        return withWriter { w in Writer.prefetching(&w, chunks, clear: false) }
    }

    /// `clear(contentsOf:)` for a random-access collection, prefetching like
    /// `set(contentsOf:)`. Clearing a map with no dirty chunk never copies a shared table.
    @inlinable @discardableResult
    public mutating func clear<C: RandomAccessCollection>(contentsOf chunks: C) -> Int where C.Element == ChunkIndex {
        if chunks.isEmpty { return 0 }
        if dirtyCount == 0 {
            for c in chunks { precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)") }
            return 0
        }
        return withWriter { w in Writer.prefetching(&w, chunks, clear: true) }
    }

    /// How many of `chunks` are dirty (a chunk listed twice counts twice), prefetching like
    /// `set(contentsOf:)`. Reads only: never copies a shared table.
    @inlinable
    public func dirtyCount<C: RandomAccessCollection>(among chunks: C) -> Int where C.Element == ChunkIndex {
        var n = 0
        let end = chunks.endIndex
        var ahead = chunks.index(chunks.startIndex, offsetBy: DirtyMap.prefetchDistance, limitedBy: end) ?? end
        for c in chunks {
            if ahead != end { prefetch(chunks[ahead]); chunks.formIndex(after: &ahead) }
            n &+= isDirty(c) ? 1 : 0
        }
        return n
    }

    /// Single-bit access to a map inside `withWriter`, with no per-operation copy-on-write
    /// check: the table is already unique for the batch (see `withWriter`). Same results and
    /// same invariants as the map's own `set`, `clear` and `isDirty`; out-of-range chunks trap.
    public struct Writer: ~Copyable {
        /// The unique table's entries (stable for the table's lifetime), and the table itself,
        /// held strongly so the pointer stays valid whatever the batch body does.
        @usableFromInline let entries: UnsafeMutablePointer<UInt>
        @usableFromInline let table: DirtyMapTable
        /// Change in dirty chunks so far (two's complement), folded into the map at the end.
        @usableFromInline var delta: UInt64 = 0

        @usableFromInline init(table: DirtyMapTable, chunkCount: UInt64) {
            precondition(chunkCount <= 1 << 40, "entry(_:) keeps 22 bits of leaf index")
            self.table = table
            self.entries = table.entries
        }

        /// The map's chunk count, read from the table's header (the same cache line as the
        /// table's reference count, hot) at each range check rather than kept in the writer: a
        /// stored copy is one more value live across the slow-path calls of a batch loop, and
        /// with it LLVM ran out of callee-saved registers and kept the caller's result counter
        /// in a stack slot (a read-modify-write of memory per operation).
        @inlinable @inline(__always) var chunkCount: UInt64 { table.head.pointee.chunkCount }

        @inlinable @inline(__always)
        public func isDirty(_ c: ChunkIndex) -> Bool {
            precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
            let raw = entry(c).pointee
            if raw <= DirtyMap.fullBits { return raw == DirtyMap.fullBits }
            let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
            return (DirtyMapBits.words(raw)[wi] &>> (c & 63)) & 1 != 0
        }

        /// The entry of chunk `c`'s leaf (its meta word follows): at byte 16 li, li = c >> 18,
        /// which is one shift and one mask of `c` (the mask keeps 22 bits of leaf index: every
        /// valid chunk, below `Limits.maxChunks` = 2^40, has one of at most 2^22 leaves).
        @inlinable @inline(__always) func entry(_ c: ChunkIndex) -> UnsafeMutablePointer<UInt> {
            let offset = Int(truncatingIfNeeded: (c &>> (DirtyMap.leafShift - 4)) & 0x3FF_FFF0)
            return (UnsafeMutableRawPointer(entries) + offset).assumingMemoryBound(to: UInt.self)
        }

        /// A hint, no effect on the map: starts loading the word that holds chunk `c`'s bit
        /// into the cache, so that a `set`, `clear` or `isDirty` of `c` issued a few operations
        /// later finds it there (see `DirtyMap.prefetchDistance`). Out-of-range chunks are
        /// ignored.
        @inlinable @inline(__always)
        public func prefetch(_ c: ChunkIndex) {
            if c < chunkCount { DirtyMapBits.prefetch(entry(c).pointee, c) }
        }

        /// Sets (or clears) every chunk of `chunks` through `w`, prefetching
        /// `DirtyMap.prefetchDistance` operations ahead; returns how many changed. `clear` is a
        /// constant at each (inlined) call site, so the loop has no branch on it.
        @inlinable @inline(__always)
        static func prefetching<C: RandomAccessCollection>(_ w: inout Writer, _ chunks: C, clear: Bool) -> Int where C.Element == ChunkIndex {
            var n = 0
            let end = chunks.endIndex
            var ahead = chunks.index(chunks.startIndex, offsetBy: DirtyMap.prefetchDistance, limitedBy: end) ?? end
            for c in chunks {
                if ahead != end { w.prefetch(chunks[ahead]); chunks.formIndex(after: &ahead) }
                n &+= (clear ? w.clear(c) : w.set(c)) ? 1 : 0
            }
            return n
        }

        // The slow paths are static functions of the table, not methods of the writer: a call
        // that took the writer's address would keep its fields (entries, chunk count, delta) in
        // memory across the whole loop of a batch instead of in registers.

        /// Marks `c` dirty; true if it was clean.
        @inlinable @inline(__always) @discardableResult
        public mutating func set(_ c: ChunkIndex) -> Bool {
            precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
            let e = entry(c)
            let raw = e[0]
            let added: UInt64
            if _fastPath(raw > DirtyMap.fullBits) {
                let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
                let p = DirtyMapBits.words(raw) + wi
                let old = p.pointee
                p.pointee = old | (1 &<< (c & 63))
                added = (~old &>> (c & 63)) & 1
                // Count += added, summary bit of the chunk's group (see DirtyMap.set).
                let group = UInt(truncatingIfNeeded: c &>> DirtyMap.groupShift) | DirtyMap.summaryShift
                e[1] = (e[1] | (1 &<< group)) &+ UInt(truncatingIfNeeded: added)
            } else {
                // The whole set, out of line: nothing of this iteration (c, e) is live across
                // the call, which leaves the caller's loop enough callee-saved registers for its
                // own counters (with the old "allocate, then rejoin the fast path" shape, LLVM
                // kept `delta` and the caller's result count in stack slots: two more
                // read-modify-writes of memory per set, about a tenth of the batch's time).
                added = Writer.setInMarker(table, c)
            }
            delta &+= added
            return added != 0
        }

        /// `set(c)` where chunk `c`'s leaf entry is a marker: nothing to do (0) for the all-dirty
        /// marker; for a clean entry, allocates a clean bitmap leaf in the (unique) table, sets
        /// `c` in it and returns 1. (A count, not a Bool: with a Bool, LLVM threads the caller's
        /// `? 1 : 0` back into branches on the bit and spills the counters again.)
        @usableFromInline static func setInMarker(_ table: DirtyMapTable, _ c: ChunkIndex) -> UInt64 {
            let li = Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)
            if table.bits(li) == DirtyMap.fullBits { return 0 }
            let w = table.writableBits(li) // count 0 and an empty summary until the lines below
            w[Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))] |= 1 &<< (c & 63)
            let group = UInt(truncatingIfNeeded: c &>> DirtyMap.groupShift) | DirtyMap.summaryShift
            table.setMeta((1 &<< group) | 1, li)
            return 1
        }

        /// Marks `c` clean; true if it was dirty.
        @inlinable @inline(__always) @discardableResult
        public mutating func clear(_ c: ChunkIndex) -> Bool {
            precondition(c < chunkCount, "chunk \(c) out of range \(chunkCount)")
            let e = entry(c)
            var raw = e[0]
            if _slowPath(raw <= DirtyMap.fullBits) {
                if raw == DirtyMap.cleanBits { return false }
                raw = Writer.bitmapLeaf(table, c) // the all-dirty marker becomes a full bitmap
            }
            let wi = Int(truncatingIfNeeded: (c &>> 6) & UInt64(DirtyMap.leafWords - 1))
            let p = DirtyMapBits.words(raw) + wi
            let old = p.pointee
            // old & ~(1 << k) as one `btr` (see DirtyMap.clear).
            let k = c & 63
            p.pointee = old & ((~1 &<< k) | (~1 &>> (64 &- k)))
            let removed = (old &>> k) & 1
            let meta = e[1] &- UInt(truncatingIfNeeded: removed)
            e[1] = meta
            delta &-= removed
            // Count 0: this clear took the leaf's last dirty chunk; free it.
            if _slowPath(meta & DirtyMap.countMask == 0) { Writer.freeLeaf(table, c) }
            return removed != 0
        }

        /// Makes the entry of chunk `c`'s leaf in the (unique) table a bitmap: a clean one for
        /// a clean entry, a full one for the all-dirty marker. Returns its address.
        @usableFromInline static func bitmapLeaf(_ table: DirtyMapTable, _ c: ChunkIndex) -> UInt {
            UInt(bitPattern: table.writableBits(Int(truncatingIfNeeded: c &>> DirtyMap.leafShift)))
        }

        /// Frees the bitmap leaf of chunk `c` in the (unique) table: it holds no dirty chunk.
        @usableFromInline static func freeLeaf(_ table: DirtyMapTable, _ c: ChunkIndex) {
            table.store(DirtyMap.cleanBits, meta: 0, at: Int(truncatingIfNeeded: c &>> DirtyMap.leafShift))
        }
    }
}
