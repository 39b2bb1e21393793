import Testing
@testable import RMRCore

// Tests of the sparse dirty map against a plain reference model (one Bool per chunk),
// driven by a seeded SplitMix64 so every run is the same.

private let leaf = UInt64(DirtyMap.leafBits)

/// The reference model: a sorted list of disjoint, non-touching runs, rebuilt by brute force
/// on every change (O(runs) per operation, so ranges over many leaves stay cheap).
private struct ModelMap {
    let chunkCount: UInt64
    var runs: [ChunkRun] = []
    init(_ n: UInt64) { chunkCount = n }
    var count: UInt64 { runs.reduce(0) { $0 + $1.count } }
    func isDirty(_ c: UInt64) -> Bool { runs.contains { $0.start <= c && c < $0.end } }
    func nextDirty(from c: UInt64) -> UInt64? {
        guard let r = runs.first(where: { $0.end > c }) else { return nil }
        return max(r.start, c)
    }
    mutating func assign(_ r: Range<UInt64>, dirty: Bool) {
        guard !r.isEmpty else { return }
        var out: [ChunkRun] = []
        var lo = r.lowerBound, hi = r.upperBound
        for x in runs {
            if x.end < r.lowerBound || x.start > r.upperBound { out.append(x); continue }
            if dirty {
                lo = min(lo, x.start); hi = max(hi, x.end)
            } else {
                if x.start < r.lowerBound { out.append(ChunkRun(start: x.start, count: r.lowerBound - x.start)) }
                if x.end > r.upperBound { out.append(ChunkRun(start: r.upperBound, count: x.end - r.upperBound)) }
            }
        }
        if dirty { out.append(ChunkRun(start: lo, count: hi - lo)) }
        runs = out.sorted { $0.start < $1.start }
    }
    mutating func set(_ c: UInt64) -> Bool { let was = isDirty(c); assign(c..<c + 1, dirty: true); return !was }
    mutating func clear(_ c: UInt64) -> Bool { let was = isDirty(c); assign(c..<c + 1, dirty: false); return was }
    mutating func setRange(_ r: Range<UInt64>) { assign(r, dirty: true) }
    mutating func clearRange(_ r: Range<UInt64>) { assign(r, dirty: false) }
    mutating func setAll() { runs = chunkCount == 0 ? [] : [ChunkRun(start: 0, count: chunkCount)] }
    mutating func clearAll() { runs = [] }
}

/// An index biased toward the interesting places: leaf, block and word edges, the ends.
private func interestingIndex(_ rng: inout SplitMix64, _ n: UInt64) -> UInt64 {
    switch rng.next(below: 4) {
    case 0: return rng.next(below: n)
    case 1: // near a leaf boundary (or near 0 if there is only one leaf)
        let leaves = (n + leaf - 1) / leaf
        let edge = rng.next(below: leaves + 1) * leaf
        let c = edge &+ rng.next(below: 130) &- 65
        return c < n ? c : rng.next(below: n)
    case 2: // near the end
        let back = rng.next(below: min(n, 200))
        return n - 1 - back
    default: // near a word / block edge in a narrow window (keeps runs forming)
        let base = rng.next(below: max(1, n / 512)) * 512
        let c = base + rng.next(below: 600)
        return c < n ? c : rng.next(below: n)
    }
}

private func randomRange(_ rng: inout SplitMix64, _ n: UInt64) -> Range<UInt64> {
    let a = interestingIndex(&rng, n)
    let maxLen = rng.next(below: 3) == 0 ? n - a : min(n - a, 3000)
    let len = rng.next(below: maxLen + 1)
    return a..<(a + len)
}

/// Everything the map reports agrees with the model.
private func checkAgainstModel(_ m: DirtyMap, _ model: ModelMap, _ rng: inout SplitMix64,
                               sourceLocation: SourceLocation = #_sourceLocation) {
    let runs = model.runs
    m.checkInvariants() // traps on a broken layout invariant (count, summary, occupied bits)
    #expect(m.dirtyCount == model.count, sourceLocation: sourceLocation)
    #expect(m.isEmpty == (model.count == 0), sourceLocation: sourceLocation)
    #expect(m.runs() == runs, sourceLocation: sourceLocation)
    #expect(m.runCount == runs.count, sourceLocation: sourceLocation)
    let first = m.firstDirty(limit: 50)
    var expectFirst: [UInt64] = []
    for r in runs where expectFirst.count < 50 {
        var c = r.start
        while c < r.end && expectFirst.count < 50 { expectFirst.append(c); c += 1 }
    }
    #expect(first == expectFirst, sourceLocation: sourceLocation)
    for _ in 0..<20 {
        let c = interestingIndex(&rng, model.chunkCount)
        #expect(m.nextDirty(from: c) == model.nextDirty(from: c), sourceLocation: sourceLocation)
        #expect(m.isDirty(c) == model.isDirty(c), sourceLocation: sourceLocation)
    }
    #expect(m.nextDirty(from: model.chunkCount) == nil, sourceLocation: sourceLocation)
    // Runs and the encoding rebuild an equal map.
    var rebuilt = DirtyMap(chunkCount: m.chunkCount)
    rebuilt.insert(runs: runs)
    #expect(rebuilt == m, sourceLocation: sourceLocation)
    #expect(rebuilt.hashValue == m.hashValue, sourceLocation: sourceLocation)
    let bytes = m.encodedRuns()
    #expect(bytes == DirtyMap.encode(runs: runs), sourceLocation: sourceLocation)
    #expect((try? DirtyMap.decodeRuns(bytes, chunkCount: m.chunkCount)) == runs, sourceLocation: sourceLocation)
}

