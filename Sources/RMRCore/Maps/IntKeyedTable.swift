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

/// The slots of an `IntKeyedTable`, in one object shared by copies of the table until one of
/// them is mutated (copy-on-write, as an array's buffer).
///
/// Raw storage, not arrays: every slot's value is initialised (nil when the slot is empty), so
/// a value moves into an empty slot by initialisation and out of a slot by a move, where an
/// array element is assigned (the old optional destroyed first) or swapped through a local
/// (copied, then destroyed). For the core's large value types the compiler destroys and copies
/// an optional through the runtime's generic Optional witness (~80 instructions a call, several
/// per IO). `occupied` says whether a slot holds a key without reading the optional's tag (for
/// those types, another runtime call). One uniqueness check per mutation, where the two arrays
/// had one each.
@usableFromInline
final class IntKeyedTableStorage<Value> {
    @usableFromInline let capacity: Int
    @usableFromInline let keys: UnsafeMutablePointer<UInt64>
    @usableFromInline let occupied: UnsafeMutablePointer<Bool>
    @usableFromInline let values: UnsafeMutablePointer<Value?>

    /// Empty slots.
    @inlinable init(capacity: Int) {
        self.capacity = capacity
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
        occupied = .allocate(capacity: capacity)
        occupied.initialize(repeating: false, count: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(repeating: nil, count: capacity)
    }

    /// A copy of `other`'s slots (keys in the same slots).
    @inlinable init(copying other: IntKeyedTableStorage) {
        capacity = other.capacity
        keys = .allocate(capacity: capacity)
        keys.initialize(from: other.keys, count: capacity)
        occupied = .allocate(capacity: capacity)
        occupied.initialize(from: other.occupied, count: capacity)
        values = .allocate(capacity: capacity)
        values.initialize(from: other.values, count: capacity)
    }

    @inlinable deinit {
        values.deinitialize(count: capacity)
        values.deallocate()
        occupied.deallocate()
        keys.deallocate()
    }
}

public struct IntKeyedTable<Key: IntKey, Value> {
    /// The slots (nil until the first insertion: an empty table allocates nothing).
    @usableFromInline var storage: IntKeyedTableStorage<Value>?
    /// `storage`'s three pointers, kept here: reaching them through the object would retain and
    /// release it around each access. Valid while `storage` is not nil.
    @usableFromInline var keyBase: UnsafeMutablePointer<UInt64>?
    @usableFromInline var occupiedBase: UnsafeMutablePointer<Bool>?
    @usableFromInline var valueBase: UnsafeMutablePointer<Value?>?
    /// Number of keys present (`count`).
    @usableFromInline var used = 0
    /// Number of slots: 0 or a power of two.
    @usableFromInline var capacity = 0
    /// 64 - log2 of the capacity (the shift is used only once there are slots).
    @usableFromInline var shift: UInt64 = 64

    /// An empty table (no slots are allocated until the first insertion).
    @inlinable public init() {}

    /// Number of keys present.
    @inlinable public var count: Int { used }
    @inlinable public var isEmpty: Bool { used == 0 }
    @inlinable static var minCapacity: Int { 8 }

    @inlinable var slotKeys: UnsafeMutablePointer<UInt64> { @inline(__always) get { keyBase.unsafelyUnwrapped } }
    @inlinable var occupied: UnsafeMutablePointer<Bool> { @inline(__always) get { occupiedBase.unsafelyUnwrapped } }
    @inlinable var values: UnsafeMutablePointer<Value?> { @inline(__always) get { valueBase.unsafelyUnwrapped } }

