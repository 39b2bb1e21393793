// A small deterministic hash table for integer-like keys (request ids, store / persist / block
// tags, IO unit ids, chunk indices): the hot maps of the IO path. Swift's Dictionary hashes
// each key with seeded SipHash and its optional subscript copies the value out and back when
// mutated through `table[k]!.field = x`; here keys hash with one multiply (Fibonacci hashing),
// collisions probe linearly, deletion shifts the cluster back (no tombstones), and values are
// mutated in place in their slot.
//
// The interface is the subset of Dictionary the core uses, with the same meaning. Iteration
// order is the slot order (deterministic, but unlike Dictionary's): callers that need an order
// sort the keys, as they did with Dictionary, whose order is seeded per process.
//
// Public for the simulator's per-IO maps (workload block tags, the data model's in-flight
// reads and writes). Everything is `@inlinable` (internals `@usableFromInline`): a generic type
// used from another module is otherwise called unspecialised, through witness tables, which
// would cost more than the SipHash it saves.

/// A key of an `IntKeyedTable`: a value that is one 64-bit integer.
public protocol IntKey: Hashable, Sendable {
    /// The key as one integer (equal keys, equal integers; distinct keys, distinct integers).
    var intKey: UInt64 { get }
    init(intKey: UInt64)
}

extension UInt64: IntKey {
    @inlinable @inline(__always) public var intKey: UInt64 { self }
    @inlinable @inline(__always) public init(intKey: UInt64) { self = intKey }
}
extension RequestID: IntKey {
    @inlinable @inline(__always) public var intKey: UInt64 { raw }
    @inlinable @inline(__always) public init(intKey: UInt64) { self.init(intKey) }
}
extension StoreTag: IntKey {
    @inlinable @inline(__always) public var intKey: UInt64 { raw }
    @inlinable @inline(__always) public init(intKey: UInt64) { self.init(intKey) }
}
extension PersistTag: IntKey {
    @inlinable @inline(__always) public var intKey: UInt64 { raw }
    @inlinable @inline(__always) public init(intKey: UInt64) { self.init(intKey) }
}
extension BlockIOTag: IntKey {
    @inlinable @inline(__always) public var intKey: UInt64 { raw }
    @inlinable @inline(__always) public init(intKey: UInt64) { self.init(intKey) }
}

public struct IntKeyedTable<Key: IntKey, Value> {
    /// Slot keys; meaningful only where `values[i]` is not nil (an empty slot).
    @usableFromInline var slotKeys: [UInt64] = []
    @usableFromInline var values: [Value?] = []
    /// Number of keys present (`count`).
    @usableFromInline var used = 0
    /// 64 - log2 of the capacity (the capacity is `values.count`, 0 or a power of two; the
    /// shift is used only once there are slots).
    @usableFromInline var shift: UInt64 = 64

    /// An empty table (no slots are allocated until the first insertion).
    @inlinable public init() {}

    /// Number of keys present.
    @inlinable public var count: Int { used }
    @inlinable public var isEmpty: Bool { used == 0 }
    @inlinable var capacity: Int { values.count }
    @inlinable static var minCapacity: Int { 8 }

    /// Home slot of `key`: the top bits of the key times 2^64 / golden ratio.
    @inlinable @inline(__always)
    func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    @inlinable @inline(__always)
    func isUsed(_ i: Int) -> Bool {
        if case .none = values[i] { return false }
        return true
    }