private func randomOps(chunkCount n: UInt64, ops: Int, checkEvery: Int, seed: UInt64) {
    var rng = SplitMix64(seed: seed)
    var m = DirtyMap(chunkCount: n)
    var model = ModelMap(n)
    for step in 0..<ops {
        let op = rng.next(below: 1000)
        switch op {
        case 0..<400:
            let c = interestingIndex(&rng, n)
            let got = m.set(c), want = model.set(c)
            #expect(got == want, "set \(c) step \(step)")
        case 400..<750:
            let c = interestingIndex(&rng, n)
            let got = m.clear(c), want = model.clear(c)
            #expect(got == want, "clear \(c) step \(step)")
        case 750..<850:
            let c = interestingIndex(&rng, n)
            #expect(m.isDirty(c) == model.isDirty(c), "isDirty \(c) step \(step)")
        case 850..<910:
            let r = randomRange(&rng, n)
            m.setRange(r); model.setRange(r)
        case 910..<975:
            let r = randomRange(&rng, n)
            m.clearRange(r); model.clearRange(r)
        case 975..<985:
            // Union with a small random map.
            var other = DirtyMap(chunkCount: n)
            var otherModel = ModelMap(n)
            for _ in 0..<rng.next(below: 20) {
                let r = randomRange(&rng, n)
                let r2 = r.lowerBound..<min(r.upperBound, r.lowerBound + 700)
                other.setRange(r2); otherModel.setRange(r2)
            }
            m.formUnion(other)
            for r in otherModel.runs { model.setRange(r.start..<r.end) }
        case 985..<990:
            m.setAll(); model.setAll()
        case 990..<994:
            m.clearAll(); model.clearAll()
        default:
            // Rebuild through runs: the copy must compare equal and diverge independently.
            let copy = m
            m.insert(runs: [])
            #expect(copy == m)
        }
        #expect(m.dirtyCount == model.count, "dirtyCount after step \(step) op \(op)")
        if m.dirtyCount != model.count { return }
        if step % checkEvery == checkEvery - 1 { checkAgainstModel(m, model, &rng) }
    }
    checkAgainstModel(m, model, &rng)
}

@Test func dirtyMapRandomOpsSmallSizes() {
    for (i, n) in [1, 2, 63, 64, 65, 127, 511, 512, 513, 1000, 4097].enumerated() {
        randomOps(chunkCount: UInt64(n), ops: 1500, checkEvery: 250, seed: 100 + UInt64(i))
    }
}

@Test func dirtyMapRandomOpsAroundOneLeaf() {
    randomOps(chunkCount: leaf - 1, ops: 2500, checkEvery: 800, seed: 7)
    randomOps(chunkCount: leaf, ops: 2500, checkEvery: 800, seed: 8)
}

@Test func dirtyMapRandomOpsSeveralLeavesPartialLast() {
    // 2 full leaves + a last partial leaf whose size is not a multiple of 64.
    randomOps(chunkCount: 2 * leaf + 777, ops: 4000, checkEvery: 1000, seed: 9)
}

