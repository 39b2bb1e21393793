// The simulator's agenda: a 4-ary min-heap ordered by (virtual time, sequence number).
//
// Two events at the same instant pop in the order they were pushed (the sequence number is a
// global counter), so a run never depends on how the heap happens to break ties. Payloads live
// in raw slot storage beside the heap; the heap itself moves only 24-byte keys.
//
// Events pushed for the instant of the last pop (a delivery "now": block IO, a workload's next
// issue, a link coming up) skip the heap: they go to a FIFO lane, which stays sorted by
// (time, sequence) because both only grow. A pop takes the smaller of the heap's top and the
// lane's head, so the order is exactly the heap-only order.

public struct EventQueue<Payload>: ~Copyable {
    struct Key {
        /// (time, sequence number) as one 128-bit number: the order of events is the order of
        /// ranks, compared without branches (a heap's comparisons are unpredictable).
        var rank: UInt128
        var slot: Int
        init(time: UInt64, seq: UInt64, slot: Int) {
            rank = UInt128(time) << 64 | UInt128(seq)
            self.slot = slot
        }
        var time: UInt64 { UInt64(truncatingIfNeeded: rank >> 64) }
        var seq: UInt64 { UInt64(truncatingIfNeeded: rank) }
        @inline(__always) static func before(_ a: Key, _ b: Key) -> Bool { a.rank < b.rank }
    }

    private var heap: [Key] = []
    /// Same-instant events, oldest first, from `laneHead` on.
    private var lane: [Key] = []
    private var laneHead = 0
    /// Payloads by slot, in raw storage: a slot is initialized exactly while a key in the heap
    /// or the live part of the lane names it. (Raw storage rather than `[Payload?]`: storing
    /// into and taking out of an optional slot destroys the old value through Optional's generic
    /// value witness, about 70 instructions per event for a large enum.) Noncopyable, so the
    /// storage has one owner, which releases it.
    private var payloads: UnsafeMutablePointer<Payload>
    private var capacity: Int
    /// Slots handed out so far; slots below it not in use are in `freeSlots`.
    private var slotsUsed = 0
    private var freeSlots: [Int] = []
    /// Time of the last pop: a push at this time goes to the lane.
    private var lastPopTime: UInt64 = 0
    /// The sequence number the next push receives.
    public private(set) var nextSequence: UInt64 = 0

    public init() {
        capacity = 64
        payloads = .allocate(capacity: capacity)
    }

    deinit {
        for k in heap { (payloads + k.slot).deinitialize(count: 1) }
        for i in laneHead..<lane.count { (payloads + lane[i].slot).deinitialize(count: 1) }
        payloads.deallocate()
    }

    public var count: Int { heap.count + lane.count - laneHead }
    public var isEmpty: Bool { heap.isEmpty && laneHead == lane.count }
    /// Time of the earliest event, if any.
    public var earliestTime: UInt64? {
        if laneHead < lane.count {
            let t = lane[laneHead].time
            if let h = heap.first?.time, h < t { return h }
            return t
        }
        return heap.first?.time
    }

    /// A free slot holding `payload`.
    @inline(__always)
    private mutating func store(_ payload: consuming Payload) -> Int {
        let slot: Int
        if let s = freeSlots.popLast() {
            slot = s
        } else {
            if slotsUsed == capacity {
                let bigger = UnsafeMutablePointer<Payload>.allocate(capacity: capacity * 2)
                // Every slot below `slotsUsed` is either live or free (uninitialized): moving all of
                // them as raw memory keeps both kinds as they were.
                UnsafeMutableRawPointer(bigger).copyMemory(from: UnsafeRawPointer(payloads),
                                                           byteCount: capacity * MemoryLayout<Payload>.stride)
                payloads.deallocate()
                payloads = bigger
                capacity *= 2
            }
            slot = slotsUsed
            slotsUsed += 1
        }
        (payloads + slot).initialize(to: payload)
        return slot
    }

