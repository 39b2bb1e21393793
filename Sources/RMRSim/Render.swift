import RMRCore

// Canonical text of inputs and effects. The same code writes into a String (the readable trace)
// or straight into the FNV-1a trace hash (no String is built on the hot path). Data payloads are
// shown as their length and digest. Nothing here iterates a Dictionary or Set.

public protocol TextSink {
    mutating func put(_ s: String)
    mutating func put(_ v: UInt64)
}

extension String: TextSink {
    public mutating func put(_ s: String) { append(s) }
    public mutating func put(_ v: UInt64) { append(String(v)) }
}

extension FNV1a64: TextSink {
    public mutating func put(_ s: String) { add(s) }
    /// Decimal digits, as the text would show them.
    public mutating func put(_ v: UInt64) {
        if v < 10 { add(byte: 48 &+ UInt8(v)); return }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // up to 20 digits, packed 8 bits each
        var n = v
        var count = 0
        withUnsafeMutableBytes(of: &digits) { raw in
            while n > 0 {
                raw[count] = 48 &+ UInt8(n % 10)
                n /= 10
                count += 1
            }
            var i = count - 1
            while i >= 0 {
                add(byte: raw[i])
                i -= 1
            }
        }
    }
}

public enum Canonical {
    static func data<S: TextSink>(_ d: [UInt8], _ s: inout S) {
        s.put("[")
        s.put(UInt64(d.count))
        s.put("B #")
        s.put(FNV1a64.digest(d) & 0xffff_ffff)
        s.put("]")
    }

    public static func input<S: TextSink>(_ input: Input, _ s: inout S) {
        switch input {
        case .admin(let cmd, let token, let probe):
            s.put("admin #"); s.put(token.raw); s.put(" "); s.put(String(describing: cmd))
            if let probe {
                s.put(" probe=")
                switch probe {
                case .missing: s.put("missing")
                case .present(let size, let md):
                    s.put("present "); s.put(size)
                    if let md { s.put(" md="); durable(md, &s) } else { s.put(" no-md") }
                case .unreadable(let size, let reason): s.put("unreadable "); s.put(size); s.put(" "); s.put(reason)
                }
            }
        case .received(let m, let from):
            s.put("recv "); message(m, &s); s.put(" from "); s.put(from)
        case .linkUp(let peer): s.put("link up "); s.put(peer)
        case .linkDown(let peer): s.put("link down "); s.put(peer)
        case .storeCompleted(let tag, let result):
            s.put("store done s"); s.put(tag.raw); s.put(" ")
            switch result {
            case .ok(let d): s.put("ok "); data(d, &s)
            case .failed(let e): s.put("failed "); s.put(e.description)
            }
        case .persistCompleted(let tag, let ok):
            s.put("persist done p"); s.put(tag.raw); s.put(ok ? " ok" : " failed")
        case .blockIO(let r):
            s.put("block IO b"); s.put(r.tag.raw); s.put(" "); s.put(opName(r.op)); s.put(" "); s.put(r.device)
            s.put(" off "); s.put(r.offsetBytes); s.put(" len "); s.put(r.lengthBytes)
            if r.op == .write { s.put(" "); data(r.data, &s) }
        case .timerFired: s.put("timer")
        }
    }

    static func opName(_ op: IOOperation) -> String {
        switch op {
        case .read: return "read"
        case .write: return "write"
        case .flush: return "flush"
        }
    }

    public static func message<S: TextSink>(_ m: Message, _ s: inout S) {
        switch m {
        case .request(let id, let pool, let req):
            s.put(req.name); s.put(" #"); s.put(id.raw); s.put(" "); s.put(pool)
            switch req {
            case .io(let r):
                s.put(" "); s.put(opName(r.op)); s.put(" off "); s.put(r.offsetBytes); s.put(" len "); s.put(r.lengthBytes)
                s.put(" slot "); s.put(UInt64(r.slot)); s.put(" mv "); s.put(r.mapVersion.raw)
                s.put(" target "); s.put(UInt64(r.target))
                if !r.failedMembers.isEmpty {
                    s.put(" failed")
                    for f in r.failedMembers { s.put(" "); s.put(UInt64(f)) }
                }
                if r.op == .write { s.put(" "); data(r.data, &s) }
            case .mapBuffer(let b):
                s.put(" member "); s.put(UInt64(b.member)); s.put(" runs "); s.put(UInt64(b.runs.count))
                for r in b.runs { s.put(" "); s.put(r.start); s.put("+"); s.put(r.count) }
            default:
                s.put(" "); s.put(String(describing: req))
            }
        case .response(let id, let pool, let resp):
            s.put("response #"); s.put(id.raw); s.put(" "); s.put(pool); s.put(" ")
            switch resp {
            case .ok: s.put("ok")
            case .failed(let e): s.put("failed "); s.put(e.description)
            case .data(let d): s.put("data "); data(d, &s)
            default: s.put(String(describing: resp))
            }
        }
    }