@Test func dirtyMapLeafBoundariesAndLastChunk() {
    let n = 3 * leaf + 5
    var m = DirtyMap(chunkCount: n)
    let points: [UInt64] = [0, 63, 64, leaf - 1, leaf, leaf + 1, 2 * leaf - 1, 2 * leaf, n - 1]
    for p in points { let first = m.set(p), second = m.set(p); #expect(first && !second) }
    #expect(m.dirtyCount == UInt64(points.count))
    #expect(m.firstDirty(limit: 100) == points)
    #expect(m.runs().map(\.description) == ["0", "63+2", "\(leaf - 1)+3", "\(2 * leaf - 1)+2", "\(n - 1)"])
    #expect(m.runCount == 5)
    #expect(m.nextDirty(from: 2 * leaf + 1) == n - 1)
    #expect(m.nextDirty(from: n) == nil)
    for p in points { let first = m.clear(p), second = m.clear(p); #expect(first && !second) }
    #expect(m.isEmpty)
    #expect(m == DirtyMap(chunkCount: n))
    #expect(m.approximateMemoryBytes == DirtyMap(chunkCount: n).approximateMemoryBytes)
}

@Test func dirtyMapSetAllClearAllAndFullLeaves() {
    for n in [UInt64(0), 1, 64, 100, leaf, leaf + 1, 2 * leaf + 777] {
        var m = DirtyMap(chunkCount: n, allDirty: true)
        #expect(m.dirtyCount == n)
        #expect(m.runs() == (n == 0 ? [] : [ChunkRun(start: 0, count: n)]))
        #expect(m.runCount == (n == 0 ? 0 : 1))
        #expect(m == DirtyMap(chunkCount: n, allDirty: true))
        var viaRange = DirtyMap(chunkCount: n)
        viaRange.setRange(0..<n)
        #expect(viaRange == m)
        if n > 0 {
            #expect(m.isDirty(n - 1))
            let cleared = m.clear(n - 1)
            #expect(cleared)
            #expect(!m.isDirty(n - 1))
            #expect(m.dirtyCount == n - 1)
            #expect(m.nextDirty(from: n - 1) == nil)
            let setAgain = m.set(n - 1)
            #expect(setAgain)
            #expect(m == viaRange)
        }
        m.clearAll()
        #expect(m.isEmpty)
        #expect(m == DirtyMap(chunkCount: n))
        #expect(m.runs().isEmpty)
    }
}

@Test func dirtyMapEqualityIndependentOfHistory() {
    let n = 2 * leaf + 100
    // A leaf filled bit by bit becomes the all-dirty marker; it equals setRange and setAll.
    var bitByBit = DirtyMap(chunkCount: n)
    for c in leaf..<(2 * leaf) { bitByBit.set(c) }
    var ranged = DirtyMap(chunkCount: n)
    ranged.setRange(leaf..<(2 * leaf))
    var fromAll = DirtyMap(chunkCount: n, allDirty: true)
    fromAll.clearRange(0..<leaf)
    fromAll.clearRange((2 * leaf)..<n)
    #expect(bitByBit == ranged)
    #expect(ranged == fromAll)
    #expect(bitByBit.hashValue == ranged.hashValue)
    #expect(ranged.hashValue == fromAll.hashValue)
    #expect(Set([bitByBit, ranged, fromAll]).count == 1)
    // A leaf that became all-zero compares equal to an absent leaf.
    var touched = DirtyMap(chunkCount: n)
    touched.set(5); touched.set(leaf + 5); touched.clear(5)
    var fresh = DirtyMap(chunkCount: n)
    fresh.set(leaf + 5)
    #expect(touched == fresh)
    #expect(touched.hashValue == fresh.hashValue)
    // Different content in different leaves with equal counts is not equal.
    var a = DirtyMap(chunkCount: n); a.setRange(0..<leaf)
    var b = DirtyMap(chunkCount: n); b.setRange(leaf..<(2 * leaf))
    #expect(a != b)
    #expect(DirtyMap(chunkCount: 10) != DirtyMap(chunkCount: 11))
    var c1 = DirtyMap(chunkCount: 100); c1.set(3)
    var c2 = DirtyMap(chunkCount: 100); c2.set(4)
    #expect(c1 != c2)
}

@Test func dirtyMapCopiesAreIndependent() {
    let n = 3 * leaf
    var original = DirtyMap(chunkCount: n)
    original.set(1); original.set(leaf + 1); original.setRange((2 * leaf)..<(3 * leaf))
    let snapshot = original
    let snapshotRuns = snapshot.runs()

    var copy = original
    copy.set(2); copy.clear(leaf + 1); copy.clear(2 * leaf + 7); copy.setRange(0..<100)
    #expect(original == snapshot)
    #expect(original.runs() == snapshotRuns)

    original.clear(1); original.set(leaf + 2); original.clearRange((2 * leaf)..<(2 * leaf + 10))
    #expect(snapshot.runs() == snapshotRuns)
    #expect(copy.isDirty(2) && !copy.isDirty(leaf + 1) && !copy.isDirty(2 * leaf + 7))
    #expect(!copy.isDirty(leaf + 2) && copy.isDirty(2 * leaf + 8))

    // formUnion shares leaves: writing either side afterwards must not leak into the other.
    var left = DirtyMap(chunkCount: n)
    var right = DirtyMap(chunkCount: n)
    right.set(leaf + 9); right.set(10)
    left.formUnion(right)
    #expect(left == right)
    left.set(leaf + 10)
    right.clear(10)
    #expect(!right.isDirty(leaf + 10) && right.isDirty(leaf + 9) && !right.isDirty(10))
    #expect(left.isDirty(leaf + 10) && left.isDirty(leaf + 9) && left.isDirty(10))

    var emptied = snapshot
    emptied.clearAll()
    #expect(snapshot.runs() == snapshotRuns)
    var filled = snapshot
    filled.setAll()
    #expect(snapshot.runs() == snapshotRuns)
    #expect(filled.dirtyCount == n)
}

@Test func dirtyMapUnionAgainstModel() {
    let n = 2 * leaf + 333
    var rng = SplitMix64(seed: 42)
    for _ in 0..<4 {
        var a = DirtyMap(chunkCount: n), b = DirtyMap(chunkCount: n)
        var ma = ModelMap(n), mb = ModelMap(n)
        for _ in 0..<40 {
            let r = randomRange(&rng, n); a.setRange(r); ma.setRange(r)
            let s = randomRange(&rng, n); b.setRange(s); mb.setRange(s)
            let c = interestingIndex(&rng, n); a.clear(c); _ = ma.clear(c)
        }
        let bBefore = b
        a.formUnion(b)
        for r in mb.runs { ma.setRange(r.start..<r.end) }
        checkAgainstModel(a, ma, &rng)
        #expect(b == bBefore)
        var u = a; u.formUnion(a)
        #expect(u == a)
    }
}

@Test func dirtyMapRunEncodingRoundTripAndSize() throws {
    // 64 TiB at 128 KiB chunks, 1,000 dirty chunks: bytes track runs, not the volume size.
    let n: UInt64 = 1 << 29
    var m = DirtyMap(chunkCount: n)
    var rng = SplitMix64(seed: 1)
    while m.dirtyCount < 1000 { m.set(rng.next(below: n)) }
    let runs = m.runs()
    let bytes = m.encodedRuns()
    #expect(bytes.count <= 2 + runs.count * 6)
    #expect(try DirtyMap.decodeRuns(bytes, chunkCount: n) == runs)
    #expect(DirtyMap(chunkCount: n).encodedRuns() == [0])
    #expect(try DirtyMap.decodeRuns([0], chunkCount: n).isEmpty)
    let full = DirtyMap(chunkCount: n, allDirty: true)
    #expect(try DirtyMap.decodeRuns(full.encodedRuns(), chunkCount: n) == [ChunkRun(start: 0, count: n)])
    #expect(full.encodedRuns() == [1, 0, 0xff, 0xff, 0xff, 0xff, 0x01]) // 2^29 - 1 in 5 bytes
    // An explicit slice of runs encodes the same way.
    let slice = Array(runs.prefix(10))
    #expect(try DirtyMap.decodeRuns(DirtyMap.encode(runs: slice), chunkCount: n) == slice)
    // Round trip at the last chunk and the top of the UInt64-free range.
    var edge = DirtyMap(chunkCount: 1000)
    edge.set(0); edge.set(999); edge.setRange(500..<600)
    #expect(try DirtyMap.decodeRuns(edge.encodedRuns(), chunkCount: 1000) == edge.runs())
}

@Test func dirtyMapDecodeRejectsMalformedInput() {
    func rejects(_ bytes: [UInt8], _ n: UInt64, _ word: String, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            let runs = try DirtyMap.decodeRuns(bytes, chunkCount: n)
            Issue.record("accepted \(bytes) as \(runs)", sourceLocation: sourceLocation)
        } catch let e as RMRError {
            #expect(e.code == .EINVAL, sourceLocation: sourceLocation)
            #expect(e.message.contains(word), "\(e.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }
    rejects([], 100, "truncated")                       // no run count
    rejects([0x81], 100, "truncated")                   // varint cut in the middle
    rejects([1, 5], 100, "truncated")                   // run count 1, length missing
    rejects([2, 0, 0], 100, "truncated")                // run count larger than the bytes hold
    rejects([1, 0x85], 100, "truncated")
    rejects([1, 0x80, 0x00, 0], 100, "non-minimal")
    rejects([1] + Array(repeating: 0xff, count: 10) + [0x01, 0], 100, "overflows")
    rejects([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0], 100, "past")
    rejects([1, 100, 0], 100, "past")                   // starts at chunkCount
    rejects([1, 90, 10], 100, "past")                   // 90+11 > 100
    rejects([1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 100, "past")
    rejects([2, 0, 4, 0, 0], 100, "touches")            // second run starts where the first ends
    rejects([1, 0, 0, 7], 100, "trailing")
    rejects([0, 0], 100, "trailing")
    // Well-formed neighbours of the above are accepted.
    #expect((try? DirtyMap.decodeRuns([1, 90, 9], chunkCount: 100)) == [ChunkRun(start: 90, count: 10)])
    #expect((try? DirtyMap.decodeRuns([2, 0, 4, 1, 0], chunkCount: 100))
            == [ChunkRun(start: 0, count: 5), ChunkRun(start: 6, count: 1)])
    // Random garbage never crashes: it decodes to valid runs or throws.
    var rng = SplitMix64(seed: 3)
    for _ in 0..<300 {
        let bytes = (0..<rng.next(below: 12)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        if let runs = try? DirtyMap.decodeRuns(bytes, chunkCount: 5000) {
            var m = DirtyMap(chunkCount: 5000)
            m.insert(runs: runs)
            #expect(m.runs() == runs)
        }
    }
}

@Test func dirtyMapMemoryAndSparseSearchAtSixtyFourTiB() {
    let n: UInt64 = 1 << 29 // 64 TiB at 128 KiB chunks
    var m = DirtyMap(chunkCount: n)
    #expect(m.approximateMemoryBytes <= 64 * 1024)
    m.setAll()
    #expect(m.approximateMemoryBytes <= 64 * 1024)
    #expect(m.dirtyCount == n)
    m.clearAll()
    m.set(n - 1)
    #expect(m.nextDirty(from: 0) == n - 1)
    #expect(m.firstDirty(limit: 50) == [n - 1])
    #expect(m.runs() == [ChunkRun(start: n - 1, count: 1)])
    // A bitmap leaf costs its 32 KiB of bits (its count and search summary live in the
    // table's meta word, part of the empty map's memory).
    let empty = DirtyMap(chunkCount: n).approximateMemoryBytes
    let oneLeaf = m.approximateMemoryBytes - empty
    #expect(oneLeaf >= 32 * 1024 && oneLeaf <= 33 * 1024)
    m.set(0)
    let secondLeaf = m.approximateMemoryBytes - empty - oneLeaf
    #expect(secondLeaf >= 32 * 1024 && secondLeaf <= 33 * 1024)
    m.checkInvariants()
    // Clearing the last dirty chunk of a leaf frees it.
    let cleared = m.clear(n - 1), clearedFirst = m.clear(0)
    #expect(cleared && clearedFirst)
    #expect(m.approximateMemoryBytes == empty)
    m.checkInvariants()
}

@Test func dirtyMapOutOfRangeIsAPreconditionFailure() async {
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10)
        m.set(10)
    }
    await #expect(processExitsWith: .failure) {
        let m = DirtyMap(chunkCount: 10)
        _ = m.isDirty(10)
    }
}

@Test func dirtyMapDivergingCopiesAgainstModels() {
    // Copies of one map (sharing table and leaves) diverge through random operations, unions
    // with each other included; each must keep matching its own model.
    let n = 3 * leaf + 100
    var rng = SplitMix64(seed: 77)
    var maps: [DirtyMap] = [DirtyMap(chunkCount: n)]
    var models: [ModelMap] = [ModelMap(n)]
    for step in 0..<600 {
        let i = Int(rng.next(below: UInt64(maps.count)))
        switch rng.next(below: 100) {
        case 0..<10 where maps.count < 5:
            maps.append(maps[i]); models.append(models[i])
        case 10..<15:
            let j = Int(rng.next(below: UInt64(maps.count)))
            maps[i].formUnion(maps[j])
            for r in models[j].runs { models[i].setRange(r.start..<r.end) }
        case 15..<25:
            let r = randomRange(&rng, n)
            maps[i].setRange(r); models[i].setRange(r)
        case 25..<32:
            let r = randomRange(&rng, n)
            maps[i].clearRange(r); models[i].clearRange(r)
        case 32..<60:
            let c = interestingIndex(&rng, n)
            let got = maps[i].set(c), want = models[i].set(c)
            #expect(got == want, "set \(c) step \(step)")
        default:
            let c = interestingIndex(&rng, n)
            let got = maps[i].clear(c), want = models[i].clear(c)
            #expect(got == want, "clear \(c) step \(step)")
        }
        if step % 100 == 99 {
            for k in maps.indices { checkAgainstModel(maps[k], models[k], &rng) }
        }
    }
    for k in maps.indices { checkAgainstModel(maps[k], models[k], &rng) }
}

@Test func dirtyMapCopiesMutatedConcurrently() async {
    // Copies handed to other tasks share storage; each task's writes stay its own.
    let n = 2 * leaf + 10
    var base = DirtyMap(chunkCount: n)
    base.setRange(100..<5000)
    base.set(leaf + 3)
    let shared = base
    let results = await withTaskGroup(of: (Int, [ChunkRun]).self) { group in
        for t in 0..<4 {
            group.addTask {
                var m = shared
                for k in 0..<2000 { m.set(UInt64(t * 10_000 + 20_000 + k)) }
                m.clear(100 + UInt64(t))
                return (t, m.runs())
            }
        }
        var out: [(Int, [ChunkRun])] = []
        for await r in group { out.append(r) }
        return out.sorted { $0.0 < $1.0 }
    }
    for (t, runs) in results {
        var model = ModelMap(n)
        model.setRange(100..<5000); _ = model.set(leaf + 3)
        model.setRange(UInt64(t * 10_000 + 20_000)..<UInt64(t * 10_000 + 22_000))
        _ = model.clear(100 + UInt64(t))
        #expect(runs == model.runs, "task \(t)")
    }
    #expect(shared == base)
    #expect(shared.runs() == [ChunkRun(start: 100, count: 4900), ChunkRun(start: leaf + 3, count: 1)])
}

@Test func dirtyMapDeepCopyOnWriteAgainstModels() {
    // Copy-on-write copies the whole table with private copies of its bitmap leaves (tables
    // never share leaves). Copies holding bitmap leaves, all-dirty markers and clean leaves are
    // mutated on every kind of leaf, in both orders, and each must match its own model; union
    // copies leaves from the other map, which stays untouched when either side is written.
    let n = 4 * leaf + 321
    var rng = SplitMix64(seed: 2024)
    var base = DirtyMap(chunkCount: n)
    var baseModel = ModelMap(n)
    base.setRange(leaf..<(2 * leaf)); baseModel.setRange(leaf..<(2 * leaf))          // all-dirty marker
    for _ in 0..<300 {                                                             // bitmap leaves 0, 2, 4
        for l in [UInt64(0), 2, 4] {
            let c = min(l * leaf + rng.next(below: leaf), n - 1)
            base.set(c); _ = baseModel.set(c)
        }
    }
    let baseRuns = baseModel.runs
    for round in 0..<4 {
        var a = base, b = base
        var ma = baseModel, mb = baseModel
        // Alternate which copy writes first (the first writer copies, the other may then own
        // the original table alone).
        for step in 0..<250 {
            let first = (round + step) % 2 == 0
            let c = interestingIndex(&rng, n)
            switch rng.next(below: 6) {
            case 0, 1:
                let got = first ? a.set(c) : b.set(c), want = first ? ma.set(c) : mb.set(c)
                #expect(got == want, "set \(c) round \(round) step \(step)")
            case 2, 3:
                let got = first ? a.clear(c) : b.clear(c), want = first ? ma.clear(c) : mb.clear(c)
                #expect(got == want, "clear \(c) round \(round) step \(step)")
            case 4:
                let r = randomRange(&rng, n)
                if first { a.clearRange(r); ma.clearRange(r) } else { b.setRange(r); mb.setRange(r) }
            default:
                if first { a.formUnion(b); for r in mb.runs { ma.setRange(r.start..<r.end) } }
                else { b.formUnion(a); for r in ma.runs { mb.setRange(r.start..<r.end) } }
            }
        }
        checkAgainstModel(a, ma, &rng)
        checkAgainstModel(b, mb, &rng)
        #expect(base.runs() == baseRuns)
        #expect(base.dirtyCount == baseModel.count)
    }
    // A copy that is never written shares the table; writing the original leaves it intact,
    // and the written map's memory no longer counts anything of the copy's.
    let snapshot = base
    var written = base
    written.clearAll()
    #expect(snapshot.runs() == baseRuns)
    #expect(written.approximateMemoryBytes == DirtyMap(chunkCount: n).approximateMemoryBytes)
    // Union into an empty map copies the other map's bitmap leaves: clearing them in the
    // union (down to freeing them) must not change the source.
    var u = DirtyMap(chunkCount: n)
    u.formUnion(snapshot)
    #expect(u == snapshot)
    u.clearRange(0..<leaf)
    for c in (2 * leaf)..<(3 * leaf) where u.isDirty(c) { u.clear(c) }
    #expect(snapshot.runs() == baseRuns)
    #expect(!u.isDirty(0) && (u.nextDirty(from: 2 * leaf) ?? n) >= 3 * leaf)
    var um = baseModel
    um.clearRange(0..<leaf); um.clearRange((2 * leaf)..<(3 * leaf))
    checkAgainstModel(u, um, &rng)
}

// MARK: - Batch writer (withWriter, set(contentsOf:), clear(contentsOf:))

/// The maximal runs of a set of chunks, ascending (to compare a map with a Set model).
private func runs(of model: Set<UInt64>) -> [ChunkRun] {
    var out: [ChunkRun] = []
    for c in model.sorted() {
        if let last = out.last, last.end == c { out[out.count - 1].count += 1 }
        else { out.append(ChunkRun(start: c, count: 1)) }
    }
    return out
}

/// Everything cheap the map reports agrees with the Set model; the full content is compared
/// when `full` (sorting the model).
private func checkAgainstSet(_ m: DirtyMap, _ model: Set<UInt64>, full: Bool,
                             sourceLocation: SourceLocation = #_sourceLocation) {
    m.checkInvariants() // traps on a broken layout invariant (counts, summaries, occupied bits)
    #expect(m.dirtyCount == UInt64(model.count), "dirtyCount", sourceLocation: sourceLocation)
    #expect(m.isEmpty == model.isEmpty, sourceLocation: sourceLocation)
    if full { #expect(m.runs() == runs(of: model), "content", sourceLocation: sourceLocation) }
}

/// Random batches of writer operations against a Set<UInt64>, with whole-leaf ranges between
/// batches (all-dirty markers to expand, bitmap leaves to free), snapshots taken before
/// batches (which must not change), and throwing batches.
private func writerRandomBatches(chunkCount n: UInt64, batches: Int, seed: UInt64) {
    struct Abort: Error {}
    var rng = SplitMix64(seed: seed)
    var m = DirtyMap(chunkCount: n)
    var model = Set<UInt64>()
    var recent: [UInt64] = [] // chunks set lately: clears aim at them so leaves empty and are freed
    let leaves = (n + leaf - 1) / leaf
    for batch in 0..<batches {
        // Between batches: whole-leaf states the writer's slow paths must handle.
        switch rng.next(below: 12) {
        case 0: // a whole leaf all dirty: the marker (no bits) the writer must expand
            let l = rng.next(below: leaves)
            let r = (l * leaf)..<min(n, (l + 1) * leaf)
            m.setRange(r); model.formUnion(r)
        case 1: // a whole leaf clean: the writer must allocate a bitmap
            let l = rng.next(below: leaves)
            let r = (l * leaf)..<min(n, (l + 1) * leaf)
            m.clearRange(r); model.subtract(r)
        case 2:
            m.setAll(); model = Set(0..<n)
        case 3:
            m.clearAll(); model = []
        default: break
        }
        // Sometimes a copy shares the table across the batch: it must come out unchanged.
        let snapshot: DirtyMap? = rng.next(below: 3) == 0 ? m : nil
        let snapshotRuns = snapshot?.runs()
        let throwing = rng.next(below: 5) == 0
        let ops = Int(rng.next(below: 300)) + 1
        var expected = model
        var results: [Bool] = [], want: [Bool] = []
        do {
            let returned = try m.withWriter { w -> Int in
                for k in 0..<ops {
                    let c = recent.isEmpty || rng.next(below: 2) == 0
                        ? interestingIndex(&rng, n) : recent[Int(rng.next(below: UInt64(recent.count)))]
                    switch rng.next(below: 10) {
                    case 0..<4:
                        results.append(w.set(c)); want.append(expected.insert(c).inserted)
                        recent.append(c)
                        if recent.count > 64 { recent.removeFirst() }
                    case 4..<8:
                        results.append(w.clear(c)); want.append(expected.remove(c) != nil)
                    default:
                        results.append(w.isDirty(c)); want.append(expected.contains(c))
                    }
                    if throwing && k == ops / 2 { throw Abort() }
                }
                return ops
            }
            #expect(returned == ops)
            #expect(!throwing)
        } catch {
            #expect(throwing && error is Abort)
        }
        model = expected // a throwing batch keeps the operations done before the throw
        #expect(results == want, "results of batch \(batch)")
        checkAgainstSet(m, model, full: batch % 8 == 7 || results != want)
        if let snapshot, let snapshotRuns {
            snapshot.checkInvariants()
            #expect(snapshot.runs() == snapshotRuns, "snapshot changed by batch \(batch)")
            #expect(snapshot.dirtyCount == snapshotRuns.reduce(0) { $0 + $1.count })
        }
    }
    checkAgainstSet(m, model, full: true)
}

@Test func dirtyMapWriterRandomBatchesAgainstSetModel() {
    for (i, n) in [1, 2, 63, 64, 65, 1000].enumerated() {
        writerRandomBatches(chunkCount: UInt64(n), batches: 60, seed: 500 + UInt64(i))
    }
    // Several leaves, the last one partial and not a multiple of 64 chunks.
    writerRandomBatches(chunkCount: 2 * leaf + 777, batches: 120, seed: 600)
    // A last leaf of a single chunk (an all-dirty marker of one chunk expands and frees).
    writerRandomBatches(chunkCount: leaf + 1, batches: 80, seed: 601)
}

@Test func dirtyMapWriterLeafLifecycle() {
    // Allocation of a clean leaf, expansion of an all-dirty marker, freeing of a leaf whose
    // last dirty chunk is cleared, and the partial last leaf, all inside one batch.
    let n = 2 * leaf + 1 // the last leaf holds one chunk
    var m = DirtyMap(chunkCount: n)
    let empty = m.approximateMemoryBytes
    m.setRange(leaf..<(2 * leaf)) // leaf 1: all-dirty marker
    m.set(2 * leaf)               // leaf 2 (one chunk): a bitmap
    let newly = m.withWriter { w -> [Bool] in
        [w.set(5), w.set(5), w.set(leaf + 3), w.isDirty(leaf + 3), w.clear(leaf + 3),
         w.isDirty(leaf + 3), w.clear(leaf + 3), w.clear(2 * leaf), w.clear(2 * leaf), w.isDirty(2 * leaf),
         w.set(n - 1), w.clear(n - 1), w.clear(5), w.isDirty(5)]
    }
    #expect(newly == [true, false, false, true, true, false, false, true, false, false, true, true, true, false])
    m.checkInvariants()
    #expect(m.dirtyCount == leaf - 1)
    #expect(m.runs() == [ChunkRun(start: leaf, count: 3), ChunkRun(start: leaf + 4, count: leaf - 4)])
    // Leaves 0 and 2 were freed (their last chunk cleared); leaf 1 is a bitmap now.
    #expect(m.approximateMemoryBytes - empty >= 32 * 1024 && m.approximateMemoryBytes - empty <= 33 * 1024)
    // Clearing the rest of leaf 1 chunk by chunk frees it too.
    let cleared = m.clear(contentsOf: leaf..<(2 * leaf))
    #expect(cleared == Int(leaf) - 1)
    #expect(m.isEmpty)
    #expect(m.approximateMemoryBytes == empty)
    m.checkInvariants()
    // A fully dirty single-chunk last leaf: the marker expands to a bitmap and is freed.
    var one = DirtyMap(chunkCount: leaf + 1, allDirty: true)
    let wasDirty = one.withWriter { $0.clear(leaf) }
    #expect(wasDirty)
    one.checkInvariants()
    #expect(one.dirtyCount == leaf)
    #expect(one.runs() == [ChunkRun(start: 0, count: leaf)])
    // Setting every chunk of a partial last leaf one by one (bits past the end stay zero).
    var partial = DirtyMap(chunkCount: leaf + 70)
    #expect(partial.set(contentsOf: leaf..<(leaf + 70)) == 70)
    partial.checkInvariants()
    #expect(partial.runs() == [ChunkRun(start: leaf, count: 70)])
}

@Test func dirtyMapWriterLeavesCopiesUnchanged() {
    let n = 3 * leaf + 100
    var original = DirtyMap(chunkCount: n)
    original.set(1); original.set(leaf + 1); original.setRange((2 * leaf)..<(3 * leaf))
    let snapshot = original
    let snapshotRuns = snapshot.runs()
    #expect(original.table === snapshot.table) // shared until written
    original.withWriter { w in
        w.set(2); w.clear(1); w.clear(leaf + 1); w.clear(2 * leaf + 7); w.set(3 * leaf + 99)
    }
    #expect(original.table !== snapshot.table)
    #expect(snapshot.runs() == snapshotRuns)
    #expect(snapshot.dirtyCount == 2 + leaf)
    snapshot.checkInvariants()
    original.checkInvariants()
    #expect(original.runs() == [ChunkRun(start: 2, count: 1), ChunkRun(start: 2 * leaf, count: 7),
                                ChunkRun(start: 2 * leaf + 8, count: leaf - 8), ChunkRun(start: 3 * leaf + 99, count: 1)])
    // The other way round: a batch on the copy leaves the original alone.
    var copy = original
    let originalRuns = original.runs()
    let added = copy.set(contentsOf: [0, 1, 2, leaf, 2 * leaf + 7])
    #expect(added == 4)
    #expect(original.runs() == originalRuns)
    #expect(copy.dirtyCount == original.dirtyCount + 4)
    copy.checkInvariants()
    // Bulk calls that cannot change anything do not copy a shared table.
    var shared = snapshot
    #expect(shared.set(contentsOf: [UInt64]()) == 0)
    #expect(shared.clear(contentsOf: [UInt64]()) == 0)
    #expect(shared.table === snapshot.table)
    var emptyShared = DirtyMap(chunkCount: n)
    let emptyOriginal = emptyShared
    #expect(emptyShared.clear(contentsOf: [5, leaf, n - 1]) == 0)
    #expect(emptyShared.table === emptyOriginal.table)
    // A batch on a uniquely referenced map works in place (a copy would be made while the old
    // table is alive, so at another address).
    let table = ObjectIdentifier(copy.table)
    copy.withWriter { w in w.set(7) }
    #expect(ObjectIdentifier(copy.table) == table)
}

