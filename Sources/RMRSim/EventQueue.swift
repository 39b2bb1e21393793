// The simulator's agenda: a 4-ary min-heap ordered by (virtual time, sequence number).
//
// Two events at the same instant pop in the order they were pushed (the sequence number is a
// global counter), so a run never depends on how the heap happens to break ties. Payloads live
// in a slot array beside the heap; the heap itself moves only 24-byte keys.
//
// Events pushed for the instant of the last pop (a delivery "now": block IO, a workload's next
// issue, a link coming up) skip the heap: they go to a FIFO lane, which stays sorted by
// (time, sequence) because both only grow. A pop takes the smaller of the heap's top and the
// lane's head, so the order is exactly the heap-only order.

public struct EventQueue<Payload> {
    struct Key {
        var time: UInt64
        var seq: UInt64
        var slot: Int
        @inline(__always) static func before(_ a: Key, _ b: Key) -> Bool {
            a.time < b.time || (a.time == b.time && a.seq < b.seq)
        }
    }

    private var heap: [Key] = []
    private var slots: [Payload?] = []
    private var freeSlots: [Int] = []
    /// Same-instant events, oldest first, from `laneHead` on.
    private var lane: [(time: UInt64, seq: UInt64, payload: Payload?)] = []
    private var laneHead = 0
    /// Time of the last pop: a push at this time goes to the lane.
    private var lastPopTime: UInt64 = 0
    /// The sequence number the next push receives.
    public private(set) var nextSequence: UInt64 = 0

    public init() {}

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

    /// Adds `payload` at `time`; returns its sequence number.
    @discardableResult
    public mutating func push(at time: UInt64, _ payload: consuming Payload) -> UInt64 {
        // (A caller that pushes into the past can pop an earlier time; the lane then takes
        // only what keeps it sorted.)
        if time == lastPopTime && (laneHead == lane.count || lane[lane.count - 1].time <= time) {
            let seq = nextSequence
            nextSequence += 1
            lane.append((time, seq, payload))
            return seq
        }
        let slot: Int
        if let s = freeSlots.popLast() {
            slots[s] = payload
            slot = s
        } else {
            slot = slots.count
            slots.append(payload)
        }
        let seq = nextSequence
        nextSequence += 1
        heap.append(Key(time: time, seq: seq, slot: slot))
        siftUp(heap.count - 1)
        return seq
    }

    /// Removes and returns the earliest event (lowest time, then lowest sequence number).
    public mutating func pop() -> (time: UInt64, seq: UInt64, payload: Payload)? {
        if laneHead < lane.count {
            let (t, seq) = (lane[laneHead].time, lane[laneHead].seq)
            if heap.isEmpty || !Key.before(heap[0], Key(time: t, seq: seq, slot: 0)) {
                let payload = lane[laneHead].payload.take()!
                laneHead += 1
                if laneHead == lane.count {
                    lane.removeAll(keepingCapacity: true)
                    laneHead = 0
                } else if laneHead >= 4096 && laneHead * 2 >= lane.count {
                    lane.removeFirst(laneHead)
                    laneHead = 0
                }
                lastPopTime = t
                return (t, seq, payload)
            }
        }
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            siftDown(0)
        }
        let payload = slots[top.slot].take()!
        freeSlots.append(top.slot)
        lastPopTime = top.time
        return (top.time, top.seq, payload)
    }

    /// The pending events whose payload matches, in pop order (time, then sequence number).
    /// Leaves the queue unchanged.
    public func pending(where matches: (Payload) -> Bool) -> [(time: UInt64, seq: UInt64, payload: Payload)] {
        var out: [(time: UInt64, seq: UInt64, payload: Payload)] = []
        for k in heap { if let p = slots[k.slot], matches(p) { out.append((k.time, k.seq, p)) } }
        for e in lane[laneHead...] { if let p = e.payload, matches(p) { out.append((e.time, e.seq, p)) } }
        out.sort { $0.time != $1.time ? $0.time < $1.time : $0.seq < $1.seq }
        return out
    }

    public mutating func removeAll() {
        heap.removeAll()
        slots.removeAll()
        freeSlots.removeAll()
        lane.removeAll()
        laneHead = 0
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
                var child = first
                let end = min(first + 4, n)
                var c = first + 1
                while c < end {
                    if Key.before(h[c], h[child]) { child = c }
                    c += 1
                }
                if Key.before(h[child], key) {
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