    /// Home slot of `key`: the top bits of the key times 2^64 / golden ratio.
    @inlinable @inline(__always)
    func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) &>> shift)
    }

    /// The slot holding `key`, or nil.
    @inlinable @inline(__always)
    func slot(of key: UInt64) -> Int? {
        guard used > 0 else { return nil }
        let mask = capacity - 1
        var i = home(key)
        while occupied[i] {
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
        while occupied[i] { i = (i + 1) & mask }
        return i
    }

    /// Uses `st` as the slots.
    @inlinable @inline(__always)
    mutating func adopt(_ st: IntKeyedTableStorage<Value>) {
        keyBase = st.keys
        occupiedBase = st.occupied
        valueBase = st.values
        capacity = st.capacity
        storage = st
    }

    /// Makes the slots this table's alone before a mutation (there are slots).
    @inlinable @inline(__always)
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            adopt(IntKeyedTableStorage(copying: storage.unsafelyUnwrapped))
        }
    }

    /// Inserts absent `key` with `value` (not nil), growing first if needed (load kept at or
    /// below 1/2); returns its slot.
    @inlinable @inline(__always) @discardableResult
    mutating func insertNew(_ key: UInt64, _ value: consuming Value?) -> Int {
        if (used + 1) * 2 > capacity { grow() } else { makeUnique() }
        let i = freeSlot(for: key)
        slotKeys[i] = key
        occupied[i] = true
        // The slot holds nil (nothing to destroy): initialised, not assigned.
        (values + i).initialize(to: value)
        used += 1
        return i
    }

    /// Doubles the slots (at least `minCapacity`), keys re-inserted in slot order; the new
    /// slots are this table's alone.
    @inlinable
    mutating func grow() {
        let newCapacity = Swift.max(IntKeyedTable.minCapacity, capacity * 2)
        let unique = isKnownUniquelyReferenced(&storage)
        let old = storage
        adopt(IntKeyedTableStorage<Value>(capacity: newCapacity))
        shift = UInt64(64 - newCapacity.trailingZeroBitCount)
        guard let old else { return }
        for j in 0..<old.capacity where old.occupied[j] {
            let i = freeSlot(for: old.keys[j])
            slotKeys[i] = old.keys[j]
            occupied[i] = true
            if unique {
                // Moved: the old slot is left nil (its storage is released at the end).
                (values + i).moveInitialize(from: old.values + j, count: 1)
                (old.values + j).initialize(to: nil)
            } else {
                (values + i).initialize(to: old.values[j])
            }
        }
    }

    /// Empties slot `i` and shifts the rest of its cluster back so that every key stays
    /// reachable from its home slot without crossing an empty slot.
    @inlinable
    mutating func delete(at i: Int) -> Value {
        makeUnique()
        let removed = (values + i).move()
        (values + i).initialize(to: nil)
        occupied[i] = false
        vacate(i)
        return removed!
    }

    /// Slot `i` (the table's alone) was just emptied (nil, not occupied): counts it and closes
    /// the gap.
    @inlinable
    mutating func vacate(_ i: Int) {
        used -= 1
        let mask = capacity - 1
        var hole = i
        var j = (i + 1) & mask
        while occupied[j] {
            let h = home(slotKeys[j])
            // Move j into the hole unless its home lies cyclically in (hole, j].
            let stays = hole <= j ? (hole < h && h <= j) : (hole < h || h <= j)
            if !stays {
                slotKeys[hole] = slotKeys[j]
                occupied[hole] = true
                // The hole holds nil: j's value moves in, and j is left nil.
                (values + hole).moveInitialize(from: values + j, count: 1)
                (values + j).initialize(to: nil)
                occupied[j] = false
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
                if case .none = newValue {
                    _ = delete(at: i)
                } else {
                    makeUnique()
                    values[i] = newValue
                }
            } else if case .some = newValue {
                insertNew(k, newValue)
            }
        }
        @inline(__always) _modify {
            let k = key.intKey
            if let i = slot(of: k) {
                // In place: the value is yielded in its slot, not copied out.
                makeUnique()
                let slotValues = values
                yield &slotValues[i]
                if case .none = slotValues[i] {
                    occupied[i] = false
                    vacate(i)
                }
            } else {
                var fresh: Value? = nil
                yield &fresh
                if case .some = fresh { insertNew(k, consume fresh) }
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
            let i: Int
            if let found = slot(of: k) { makeUnique(); i = found } else { i = insertNew(k, defaultValue()) }
            let slotValues = values
            yield &slotValues[i]!
        }
    }

    @inlinable @inline(__always)
    public func contains(key: Key) -> Bool { slot(of: key.intKey) != nil }

    /// Runs `body` on the value of `key` in its slot (nil when absent). Cheaper than
    /// `table[key]?.mutatingMethod()`, whose accessor coroutine is not always inlined.
    @inlinable @inline(__always)
    public mutating func update<R>(_ key: Key, _ body: (inout Value) throws -> R) rethrows -> R? {
        guard let i = slot(of: key.intKey) else { return nil }
        makeUnique()
        return try body(&values[i]!)
    }

    /// Inserts `value` for `key`, which the caller knows is absent (a tag or id just made from
    /// a serial, or checked): the subscript's setter looks the key up first.
    @inlinable @inline(__always)
    mutating func insertAbsent(_ key: Key, _ value: consuming Value) {
        assert(!contains(key: key), "IntKeyedTable.insertAbsent: key \(key) is present")
        insertNew(key.intKey, Optional(value))
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
        guard let st = storage else { return out }
        for i in 0..<st.capacity where st.occupied[i] { out.append(Key(intKey: st.keys[i])) }
        return out
    }

    /// The entries for which `isIncluded` holds.
    @inlinable public func filter(_ isIncluded: ((key: Key, value: Value)) throws -> Bool) rethrows -> IntKeyedTable {
        var out = IntKeyedTable()
        guard let st = storage else { return out }
        for i in 0..<st.capacity where st.occupied[i] {
            let v = st.values[i]!
            if try isIncluded((Key(intKey: st.keys[i]), v)) { out.insertNew(st.keys[i], v) }
        }
        return out
    }
}

extension IntKeyedTable: Sequence {
    public struct Iterator: IteratorProtocol {
        @usableFromInline let storage: IntKeyedTableStorage<Value>?
        @usableFromInline var position = 0
        @inlinable init(table: IntKeyedTable) { self.storage = table.storage }
        @inlinable public mutating func next() -> (key: Key, value: Value)? {
            guard let st = storage else { return nil }
            while position < st.capacity {
                let i = position
                position += 1
                if st.occupied[i] { return (Key(intKey: st.keys[i]), st.values[i]!) }
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

// Value semantics: the shared slots are never mutated while shared (copy-on-write), as an
// array's buffer.
extension IntKeyedTable: @unchecked Sendable where Value: Sendable {}

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
