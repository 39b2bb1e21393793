import Testing
@testable import RMRCore

/// `MemberList` (the IO unit's inline id lists) against an array model: same elements, same
/// order, same equality, through appends and removals.
@Suite struct MemberListTests {
    @Test func behavesLikeAnArrayOfIDs() {
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next(_ n: UInt64) -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (state >> 33) % n
        }
        for _ in 0..<2000 {
            var list = MemberList()
            var model: [MemberID] = []
            for _ in 0..<Int(next(40)) {
                if next(3) != 0 && model.count < MemberList.capacity {
                    let m = MemberID(truncatingIfNeeded: next(256))  // 0 and 255 included
                    list.append(m)
                    model.append(m)
                } else if let victim = model.isEmpty ? nil : model[Int(next(UInt64(model.count)))] {
                    list.removeAll { $0 == victim }
                    model.removeAll { $0 == victim }
                }
                #expect(Array(list) == model)
                #expect(list.count == model.count && list.isEmpty == model.isEmpty)
                #expect(list == MemberList(model), "equality is by content")
                if let first = model.first { #expect(list.contains(first)) }
            }
        }
    }

    @Test func insertSortedKeepsAscendingOrder() {
        var state: UInt64 = 7
        for _ in 0..<500 {
            var list = MemberList()
            var model: [MemberID] = []
            for _ in 0..<MemberList.capacity {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                let m = MemberID(truncatingIfNeeded: state >> 56)
                list.insertSorted(m)
                model.append(m)
                #expect(Array(list) == model.sorted())
            }
        }
    }

    @Test func literalsAndFullLists() {
        let l: MemberList = [43, 0, 255]
        #expect(Array(l) == [43, 0, 255])
        #expect(l != [43, 0], "a shorter list differs even when the rest of the word is zero")
        #expect(l != [43, 0, 255, 0], "a trailing id 0 counts")
        var full = MemberList()
        for m in 1...UInt8(MemberList.capacity) { full.append(m) }
        #expect(full.count == MemberList.capacity && full.last == UInt8(MemberList.capacity))
        full.removeAll { $0 % 2 == 0 }
        #expect(Array(full) == [1, 3, 5, 7])
    }
}
