import Testing
@testable import RMRCore

/// The IO path's integer-keyed table must behave exactly like the Dictionary it replaces.
@Suite struct IntKeyedTableTests {
    @Test func randomOperationsMatchDictionary() {
        for seed in UInt64(1)...20 {
            var rng = SplitMix64(seed: seed)
            var table: IntKeyedTable<UInt64, [UInt8]> = [:]
            var reference: [UInt64: [UInt8]] = [:]
            // Small key spaces make long clusters and wrap-around; large ones spread out.
            let keySpace: UInt64 = seed % 3 == 0 ? 1 << 40 : (seed % 3 == 1 ? 64 : 1000)
            for step in 0..<4000 {
                let k = rng.next(below: keySpace) &* (seed % 2 == 0 ? 1 : 4096)
                switch rng.next(below: 6) {
                case 0, 1:
                    let v = [UInt8(truncatingIfNeeded: step)]
                    table[k] = v; reference[k] = v
                case 2:
                    #expect(table.removeValue(forKey: k) == reference.removeValue(forKey: k))
                case 3:
                    table[k, default: []].append(1); reference[k, default: []].append(1)
                case 4:
                    // In-place mutation through the optional subscript, including removal.
                    if table[k] != nil { table[k]!.append(2); reference[k]!.append(2) }
                    if rng.next(below: 4) == 0 { table[k] = nil; reference[k] = nil }
                default:
                    table[k]?.removeAll(); reference[k]?.removeAll()
                }
                #expect(table.count == reference.count)
                #expect(table[k] == reference[k])
            }
            #expect(table.keys.sorted() == reference.keys.sorted())
            for (k, v) in table { #expect(reference[k] == v) }
            for (k, v) in reference { #expect(table[k] == v) }
            let evenTable = table.filter { $0.key % 2 == 0 }
            #expect(evenTable.keys.sorted() == reference.filter { $0.key % 2 == 0 }.keys.sorted())
            var copy = table
            #expect(copy == table)
            if let k = reference.keys.first {
                copy[k] = nil
                #expect(copy != table && table[k] == reference[k], "copy-on-write keeps the original")
            }
            table.removeAll()
            #expect(table.isEmpty && table.keys.isEmpty)
        }
    }

    @Test func equalityIgnoresInsertionOrder() {
        var a: IntKeyedTable<RequestID, Int> = [:], b: IntKeyedTable<RequestID, Int> = [:]
        for i in UInt64(0)..<100 { a[RequestID(i)] = Int(i) }
        for i in (UInt64(0)..<100).reversed() { b[RequestID(i)] = Int(i) }
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        b[RequestID(7)] = 8
        #expect(a != b)
    }
}

extension IntKeyedTableTests {
    @Test func updateMutatesInPlaceAndSkipsAbsentKeys() {
        var t: IntKeyedTable<StoreTag, [Int]> = [:]
        t[StoreTag(3)] = [1]
        #expect(t.update(StoreTag(3)) { $0.append(2); return $0.count } == 2)
        #expect(t[StoreTag(3)] == [1, 2])
        #expect(t.update(StoreTag(4)) { $0.append(9) } == nil)
        #expect(t.count == 1 && t[StoreTag(4)] == nil)
    }
}

/// Counts live instances: the table keeps values in raw storage and moves them by hand, so a
/// value copied, dropped or released twice shows up as a wrong count (or a crash).
private final class Tracked {
    nonisolated(unsafe) static var live = 0
    let id: UInt64
    init(_ id: UInt64) { self.id = id; Tracked.live += 1 }
    deinit { Tracked.live -= 1 }
}

extension IntKeyedTableTests {
    @Test func valuesAreReleasedExactlyOnceThroughInsertsMovesCopiesAndGrowth() {
        do {
            var rng = SplitMix64(seed: 7)
            var table: IntKeyedTable<UInt64, Tracked> = [:]
            var reference: [UInt64: UInt64] = [:]
            var copies: [IntKeyedTable<UInt64, Tracked>] = []
            for step in UInt64(0)..<3000 {
                let k = rng.next(below: 300)
                switch rng.next(below: 5) {
                case 0:
                    if !table.contains(key: k) { table.insertAbsent(k, Tracked(step)); reference[k] = step }
                case 1:
                    table[k] = Tracked(step); reference[k] = step
                case 2:
                    #expect(table.removeValue(forKey: k)?.id == reference.removeValue(forKey: k))
                case 3:
                    if rng.next(below: 50) == 0 { copies.append(table) }  // shared storage, then copy on write
                default:
                    table[k] = nil; reference[k] = nil
                }
                #expect(table[k]?.id == reference[k])
            }
            #expect(table.count == reference.count)
            for (k, v) in table { #expect(reference[k] == v.id) }
            #expect(!copies.isEmpty)
        }
        #expect(Tracked.live == 0, "every value released once")
    }
}
