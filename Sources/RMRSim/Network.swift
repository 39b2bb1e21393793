// Links between hosts: per-direction up/down state, latency (base + uniform jitter), optional
// bandwidth, and FIFO delivery per direction (a message never overtakes an earlier one on the
// same direction, whatever the jitter drew).

public struct LinkParameters: Sendable, Equatable {
    public var latencyNanos: UInt64
    public var jitterNanos: UInt64
    /// Bytes per second; nil = unlimited.
    public var bandwidthBytesPerSecond: UInt64?
    public init(latencyNanos: UInt64 = 50_000, jitterNanos: UInt64 = 20_000, bandwidthBytesPerSecond: UInt64? = nil) {
        self.latencyNanos = latencyNanos
        self.jitterNanos = jitterNanos
        self.bandwidthBytesPerSecond = bandwidthBytesPerSecond
    }
}

public struct Network: Sendable {
    public static let maxHosts = 64
    public var defaults = LinkParameters()
    private var up: [Bool]
    private var overrides: [LinkParameters?]
    private var lastArrival: [UInt64]
    private var busyUntil: [UInt64]
    private var random: WorldRandom

    public init(seed: UInt64) {
        let n = Network.maxHosts * Network.maxHosts
        up = Array(repeating: true, count: n)
        overrides = Array(repeating: nil, count: n)
        lastArrival = Array(repeating: 0, count: n)
        busyUntil = Array(repeating: 0, count: n)
        random = WorldRandom(seed: seed)
    }

    @inline(__always) private func index(_ from: Int, _ to: Int) -> Int { from * Network.maxHosts + to }

    public func isUp(from: Int, to: Int) -> Bool { up[index(from, to)] }
    /// Both directions up.
    public func isConnected(_ a: Int, _ b: Int) -> Bool { up[index(a, b)] && up[index(b, a)] }

    public mutating func setUp(from: Int, to: Int, _ value: Bool) { up[index(from, to)] = value }

    public mutating func setAllUp() {
        for i in 0..<up.count { up[i] = true }
    }

    public func parameters(_ a: Int, _ b: Int) -> LinkParameters {
        overrides[index(min(a, b), max(a, b))] ?? defaults
    }

    public mutating func setParameters(_ a: Int, _ b: Int, _ p: LinkParameters) {
        overrides[index(min(a, b), max(a, b))] = p
    }

    /// When a message of `bytes` sent now from `from` to `to` arrives; nil if the direction is down.
    public mutating func arrivalTime(from: Int, to: Int, bytes: Int, now: UInt64) -> UInt64? {
        let i = index(from, to)
        guard up[i] else { return nil }
        let p = overrides[index(min(from, to), max(from, to))] ?? defaults
        var start = now
        if let bw = p.bandwidthBytesPerSecond, bw > 0 {
            start = max(now, busyUntil[i])
            let tx = UInt64(bytes) &* 1_000_000_000 / bw
            busyUntil[i] = start + tx
            start += tx
        }
        let t = max(start + p.latencyNanos + random.below(p.jitterNanos + 1), lastArrival[i])
        lastArrival[i] = t
        return t
    }
}
