import RMRCore

// Every input, effect and world happening, with its virtual time. Each record is folded into
// the trace hash; the last records are kept when asked (a failed run is replayed with them
// kept, for its report: `RunOptions.keepTraceTail`); with a printer attached
// (`rmr-sim run --trace`) every record is printed.
//
// The hash is computed over a compact binary form of each record, a 64-bit word at a time
// (`TraceHasher`): the hot inputs and effects (block IO, IO messages, store completions, sends,
// timers) are folded field by field; rarer ones fold their canonical text, word-wise. Data
// payloads fold their length and, per 512-byte sector, its first three words and its last
// (once per buffer: a payload seen again folds its cached value). A message's content is
// folded when it is sent; its delivery folds its request id and sender.
// Same file and seed, same hash; no text is built on the hot path.

public final class Trace {
    enum Item {
        case input(Input)
        case effect(Effect)
        /// A node step: the input and the effects it returned (moved in, not copied).
        case applied(Input, [Effect])
        case note(String)
    }
    struct Record {
        var time: UInt64
        var host: String
        var item: Item
    }

    /// The mutable state lives behind a pointer, so the per-record path makes no dynamic
    /// exclusivity checks (a class's stored `var`s would need several per record).
    struct State {
        var hasher = TraceHasher()
        var hashing = true
        var printer: ((String) -> Void)?
        var ringCapacity = 40
        /// The last records: `ringCount` initialized slots of `ringAllocated`, the oldest at
        /// `ringNext` once the ring is full.
        var ringBuf: UnsafeMutablePointer<Record>?
        var ringAllocated = 0
        var ringCount = 0
        var ringNext = 0
        var records: UInt64 = 0

        /// Oldest first.
        func ordered() -> [Record] {
            guard let b = ringBuf else { return [] }
            if ringCount < ringAllocated { return Array(UnsafeBufferPointer(start: b, count: ringCount)) }
            return Array(UnsafeBufferPointer(start: b + ringNext, count: ringCount - ringNext))
                + Array(UnsafeBufferPointer(start: b, count: ringNext))
        }

        mutating func freeRing() {
            if let b = ringBuf {
                b.deinitialize(count: ringCount)
                b.deallocate()
            }
            ringBuf = nil
            ringAllocated = 0
            ringCount = 0
            ringNext = 0
        }

        /// Re-allocates for `ringCapacity`, keeping the newest records.
        mutating func resizeRing() {
            let kept = ordered().suffix(ringCapacity)
            freeRing()
            guard ringCapacity > 0 else { return }
            let b = UnsafeMutablePointer<Record>.allocate(capacity: ringCapacity)
            for (i, r) in kept.enumerated() { (b + i).initialize(to: r) }
            ringBuf = b
            ringAllocated = ringCapacity
            ringCount = kept.count
        }
    }
    private let st: UnsafeMutablePointer<State>

    /// The trace hash so far (a `TraceHasher` value, wrapped for the API).
    public var hash: FNV1a64 { FNV1a64(value: st.pointee.hasher.value) }
    /// Fold records into the hash (the benchmark can measure without it).
    public var hashing: Bool {
        get { st.pointee.hashing }
        set { st.pointee.hashing = newValue }
    }
    public var printer: ((String) -> Void)? {
        get { st.pointee.printer }
        set { st.pointee.printer = newValue }
    }
    public var ringCapacity: Int {
        get { st.pointee.ringCapacity }
        set { st.pointee.ringCapacity = newValue }
    }
    public var records: UInt64 { st.pointee.records }

    public init() {
        st = UnsafeMutablePointer<State>.allocate(capacity: 1)
        st.initialize(to: State())
    }

    deinit {
        st.pointee.freeRing()
        st.deinitialize(count: 1)
        st.deallocate()
    }

    func input(_ time: UInt64, _ host: String, _ i: Input, _: World) {
        if st.pointee.hashing {
            st.pointee.hasher.mix(0x1_0000)
            st.pointee.hasher.mix(time)
            st.pointee.hasher.put(host)
            st.pointee.hasher.input(i)
        }
        keep(Record(time: time, host: host, item: .input(i)))
    }

    func effect(_ time: UInt64, _ host: String, _ e: Effect, _: World) {
        hashEffect(time, host, e)
        keep(Record(time: time, host: host, item: .effect(e)))
    }

    // The driver's hot path: `applyingInput` before `Node.apply` (hash, print), `applied` after
    // it (one ring entry holding the input and the effect list, when records are kept), then
    // `performingEffect` before each effect is carried out (hash, print). World notes made while
    // the effects are performed land in the ring after the whole step.