    public static func durable<S: TextSink>(_ d: DurablePoolState, _ s: inout S) {
        s.put("{"); s.put(d.poolName); s.put(" "); s.put(d.poolUUID.description)
        s.put(" member "); s.put(UInt64(d.member)); s.put(" chunk "); s.put(d.chunkBytes)
        s.put(" mapped "); s.put(d.mappedSectors); s.put(" dev "); s.put(d.deviceSectors)
        s.put(d.storeMapped ? " MAPPED" : " unmapped"); s.put(" mv "); s.put(d.mapVersion.raw)
        s.put(" members"); for m in d.members { s.put(" "); s.put(UInt64(m)) }
        for (i, m) in d.mapMembers.enumerated() {
            s.put(" map "); s.put(UInt64(m)); s.put(":")
            for r in d.maps[i].runs() { s.put(" "); s.put(r.start); s.put("+"); s.put(r.count) }
        }
        s.put(" intents "); s.put(UInt64(d.writeIntents.count))
        s.put(d.markedCreate ? " marked-create}" : "}")
    }

    public static func effect<S: TextSink>(_ effect: Effect, _ s: inout S) {
        switch effect {
        case .send(let m, let to): s.put("send "); message(m, &s); s.put(" to "); s.put(to)
        case .connect(let peer): s.put("connect "); s.put(peer)
        case .disconnect(let peer): s.put("disconnect "); s.put(peer)
        case .submitStore(let tag, let device, let op):
            s.put("store s"); s.put(tag.raw); s.put(" "); s.put(device); s.put(" ")
            switch op {
            case .read(let off, let len): s.put("read off "); s.put(off); s.put(" len "); s.put(len)
            case .write(let off, let d): s.put("write off "); s.put(off); s.put(" "); data(d, &s)
            case .flush: s.put("flush")
            }
        case .persist(let tag, let device, let record):
            s.put("persist p"); s.put(tag.raw); s.put(" "); s.put(device); s.put(" "); s.put(String(describing: record.updates))
        case .formatStore(let tag, let device, let state):
            s.put("format p"); s.put(tag.raw); s.put(" "); s.put(device); s.put(" "); durable(state, &s)
        case .wipeStore(let tag, let device):
            s.put("wipe p"); s.put(tag.raw); s.put(" "); s.put(device)
        case .completeBlockIO(let tag, let result):
            s.put("complete b"); s.put(tag.raw); s.put(" ")
            switch result {
            case .ok(let d): s.put("ok"); if !d.isEmpty { s.put(" "); data(d, &s) }
            case .failed(let e): s.put("failed "); s.put(e.description)
            }
        case .completeAdmin(let token, let result):
            s.put("admin done #"); s.put(token.raw); s.put(" ")
            switch result {
            case .ok: s.put("ok")
            case .failed(let e): s.put("failed "); s.put(e.description)
            }
        case .transitioned(let t): s.put("transition "); s.put(t.description)
        case .rejected(let r): s.put("REJECTED "); s.put(r.description)
        case .ignored(let reason): s.put("ignored "); s.put(String(describing: reason))
        case .probe(let p): s.put("probe "); s.put(p.rawValue)
        }
    }

    public static func text(_ i: Input) -> String { var s = ""; input(i, &s); return s }
    public static func text(_ e: Effect) -> String { var s = ""; effect(e, &s); return s }
}

/// `12.345678s`
public func formatTime(_ nanos: UInt64) -> String {
    let secs = nanos / 1_000_000_000
    let micros = (nanos / 1_000) % 1_000_000
    let m = String(micros)
    return "\(secs).\(String(repeating: "0", count: 6 - m.count))\(m)s"
}

/// `10s`, `250ms`, `40us`, `7ns`, also `1.5s`: nanoseconds, nil if malformed.
public func parseDuration(_ text: String) -> UInt64? {
    let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
    for (suffix, scale) in units where text.hasSuffix(suffix) {
        let number = String(text.dropLast(suffix.count))
        if let v = UInt64(number) { return v &* UInt64(scale) }
        if let d = Double(number), d >= 0 { return UInt64(d * scale) }
        return nil
    }
    return nil
}

/// `4k`, `25M`, `1G`, `512`: bytes.
public func parseSize(_ text: String) -> UInt64? {
    let lower = text.lowercased()
    let units: [(String, UInt64)] = [("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
    for (suffix, scale) in units where lower.hasSuffix(suffix) {
        guard let v = UInt64(lower.dropLast(suffix.count)) else { return nil }
        return v * scale
    }
    return UInt64(lower)
}

/// A message for the person who wrote a scenario or a command line.
public struct SimError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