    /// The slot holding `key`, or nil.
    @inlinable @inline(__always)
    func slot(of key: UInt64) -> Int? {
        guard used > 0 else { return nil }
        let mask = capacity - 1
        var i = home(key)
        while isUsed(i) {
            if slotKeys[i] == key { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    /// The empty slot where `key` (absent) goes; the table has room.
    @inlinable @inline(__always)
    func freeSlot(for key: UInt64) -> Int {
        let mask = capacity - 1
        var i = home(key)
        while isUsed(i) { i = (i + 1) & mask }
        return i
    }

    /// Inserts absent `key` with `value` (not nil), growing first if needed (load kept at or
    /// below 1/2); returns its slot.
    @inlinable @inline(__always) @discardableResult
    mutating func insertNew(_ key: UInt64, _ value: consuming Value?) -> Int {
        if (used + 1) * 2 > capacity { grow() }
        let i = freeSlot(for: key)
        slotKeys[i] = key
        values[i] = value
        used += 1
        return i
    }

    @inlinable
    mutating func grow() {
        let newCapacity = Swift.max(IntKeyedTable.minCapacity, capacity * 2)
        var oldValues: [Value?] = Array(repeating: nil, count: newCapacity)
        swap(&oldValues, &values)
        var oldKeys: [UInt64] = Array(repeating: 0, count: newCapacity)
        swap(&oldKeys, &slotKeys)
        shift = UInt64(64 - newCapacity.trailingZeroBitCount)
        for j in oldValues.indices {
            guard case .some = oldValues[j] else { continue }
            let i = freeSlot(for: oldKeys[j])
            slotKeys[i] = oldKeys[j]
            swap(&values[i], &oldValues[j])
        }
    }

    /// Empties slot `i` and shifts the rest of its cluster back so that every key stays
    /// reachable from its home slot without crossing an empty slot.
    @inlinable
    mutating func delete(at i: Int) -> Value {
        var removed: Value? = nil
        swap(&removed, &values[i])
        vacate(i)
        return removed!
    }

    /// Slot `i` was just emptied (its value set to nil): counts it and closes the gap.
    @inlinable
    mutating func vacate(_ i: Int) {
        used -= 1
        let mask = capacity - 1
        var hole = i
        var j = (i + 1) & mask
        while isUsed(j) {
            let h = home(slotKeys[j])
            // Move j into the hole unless its home lies cyclically in (hole, j].
            let stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if !stays {
                slotKeys[hole] = slotKeys[j]
                values.swapAt(hole, j)
                hole = j
            }
            j = (j + 1) & mask
        }
    }

    /// The value for `key` (nil: absent); setting nil removes the key.
    @inlinable public subscript(key: Key) -> Value? {
        // `get`, not `_read`: a read coroutine on a table inside an array element makes the
        // compiler copy the whole element (e.g. a ServerPool) to borrow from.
        @inline(__always) get {
            guard let i = slot(of: key.intKey) else { return nil }
            return values[i]
        }
        @inline(__always) set {
            let k = key.intKey
            if let i = slot(of: k) {
                values[i] = newValue
                if case .none = values[i] { vacate(i) }
            } else if case .some = newValue {
                insertNew(k, newValue)
            }
        }
        @inline(__always) _modify {
            let k = key.intKey
            if let i = slot(of: k) {
                // In place: the value is yielded in its slot, not copied out.
                yield &values[i]
                if case .none = values[i] { vacate(i) }
            } else {
                var fresh: Value? = nil
                yield &fresh
                if case .some = fresh { insertNew(k, fresh) }
            }
        }
    }

    /// The value for `key`, or `defaultValue()` (inserted first when mutated).
    @inlinable public subscript(key: Key, default defaultValue: @autoclosure () -> Value) -> Value {
        @inline(__always) get {
            guard let i = slot(of: key.intKey) else { return defaultValue() }
            return values[i]!
        }
        @inline(__always) _modify {
            let k = key.intKey
            let i = slot(of: k) ?? insertNew(k, defaultValue())
            yield &values[i]!
        }
    }

    @inlinable @inline(__always)
    public func contains(key: Key) -> Bool { slot(of: key.intKey) != nil }

    /// Runs `body` on the value of `key` in its slot (nil when absent). Cheaper than
    /// `table[key]?.mutatingMethod()`, whose accessor coroutine is not always inlined.
    @inlinable @inline(__always)
    public mutating func update<R>(_ key: Key, _ body: (inout Value) throws -> R) rethrows -> R? {
        guard let i = slot(of: key.intKey) else { return nil }
        return try body(&values[i]!)
    }

    /// Removes `key`; returns its value (nil: it was absent).
    @inlinable @inline(__always) @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        guard let i = slot(of: key.intKey) else { return nil }
        return delete(at: i)
    }

    /// Removes every key (and releases the slots).
    @inlinable public mutating func removeAll() {
        self = IntKeyedTable()
    }

    /// The keys, in slot order (sort them where order matters).
    @inlinable public var keys: [Key] {
        var out: [Key] = []
        out.reserveCapacity(used)
        for i in values.indices where isUsed(i) { out.append(Key(intKey: slotKeys[i])) }
        return out
    }

    /// The entries for which `isIncluded` holds.
    @inlinable public func filter(_ isIncluded: ((key: Key, value: Value)) throws -> Bool) rethrows -> IntKeyedTable {
        var out = IntKeyedTable()
        for i in values.indices where isUsed(i) {
            let v = values[i]!
            if try isIncluded((Key(intKey: slotKeys[i]), v)) { out.insertNew(slotKeys[i], v) }
        }
        return out
    }
}

extension IntKeyedTable: Sequence {
    public struct Iterator: IteratorProtocol {
        @usableFromInline let table: IntKeyedTable
        @usableFromInline var position = 0
        @inlinable init(table: IntKeyedTable) { self.table = table }
        @inlinable public mutating func next() -> (key: Key, value: Value)? {
            while position < table.values.count {
                let i = position
                position += 1
                if let v = table.values[i] { return (Key(intKey: table.slotKeys[i]), v) }
            }
            return nil
        }
    }
    @inlinable public func makeIterator() -> Iterator { Iterator(table: self) }
    @inlinable public var underestimatedCount: Int { used }
}

extension IntKeyedTable: ExpressibleByDictionaryLiteral {
    @inlinable public init(dictionaryLiteral elements: (Key, Value)...) {
        self.init()
        for (k, v) in elements {
            precondition(self[k] == nil, "duplicate key \(k) in a table literal")
            self[k] = v
        }
    }
}

extension IntKeyedTable: Sendable where Value: Sendable {}

/// Equal when they hold the same keys with equal values (slot order does not matter).
extension IntKeyedTable: Equatable where Value: Equatable {
    @inlinable public static func == (a: IntKeyedTable, b: IntKeyedTable) -> Bool {
        guard a.count == b.count else { return false }
        for (k, v) in a {
            guard let w = b[k], w == v else { return false }
        }
        return true
    }
}

extension IntKeyedTable: Hashable where Value: Hashable {
    /// Order-independent: the sum of the entries' own hashes.
    @inlinable public func hash(into hasher: inout Hasher) {
        var sum = 0
        for (k, v) in self {
            var h = Hasher()
            h.combine(k.intKey)
            h.combine(v)
            sum &+= h.finalize()
        }
        hasher.combine(count)
        hasher.combine(sum)
    }
}