    func applyingInput(_ time: UInt64, _ host: Host, _ i: borrowing Input) {
        if st.pointee.hashing {
            st.pointee.hasher.mix(0x1_0000)
            st.pointee.hasher.mix(time)
            st.pointee.hasher.mix(host.nameFold)  // = put(host.name)
            st.pointee.hasher.input(i)
        }
        st.pointee.records &+= 1
        if let printer = st.pointee.printer { printer(Trace.render(Record(time: time, host: host.name, item: .input(copy i)))[0]) }
    }

    /// Whether `applied` keeps anything (runs keep no records unless asked to: `RunOptions`).
    var keepsRecords: Bool { st.pointee.ringCapacity > 0 }

    func applied(_ time: UInt64, _ host: String, _ i: consuming Input, _ effects: [Effect]) {
        ring(Record(time: time, host: host, item: .applied(i, effects)))
    }

    func performingEffect(_ time: UInt64, _ host: Host, _ effect: borrowing Effect) {
        // Time and host were folded with the step's input (`applyingInput`).
        if st.pointee.hashing {
            st.pointee.hasher.mix(0x2_0001)
            st.pointee.hasher.effect(effect)
        }
        st.pointee.records &+= 1
        if let printer = st.pointee.printer { printer(Trace.render(Record(time: time, host: host.name, item: .effect(copy effect)))[0]) }
    }

    @inline(__always)
    private func hashEffect(_ time: UInt64, _ host: String, _ e: Effect) {
        if st.pointee.hashing {
            st.pointee.hasher.mix(0x2_0000)
            st.pointee.hasher.mix(time)
            st.pointee.hasher.put(host)
            st.pointee.hasher.effect(e)
        }
    }

    func note(_ time: UInt64, _ host: String, _ text: String, _: World?) {
        if st.pointee.hashing {
            st.pointee.hasher.mix(0x3_0000)
            st.pointee.hasher.mix(time)
            st.pointee.hasher.put(host)
            st.pointee.hasher.put(text)
        }
        keep(Record(time: time, host: host, item: .note(text)))
    }

    public func note(_ time: UInt64, _ host: String, _ text: String) { note(time, host, text, nil) }

    private func keep(_ r: Record) {
        st.pointee.records &+= 1
        if let printer = st.pointee.printer { printer(Trace.render(r)[0]) }
        ring(r)
    }

    private func ring(_ r: consuming Record) {
        if st.pointee.ringAllocated != st.pointee.ringCapacity { st.pointee.resizeRing() }
        guard let b = st.pointee.ringBuf else { return }
        let n = st.pointee.ringCount
        if n < st.pointee.ringAllocated {
            (b + n).initialize(to: consume r)
            st.pointee.ringCount = n + 1
        } else {
            let i = st.pointee.ringNext
            st.pointee.ringNext = i + 1 == n ? 0 : i + 1
            (b + i).pointee = consume r
        }
    }

    /// The lines of one ring entry (an `applied` entry gives its input and each effect).
    static func render(_ r: Record) -> [String] {
        let prefix = "[\(formatTime(r.time))] \(r.host) "
        func cut(_ s: String) -> String { s.count > 400 ? String(s.prefix(400)) + " …" : s }
        var s = prefix
        switch r.item {
        case .input(let i): s += "<- "; Canonical.input(i, &s)
        case .effect(let e): s += "-> "; Canonical.effect(e, &s)
        case .note(let t): s += "** " + t
        case .applied(let i, let effects):
            s += "<- "; Canonical.input(i, &s)
            var lines = [cut(s)]
            for e in effects {
                var t = prefix + "-> "
                Canonical.effect(e, &t)
                lines.append(cut(t))
            }
            return lines
        }
        return [cut(s)]
    }

    /// The most recent records, oldest first.
    public func lastLines(_ n: Int = 30) -> [String] {
        Array(st.pointee.ordered().flatMap(Trace.render).suffix(n))
    }

    public var hashText: String { hex16(st.pointee.hasher.value) }
}

/// The trace hash: 64-bit words folded with a multiply and an xor-shift (both bijective), so
/// one word costs a few cycles instead of eight FNV-1a byte steps. Strings fold their length and
/// their UTF-8 bytes eight at a time. As a `TextSink` it also takes canonical text (cold records).
struct TraceHasher: TextSink {
    private(set) var value: UInt64 = FNV1a64.offsetBasis

    init() { folds = FoldCache() }
    /// For folding one string's content (no cache of its own).
    private init(cacheless: Void) { folds = nil }
    /// `String(describing:)` of the rarer requests (reflection is slow; they repeat).
    private var requestText: [Request: String] = [:]