@Test func dirtyMapWriterThrowingBodyFoldsTheCount() {
    struct Boom: Error {}
    let n = 2 * leaf
    var m = DirtyMap(chunkCount: n)
    m.setRange(leaf..<(2 * leaf))
    m.set(10)
    do {
        try m.withWriter { w in
            w.set(1); w.set(2); w.set(10)   // +2
            w.clear(leaf + 5)              // -1, expands the marker
            w.clear(10)                    // -1
            throw Boom()
        }
        Issue.record("did not throw")
    } catch {
        #expect(error is Boom)
    }
    m.checkInvariants()
    #expect(m.dirtyCount == leaf + 1)
    #expect(m.runs() == [ChunkRun(start: 1, count: 2), ChunkRun(start: leaf, count: 5), ChunkRun(start: leaf + 6, count: leaf - 6)])
    // The map is usable afterwards, and the next batch counts from there.
    let r = m.withWriter { w in w.clear(1) && w.clear(2) }
    #expect(r)
    #expect(m.dirtyCount == leaf - 1)
    m.checkInvariants()
}

@Test func dirtyMapBulkCallsMatchSingleCalls() {
    // set(contentsOf:) / clear(contentsOf:) (duplicates included) against loops of single calls.
    var rng = SplitMix64(seed: 31)
    for n in [UInt64(100), leaf + 3, 3 * leaf + 100] {
        var bulk = DirtyMap(chunkCount: n), single = DirtyMap(chunkCount: n)
        for round in 0..<30 {
            if round % 10 == 5 { bulk.setRange(0..<min(n, leaf)); single.setRange(0..<min(n, leaf)) }
            let chunks = (0..<rng.next(below: 400)).map { _ in interestingIndex(&rng, n) }
            let setting = rng.next(below: 2) == 0
            var want = 0
            for c in chunks { if setting ? single.set(c) : single.clear(c) { want += 1 } }
            // Both paths: a plain sequence, and a random-access collection (prefetching).
            let plain = rng.next(below: 2) == 0
            let got = setting ? (plain ? bulk.set(contentsOf: AnySequence(chunks)) : bulk.set(contentsOf: chunks.lazy.map { $0 }))
                              : (plain ? bulk.clear(contentsOf: AnySequence(chunks)) : bulk.clear(contentsOf: chunks))
            #expect(got == want, "round \(round) n \(n)")
            #expect(bulk == single)
            #expect(bulk.dirtyCount == single.dirtyCount)
            bulk.checkInvariants()
        }
    }
}

