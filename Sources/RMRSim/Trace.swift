import RMRCore

// Every input, effect and world happening, with its virtual time. Each record is folded into
// the trace hash (FNV-1a 64 over its canonical text); the last records are kept for failure
// reports; with a printer attached (`rmr-sim run --trace`) every record is printed.

public final class Trace {
    enum Item {
        case input(Input)
        case effect(Effect)
        case note(String)
    }
    struct Record {
        var time: UInt64
        var host: String
        var item: Item
    }

    public private(set) var hash = FNV1a64()
    /// Fold records into the hash (the benchmark can measure without it).
    public var hashing = true
    public var printer: ((String) -> Void)?
    public var ringCapacity = 40
    private var ring: [Record] = []
    private var ringNext = 0
    public private(set) var records: UInt64 = 0

    public init() {}

    func input(_ time: UInt64, _ host: String, _ i: Input, _: World) {
        if hashing {
            hash.put(time); hash.put(" "); hash.put(host); hash.put(" <- ")
            Canonical.input(i, &hash)
            hash.put("\n")
        }
        keep(Record(time: time, host: host, item: .input(i)))
    }

    func effect(_ time: UInt64, _ host: String, _ e: Effect, _: World) {
        if hashing {
            hash.put(time); hash.put(" "); hash.put(host); hash.put(" -> ")
            Canonical.effect(e, &hash)
            hash.put("\n")
        }
        keep(Record(time: time, host: host, item: .effect(e)))
    }

    func note(_ time: UInt64, _ host: String, _ text: String, _: World?) {
        if hashing {
            hash.put(time); hash.put(" "); hash.put(host); hash.put(" ** "); hash.put(text); hash.put("\n")
        }
        keep(Record(time: time, host: host, item: .note(text)))
    }

    public func note(_ time: UInt64, _ host: String, _ text: String) { note(time, host, text, nil) }

    private func keep(_ r: Record) {
        records &+= 1
        if let printer { printer(Trace.render(r)) }
        if ring.count < ringCapacity {
            ring.append(r)
        } else {
            ring[ringNext] = r
            ringNext = (ringNext + 1) % ringCapacity
        }
    }

    static func render(_ r: Record) -> String {
        var s = "[\(formatTime(r.time))] \(r.host) "
        switch r.item {
        case .input(let i): s += "<- "; Canonical.input(i, &s)
        case .effect(let e): s += "-> "; Canonical.effect(e, &s)
        case .note(let t): s += "** " + t
        }
        if s.count > 400 { s = String(s.prefix(400)) + " …" }
        return s
    }

    /// The most recent records, oldest first.
    public func lastLines(_ n: Int = 30) -> [String] {
        let ordered = Array(ring[ringNext...]) + Array(ring[..<ringNext])
        return ordered.suffix(n).map(Trace.render)
    }

    public var hashText: String { hex16(hash.value) }
}