    @inline(__always) mutating func mix(_ w: UInt64) {
        var h = (value ^ w) &* 0x9e37_79b9_7f4a_7c15
        h ^= h >> 29
        value = h
    }

    mutating func put(_ v: UInt64) { mix(v) }

    /// Folds of recently hashed strings (host names, addresses, pool and device names repeat
    /// on every record) and data buffers (an IO's payload passes through several records),
    /// found by identity (`FoldCache`); nil in a hasher that folds one value's content.
    private let folds: FoldCache?

    /// Folds `s` as one word: its content folded on its own (length and UTF-8 bytes), cached.
    mutating func put(_ s: String) {
        if let w = folds!.lookup(s) { mix(w); return }
        let w = TraceHasher.contentFold(s)
        folds!.insert(s, w)
        mix(w)
    }

    /// What `put(s)` mixes in: the fold of `s`'s content alone.
    static func contentFold(_ s: String) -> UInt64 {
        var content = TraceHasher(cacheless: ())
        content.putContent(s)
        return content.value
    }

    private mutating func putContent(_ s: String) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { buf in
            let raw = UnsafeRawBufferPointer(buf)
            mix(0x5354_5200 | UInt64(raw.count) &<< 32)
            var i = 0
            while i + 8 <= raw.count {
                mix(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                i += 8
            }
            if i < raw.count {
                var w: UInt64 = 0
                var shift: UInt64 = 0
                while i < raw.count { w |= UInt64(raw[i]) &<< shift; shift += 8; i += 1 }
                mix(w)
            }
        }
        if done == nil {
            mix(0x5354_5201)
            for b in s.utf8 { mix(UInt64(b)) }
        }
    }

    /// Length, then words 0, 1, 2 (block, version, check of a workload sector) and the last word
    /// of every 512-byte sector; a short tail folds its bytes.
    mutating func data(_ d: [UInt8]) {
        if d.count < 512 { return dataContent(d) }
        // A payload is folded once and then found by its buffer: the same IO's data passes
        // through several records (block IO, sends, store writes, completions).
        if let w = folds!.lookup(d) { mix(w); return }
        var content = TraceHasher(cacheless: ())
        content.dataContent(d)
        folds!.insert(d, content.value)
        mix(content.value)
    }

