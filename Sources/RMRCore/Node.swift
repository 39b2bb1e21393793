// A host's RMR instance: the client pools (IO pools on a compute client, sync pools on a storage
// node), the server pools, their stores and the brmr-client devices, behind one entry point.
//
// How a driver uses a Node (the same in the simulator and the daemon):
//   1. Turn each happening into an `Input` stamped with the current time and call
//      `apply(_:at:)`. Times passed in must never go backwards.
//   2. Perform the returned effects in order. Completions of effects (store IO, persists,
//      connections, messages from peers) come back later as new inputs.
//   3. After every `apply`, read `nextDeadline`; when that time is reached call
//      `apply(.timerFired, at:)`. An early or repeated call is harmless.
//   Getters (`serverPool(_:)`, `clientPool(_:)`, `store(forPool:)`, `device(_:)`) never change
//   state; the control tree renders from them.

public struct NodeOptions: Sendable, Hashable {
    /// Run whole-map invariant scans after each input (the simulator turns this on).
    public var verify: Bool
    public var queueDepth: Int
    public var syncQueueDepth: Int
    public init(verify: Bool = false, queueDepth: Int = Limits.defaultQueueDepth,
                syncQueueDepth: Int = Limits.defaultSyncQueueDepth) {
        self.verify = verify
        self.queueDepth = queueDepth
        self.syncQueueDepth = syncQueueDepth
    }
}

public struct Node: Sendable {
    public let host: String
    public let address: HostAddress
    public internal(set) var options: NodeOptions
    var rng: SplitMix64
    var lastNow: Instant = .zero
    var nextSerial: UInt64 = 1

    public init(host: String, address: HostAddress, seed: UInt64, options: NodeOptions = NodeOptions()) {
        self.host = host
        self.address = address
        self.options = options
        self.rng = SplitMix64(seed: seed)
    }

    public mutating func apply(_ input: Input, at now: Instant) -> [Effect] {
        precondition(now >= lastNow, "time went backwards: \(now) < \(lastNow)")
        lastNow = now
        return []
    }

    public var nextDeadline: Instant? { nil }
}

// MARK: - Getters (read-only; the control tree renders from these)
extension Node {
    public var serverPoolNames: [String] { [] }
    public var clientPoolNames: [String] { [] }
    public var deviceNames: [String] { [] }
    public func serverPool(_ name: String) -> ServerPoolView? { nil }
    public func clientPool(_ name: String) -> ClientPoolView? { nil }
    public func store(forPool name: String) -> StoreView? { nil }
    public func device(_ name: String) -> DeviceView? { nil }
}