@Test func dirtyMapWriterOutOfRangeIsAPreconditionFailure() async {
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10)
        m.withWriter { w in w.set(10) }
    }
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10)
        m.set(3)
        m.withWriter { w in w.clear(10) }
    }
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10)
        _ = m.withWriter { w in w.isDirty(10) }
    }
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10)
        m.set(contentsOf: [1, 2, 10])
    }
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10) // empty: the shortcut still checks every index
        m.clear(contentsOf: [1, 2, 10])
    }
    // The same through plain sequences (no prefetching path) and the read-only batch.
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10)
        m.set(contentsOf: AnySequence([1, 2, 10]))
    }
    await #expect(processExitsWith: .failure) {
        var m = DirtyMap(chunkCount: 10)
        m.clear(contentsOf: AnySequence([1, 2, 10]))
    }
    await #expect(processExitsWith: .failure) {
        let m = DirtyMap(chunkCount: 10)
        _ = m.dirtyCount(among: [1, 2, 10])
    }
}

/// The random-access batch calls (which prefetch `prefetchDistance` operations ahead) give
/// the results of single calls for batches shorter than, equal to and longer than the
/// distance, over slices that do not start at index 0, over markers, bitmaps and freed
/// leaves, and leave a copy that shares the table unchanged.
@Test func dirtyMapPrefetchingBatchesMatchSingleCalls() {
    var rng = SplitMix64(seed: 77)
    let d = DirtyMap.prefetchDistance
    for n in [UInt64(1), 100, leaf + 3, 3 * leaf + 100] {
        var batch = DirtyMap(chunkCount: n), single = DirtyMap(chunkCount: n)
        var recent: [UInt64] = []
        for round in 0..<40 {
            switch round % 8 {
            case 3: batch.setRange(0..<min(n, leaf)); single.setRange(0..<min(n, leaf)) // a marker
            case 6: batch.clearRange(0..<min(n, leaf)); single.clearRange(0..<min(n, leaf))
            default: break
            }
            let length = [0, 1, d - 1, d, d + 1, 3 * d, Int(rng.next(below: 500))][round % 7]
            let all = (0..<(length + 5)).map { _ in
                recent.isEmpty || rng.next(below: 2) == 0 ? interestingIndex(&rng, n) : recent[Int(rng.next(below: UInt64(recent.count)))]
            }
            let chunks = all[5...] // a slice whose indices start at 5
            recent = Array(chunks.suffix(64))
            let snapshot = rng.next(below: 3) == 0 ? batch : nil
            let snapshotRuns = snapshot?.runs()
            let wantDirty = chunks.filter { single.isDirty($0) }.count
            #expect(batch.dirtyCount(among: chunks) == wantDirty, "dirtyCount(among:) round \(round) n \(n)")
            let setting = rng.next(below: 2) == 0
            var want = 0
            for c in chunks { if setting ? single.set(c) : single.clear(c) { want += 1 } }
            let got = setting ? batch.set(contentsOf: chunks) : batch.clear(contentsOf: chunks)
            #expect(got == want, "round \(round) n \(n) length \(length)")
            #expect(batch == single)
            #expect(batch.dirtyCount == single.dirtyCount)
            batch.checkInvariants()
            if let snapshot, let snapshotRuns {
                #expect(snapshot.runs() == snapshotRuns, "snapshot changed in round \(round)")
                snapshot.checkInvariants()
            }
        }
    }
    // Through an unsafe buffer (what rmr-bench measures) as well.
    var m = DirtyMap(chunkCount: 3 * leaf)
    let chunks: [UInt64] = (0..<200).map { UInt64($0) &* 7919 % (3 * leaf) }
    let added = chunks.withUnsafeBufferPointer { m.set(contentsOf: $0) }
    #expect(added == Set(chunks).count)
    #expect(chunks.withUnsafeBufferPointer { m.dirtyCount(among: $0) } == chunks.count)
    #expect(chunks.withUnsafeBufferPointer { m.clear(contentsOf: $0) } == Set(chunks).count)
    #expect(m.isEmpty)
    m.checkInvariants()
}

/// `prefetch` is a hint: any chunk, in range or not, over any kind of leaf, changes nothing
/// and never traps; a shared table stays shared.
@Test func dirtyMapPrefetchChangesNothing() {
    let n = 2 * leaf + 10
    var m = DirtyMap(chunkCount: n)
    m.set(3); m.setRange(leaf..<(2 * leaf))
    let copy = m
    let runs = m.runs()
    let probes: [UInt64] = [0, 3, leaf, leaf + 5, 2 * leaf + 9, n, n + 1, UInt64.max]
    for c in probes { m.prefetch(c) }
    #expect(m.table === copy.table)
    for c in probes { m.withWriter { $0.prefetch(c) } } // (the first batch copies the shared table)
    #expect(m.runs() == runs)
    #expect(m == copy && m.dirtyCount == copy.dirtyCount)
    m.checkInvariants()
}