    /// The payload of `slot`, moved out; the slot becomes free.
    @inline(__always)
    private mutating func take(_ slot: Int) -> Payload {
        freeSlots.append(slot)
        return (payloads + slot).move()
    }

    /// Adds `payload` at `time`; returns its sequence number.
    @discardableResult
    public mutating func push(at time: UInt64, _ payload: consuming Payload) -> UInt64 {
        let seq = nextSequence
        nextSequence += 1
        let slot = store(payload)
        // (A caller that pushes into the past can pop an earlier time; the lane then takes
        // only what keeps it sorted.)
        if time == lastPopTime && (laneHead == lane.count || lane[lane.count - 1].time <= time) {
            lane.append(Key(time: time, seq: seq, slot: slot))
            return seq
        }
        heap.append(Key(time: time, seq: seq, slot: slot))
        siftUp(heap.count - 1)
        return seq
    }

    /// Removes and returns the earliest event (lowest time, then lowest sequence number).
    public mutating func pop() -> (time: UInt64, seq: UInt64, payload: Payload)? {
        if laneHead < lane.count {
            let head = lane[laneHead]
            if heap.isEmpty || !Key.before(heap[0], head) {
                laneHead += 1
                if laneHead == lane.count {
                    lane.removeAll(keepingCapacity: true)
                    laneHead = 0
                } else if laneHead >= 4096 && laneHead * 2 >= lane.count {
                    lane.removeFirst(laneHead)
                    laneHead = 0
                }
                lastPopTime = head.time
                return (head.time, head.seq, take(head.slot))
            }
        }
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        lastPopTime = top.time
        return (top.time, top.seq, take(top.slot))
    }

    /// The pending events whose payload matches, in pop order (time, then sequence number).
    /// Leaves the queue unchanged.
    public func pending(where matches: (Payload) -> Bool) -> [(time: UInt64, seq: UInt64, payload: Payload)] {
        var out: [(time: UInt64, seq: UInt64, payload: Payload)] = []
        for k in heap + lane[laneHead...] where matches(payloads[k.slot]) { out.append((k.time, k.seq, payloads[k.slot])) }
        out.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
        return out
    }

    public mutating func removeAll() {
        for k in heap { (payloads + k.slot).deinitialize(count: 1) }
        for i in laneHead..<lane.count { (payloads + lane[i].slot).deinitialize(count: 1) }
        heap.removeAll()
        lane.removeAll()
        laneHead = 0
        freeSlots.removeAll()
        slotsUsed = 0
    }

    // A 4-ary heap: half the levels of a binary one, and the four children of a node are
    // adjacent (one or two cache lines of keys).

    private mutating func siftUp(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { h in
            var i = start
            let key = h[i]
            while i > 0 {
                let parent = (i - 1) >> 2
                if Key.before(key, h[parent]) {
                    h[i] = h[parent]
                    i = parent
                } else {
                    break
                }
            }
            h[i] = key
        }
    }

    private mutating func siftDown(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { h in
            var i = start
            let key = h[i]
            let n = h.count
            while true {
                let first = 4 * i + 1
                if first >= n { break }
                // The smallest of up to four children, selected without branches; four (the
                // usual case) as a tournament of two pairs.
                var child = first
                var best = h[first].rank
                if first + 3 < n {
                    let r1 = h[first + 1].rank, r2 = h[first + 2].rank, r3 = h[first + 3].rank
                    let b1 = r1 < best
                    let a = b1 ? r1 : best
                    let ai = b1 ? first + 1 : first
                    let b3 = r3 < r2
                    let b = b3 ? r3 : r2
                    let bi = b3 ? first + 3 : first + 2
                    let bb = b < a
                    best = bb ? b : a
                    child = bb ? bi : ai
                } else {
                    var c = first + 1
                    while c < n {
                        let r = h[c].rank
                        let smaller = r < best
                        best = smaller ? r : best
                        child = smaller ? c : child
                        c += 1
                    }
                }
                if best < key.rank {
                    h[i] = h[child]
                    i = child
                } else {
                    break
                }
            }
            h[i] = key
        }
    }
}
