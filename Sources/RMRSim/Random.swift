import RMRCore

// The world's randomness. One seed per run; every subsystem (network, disks, crashes, workloads,
// node seeds) draws from its own generator derived from the world seed and a label, so adding a
// draw in one subsystem does not shift the numbers another subsystem sees.

public struct WorldRandom: Sendable {
    public private(set) var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    /// A seed for a named subsystem, independent of how much this generator was used.
    public static func subSeed(_ seed: UInt64, _ label: String) -> UInt64 {
        var mix = SplitMix64(seed: seed ^ FNV1a64.hash(label))
        return mix.next()
    }

    public mutating func next() -> UInt64 { generator.next() }

    /// Uniform in `0..<bound` (0 when `bound` is 0).
    public mutating func below(_ bound: UInt64) -> UInt64 {
        bound == 0 ? 0 : generator.next(below: bound)
    }

    /// Uniform in `low...high`.
    public mutating func inRange(_ low: UInt64, _ high: UInt64) -> UInt64 {
        high <= low ? low : low + below(high - low + 1)
    }

    /// True with probability `percent`/100.
    public mutating func chance(percent: UInt64) -> Bool { below(100) < percent }
}

/// FNV-1a, 64 bit: the trace hash and the data digests.
public struct FNV1a64: Sendable {
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    public static let prime: UInt64 = 0x100_0000_01b3
    public private(set) var value: UInt64 = FNV1a64.offsetBasis

    public init() {}

    @inline(__always)
    public mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* FNV1a64.prime
    }

    public mutating func add(_ text: String) {
        var v = value
        for b in text.utf8 { v = (v ^ UInt64(b)) &* FNV1a64.prime }
        value = v
    }

    public mutating func add(_ word: UInt64) {
        var v = value
        var w = word
        for _ in 0..<8 {
            v = (v ^ (w & 0xff)) &* FNV1a64.prime
            w >>= 8
        }
        value = v
    }

    public static func hash(_ text: String) -> UInt64 {
        var h = FNV1a64()
        h.add(text)
        return h.value
    }

    /// A cheap digest of a data buffer: its length and the first 16 bytes of every 512-byte
    /// sector (where the workload writes block and version) plus the last byte.
    public static func digest(_ data: [UInt8]) -> UInt64 {
        var h = FNV1a64()
        h.add(UInt64(data.count))
        data.withUnsafeBufferPointer { buf in
            var v = h.value
            var i = 0
            while i < buf.count {
                let end = min(i + 16, buf.count)
                var j = i
                while j < end { v = (v ^ UInt64(buf[j])) &* FNV1a64.prime; j += 1 }
                i += 512
            }
            if let last = buf.last { v = (v ^ UInt64(last)) &* FNV1a64.prime }
            h = FNV1a64(value: v)
        }
        return h.value
    }

    init(value: UInt64) { self.value = value }
}

/// Renders a 64-bit value as 16 hex digits.
public func hex16(_ v: UInt64) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 16 - s.count)) + s
}