    private mutating func dataContent(_ d: [UInt8]) {
        mix(0x4441_5441 | UInt64(d.count) &<< 32)
        d.withUnsafeBytes { raw in
            var i = 0
            while i + 512 <= raw.count {
                // Four words, one multiply: independent rotations, then one fold.
                let a = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let b = raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
                let c = raw.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self)
                let d = raw.loadUnaligned(fromByteOffset: i + 504, as: UInt64.self)
                mix(a ^ (b << 21 | b >> 43) ^ (c << 42 | c >> 22) ^ ((d << 11 | d >> 53) &* 0xff51_afd7_ed55_8ccd))
                i += 512
            }
            while i < raw.count { mix(UInt64(raw[i])); i += 1 }
        }
    }

    mutating func members(_ m: [MemberID]) {
        mix(UInt64(m.count))
        for x in m { mix(UInt64(x)) }
    }

    mutating func chunks(_ c: [ChunkIndex]) {
        mix(UInt64(c.count))
        for x in c { mix(x) }
    }

    mutating func update(_ u: MetadataUpdate) {
        switch u {
        case .setDirty(let member, let c): mix(0x40); mix(UInt64(member)); chunks(c)
        case .clearDirty(let member, let c): mix(0x41); mix(UInt64(member)); chunks(c)
        case .setAllDirty(let member): mix(0x42); mix(UInt64(member))
        case .replaceMap(let member, let runs):
            mix(0x43); mix(UInt64(member)); mix(UInt64(runs.count))
            for r in runs { mix(r.start); mix(r.count) }
        case .dropMap(let member): mix(0x44); mix(UInt64(member))
        case .addIntents(let c): mix(0x45); chunks(c)
        case .removeIntents(let c): mix(0x46); chunks(c)
        case .clearIntents: mix(0x47)
        case .header: mix(0x48); put(String(describing: u))
        }
    }

    private mutating func describe(_ req: Request) -> String {
        if let t = requestText[req] { return t }
        let t = String(describing: req)
        if requestText.count >= 4096 { requestText.removeAll() }
        requestText[req] = t
        return t
    }

    mutating func message(_ m: Message) {
        switch m {
        case .request(let id, let pool, .io(let r)):
            mix(0x10)
            mix(id.raw); put(pool)
            mix(UInt64(r.op.rawValue)); mix(r.offsetBytes); mix(r.lengthBytes)
            mix(UInt64(r.slot)); mix(r.mapVersion.raw); mix(UInt64(r.target))
            members(r.failedMembers)
            if r.op == .write { data(r.data) }
        case .request(let id, let pool, let req):
            mix(0x14); mix(id.raw); put(pool)
            switch req {
            case .mapAdd(let chunk, let failed, let mv): mix(0x50); mix(chunk); members(failed); mix(mv.raw)
            case .mapClear(let chunk, let member): mix(0x51); mix(chunk); mix(UInt64(member))
            case .markDirty(let c, let except): mix(0x52); chunks(c); mix(UInt64(except))
            case .mapBuffer(let b):
                mix(0x53); mix(UInt64(b.member)); mix(UInt64(b.runs.count))
                for r in b.runs { mix(r.start); mix(r.count) }
            case .mapBufDone(let mv): mix(0x54); mix(mv.raw)
            case .mapDone(let enable): mix(0x55); mix(enable ? 1 : 0)
            case .mapSend(let receiver): mix(0x56); mix(UInt64(receiver))
            case .mapReady: mix(0x57)
            case .mapDisable: mix(0x58)
            case .readMaps: mix(0x59)
            case .mapCheck(let atLeast): mix(0x5a); if atLeast.raw != 0 { mix(atLeast.raw) }
            case .lastIOToMap: mix(0x5b)
            case .storeCheck: mix(0x5c)
            case .mapGetVersion: mix(0x5d)
            case .mapSetVersion(let mv): mix(0x5e); mix(mv.raw)
            case .enablePool(let e): mix(0x5f); mix(e ? 1 : 0)
            case .discard(let member): mix(0x60); mix(UInt64(member))
            case .metadataRequest(let full): mix(0x61); mix(full ? 1 : 0)
            default: mix(0x6f); put(describe(req))
            }
        case .response(let id, let pool, .ok):
            mix(0x11); mix(id.raw); put(pool)
        case .response(let id, let pool, .failed(let e)):
            mix(0x12); mix(id.raw); put(pool); mix(UInt64(UInt32(bitPattern: e.rawValue)))
        case .response(let id, let pool, .data(let d)):
            mix(0x13); mix(id.raw); put(pool); data(d)
        case .response(let id, let pool, .value(let v)):
            mix(0x15); mix(id.raw); put(pool); mix(v)
        case .response(let id, let pool, .chunksMarked(let c)):
            mix(0x16); mix(id.raw); put(pool); chunks(c)
        case .response(let id, let pool, .maps(let maps, let mv)):
            mix(0x17); mix(id.raw); put(pool); mix(mv.raw); mix(UInt64(maps.count))
            for m in maps {
                mix(UInt64(m.member)); mix(UInt64(m.runs.count))
                for r in m.runs { mix(r.start); mix(r.count) }
            }
        default:
            mix(0x1f)
            Canonical.message(m, &self)
        }
    }

    mutating func input(_ input: Input) {
        switch input {
        case .received(let m, let from):
            // The content was folded when it was sent (`Effect.send`); a delivery folds which
            // message arrived when: its request id, direction and sender.
            switch m {
            case .request(let id, _, _): mix(0x20); mix(id.raw)
            case .response(let id, _, _): mix(0x27); mix(id.raw)
            }
            put(from)
        case .storeCompleted(let tag, let result):
            mix(0x21); mix(tag.raw)
            switch result {
            case .ok(let d): mix(0); data(d)
            case .failed(let e): mix(1); mix(UInt64(UInt32(bitPattern: e.rawValue)))
            }
        case .persistCompleted(let tag, let ok):
            mix(0x22); mix(tag.raw); mix(ok ? 1 : 0)
        case .blockIO(let r):
            mix(0x23); mix(r.tag.raw); mix(UInt64(r.op.rawValue)); put(r.device)
            mix(r.offsetBytes); mix(r.lengthBytes)
            if r.op == .write { data(r.data) }
        case .timerFired:
            mix(0x24)
        case .linkUp(let peer):
            mix(0x25); put(peer)
        case .linkDown(let peer):
            mix(0x26); put(peer)
        case .admin:
            mix(0x2f)
            Canonical.input(input, &self)
        }
    }

    mutating func effect(_ effect: Effect) {
        switch effect {
        case .send(let m, let to):
            mix(0x30); message(m); put(to)
        case .submitStore(let tag, let device, let op):
            mix(0x31); mix(tag.raw); put(device)
            switch op {
            case .read(let off, let len): mix(0); mix(off); mix(len)
            case .write(let off, let d): mix(1); mix(off); data(d)
            case .flush: mix(2)
            }
        case .completeBlockIO(let tag, let result):
            mix(0x32); mix(tag.raw)
            switch result {
            case .ok(let d): mix(0); data(d)
            case .failed(let e): mix(1); mix(UInt64(UInt32(bitPattern: e.rawValue)))
            }
        case .connect(let peer):
            mix(0x33); put(peer)
        case .disconnect(let peer):
            mix(0x34); put(peer)
        case .probe(let p):
            mix(0x35); put(p.rawValue)
        case .persist(let tag, let device, let record):
            mix(0x36); mix(tag.raw); put(device)
            mix(UInt64(record.updates.count))
            for u in record.updates { update(u) }
        default:
            mix(0x3f)
            Canonical.effect(effect, &self)
        }
    }
}

