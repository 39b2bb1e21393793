import Testing
import RMRCore  // not @testable: only the public interface the simulator uses

/// `IntKeyedTable` as another module sees it (the simulator's block-tag and in-flight IO maps).
@Suite struct IntKeyedTablePublicTests {
    @Test func publicInterfaceMatchesDictionary() {
        var rng = SplitMix64(seed: 7)
        var table = IntKeyedTable<UInt64, (workload: Int, isWrite: Bool)>()
        var reference: [UInt64: (workload: Int, isWrite: Bool)] = [:]
        #expect(table.isEmpty)
        var next: UInt64 = 1
        for step in 0..<5000 {
            switch rng.next() % 5 {
            case 0, 1:
                // Sequential tags, as the world hands them out.
                table[next] = (step % 3, step % 2 == 0)
                reference[next] = (step % 3, step % 2 == 0)
                next += 1
            case 2:
                let k = 1 + rng.next() % next
                #expect(table.removeValue(forKey: k)?.workload == reference.removeValue(forKey: k)?.workload)
            case 3:
                let k = 1 + rng.next() % next
                let flipped = table.update(k) { v in v.isWrite.toggle(); return v.isWrite }
                if reference[k] != nil { reference[k]!.isWrite.toggle() }
                #expect(flipped == reference[k]?.isWrite)
            default:
                let k = 1 + rng.next() % next
                #expect(table[k]?.workload == reference[k]?.workload)
                #expect(table[k]?.isWrite == reference[k]?.isWrite)
            }
            #expect(table.count == reference.count)
        }
        #expect(table.keys.sorted() == reference.keys.sorted())
        // Removing while walking sorted keys (as `workloadHostCrashed` does).
        for k in table.keys.sorted() where table[k]!.workload == 1 { table.removeValue(forKey: k) }
        #expect(table.keys.sorted() == reference.keys.sorted().filter { reference[$0]!.workload != 1 })
        table.removeAll()
        #expect(table.isEmpty && table.count == 0 && table.keys.isEmpty)
        table[42] = (0, true)
        #expect(table[42]?.isWrite == true)
    }
}
