/// A short list of member ids held inline: up to `MemberList.capacity` ids in one word, no heap
/// storage. The client's per-IO bookkeeping (legs a request waits on, legs that answered, failed
/// members piggybacked) holds at most one id per leg (`Limits.maxLegs`), and an IO unit carries
/// six such lists: as arrays each non-empty one was an allocation, and copying or destroying a
/// unit retained or released each of them.
///
/// Order is kept (append order), as an array's would be. More than `capacity` ids is a bug
/// (a list never holds more ids than a pool has legs): it traps.
struct MemberList: RandomAccessCollection, ExpressibleByArrayLiteral, Hashable, Sendable {
    static let capacity = 8
    /// Id `i` in byte `i`.
    private var bytes: UInt64 = 0
    private(set) var count: Int = 0

    init() {}

    init(arrayLiteral elements: MemberID...) {
        self.init(elements)
    }

    init<S: Sequence>(_ members: S) where S.Element == MemberID {
        for m in members { append(m) }
    }

    var startIndex: Int { 0 }
    var endIndex: Int { count }

    subscript(i: Int) -> MemberID {
        precondition(i >= 0 && i < count, "member list index \(i) out of range 0..<\(count)")
        return MemberID(truncatingIfNeeded: bytes >> (UInt64(i) * 8))
    }

    mutating func append(_ m: MemberID) {
        precondition(count < MemberList.capacity, "member list full (\(MemberList.capacity) ids): \(Array(self)) + \(m)")
        bytes |= UInt64(m) << (UInt64(count) * 8)
        count += 1
    }

    /// Inserts `m` before the first greater id (a list built only this way is sorted).
    mutating func insertSorted(_ m: MemberID) {
        var out = MemberList()
        var placed = false
        for x in self {
            if !placed && m < x { out.append(m); placed = true }
            out.append(x)
        }
        if !placed { out.append(m) }
        self = out
    }

    /// Removes every id for which `shouldRemove` holds, keeping the order of the rest.
    mutating func removeAll(where shouldRemove: (MemberID) throws -> Bool) rethrows {
        var kept = MemberList()
        for m in self where try !shouldRemove(m) { kept.append(m) }
        self = kept
    }

    // Equality and hashing by content (unused bytes are always zero).
}