/// The cache of `TraceHasher.put(_:)` and `data(_:)`: 64 two-way slots of (raw bits,
/// fold) for strings and as many for data buffers, and the values themselves, which keeps
/// their storage alive. Equal raw bits mean equal content: a small string holds its bytes
/// inline; a large string's storage is immutable; a buffer held here is shared, so writing to
/// the array it came from copies it to new storage first.
final class FoldCache {
    private let bits: UnsafeMutablePointer<UInt64>
    private var keptStrings: [String]
    private var keptData: [[UInt8]]
    private static let slots = 64

    init() {
        bits = .allocate(capacity: 6 * FoldCache.slots)
        bits.initialize(repeating: 0, count: 6 * FoldCache.slots)
        keptStrings = Array(repeating: "", count: FoldCache.slots)
        keptData = Array(repeating: [], count: FoldCache.slots)
    }
    deinit { bits.deallocate() }

    @inline(__always) private static func raw(_ s: String) -> (UInt64, UInt64) { unsafeBitCast(s, to: (UInt64, UInt64).self) }
    @inline(__always) private static func raw(_ d: [UInt8]) -> (UInt64, UInt64) {
        (UInt64(UInt(bitPattern: d.withUnsafeBufferPointer { $0.baseAddress })), UInt64(d.count))
    }
    /// Slot of raw bits; strings in the first 64 slots, data in the next 64.
    @inline(__always) private static func slot(_ r: (UInt64, UInt64), data: Bool) -> Int {
        Int(truncatingIfNeeded: ((r.0 ^ (r.1 &* 0x9e37_79b9_7f4a_7c15)) &* 0xff51_afd7_ed55_8ccd) >> 58) + (data ? slots : 0)
    }

    // All-zero slots never match: no String is all zero bits, and a buffer of 512 bytes or
    // more has a base address.
    //
    // Two-way: a value is found in its slot or in the slot's neighbour (`^ 1`). An insert
    // moves the slot's entry to the neighbour first, so two values that map to one slot and
    // alternate (two host addresses, say) both stay cached instead of evicting each other on
    // every record.
    @inline(__always) private func find(_ r: (UInt64, UInt64), data: Bool) -> UInt64? {
        let i = FoldCache.slot(r, data: data)
        let p = bits + 3 * i
        if p[0] == r.0 && p[1] == r.1 { return p[2] }
        let q = bits + 3 * (i ^ 1)
        return q[0] == r.0 && q[1] == r.1 ? q[2] : nil
    }
    /// Stores the fold in the value's slot (its old entry moves to the neighbour); returns
    /// the slot, and the kept values move the same way (`insert`).
    private func store(_ r: (UInt64, UInt64), data: Bool, _ fold: UInt64) -> Int {
        let i = FoldCache.slot(r, data: data)
        let p = bits + 3 * i, q = bits + 3 * (i ^ 1)
        q[0] = p[0]; q[1] = p[1]; q[2] = p[2]
        p[0] = r.0; p[1] = r.1; p[2] = fold
        return i
    }

    @inline(__always) func lookup(_ s: String) -> UInt64? { find(FoldCache.raw(s), data: false) }
    func insert(_ s: String, _ fold: UInt64) {
        let i = store(FoldCache.raw(s), data: false, fold)
        keptStrings[i ^ 1] = keptStrings[i]
        keptStrings[i] = s
    }
    @inline(__always) func lookup(_ d: [UInt8]) -> UInt64? { find(FoldCache.raw(d), data: true) }
    func insert(_ d: [UInt8], _ fold: UInt64) {
        let i = store(FoldCache.raw(d), data: true, fold) - FoldCache.slots
        keptData[i ^ 1] = keptData[i]
        keptData[i] = d
    }
}
