// Fuzzer profiles (`Simulations/profiles/*.profile`): `key = value` lines, `#` comments.
// Ranges are `low..high` (integers, inclusive); lists are `a,b,c` (one is drawn per seed).
// Durations take the scenario language's units (`600s`, `250ms`). See Docs/fuzzing.md.

public struct IntRange: Sendable, CustomStringConvertible {
    public var low: UInt64
    public var high: UInt64
    public init(_ low: UInt64, _ high: UInt64) { self.low = low; self.high = min(max(low, high), UInt64.max) }
    public func draw(_ r: inout WorldRandom) -> UInt64 { r.inRange(low, high) }
    public var description: String { low == high ? "\(low)" : "\(low)..\(high)" }
}

/// Every fault kind the fuzzer can enable for a seed (swarm testing: a random subset per seed).
public enum FaultKind: String, Sendable, CaseIterable {
    case linkFlap = "link"            // link down A B ... link up A B
    case partition                    // partition A B ... heal
    case oneWay = "oneway"            // partition A -> B ... heal
    case latency                      // link A B latency X ... back to default
    case crashStorage = "crash_storage"
    case crashClient = "crash_client"
    case diskError = "disk_error"     // disk error H D for T, then remove_store + add_store mode=add
    case metadataLands = "metadata_lands"  // at a crash a prefix of pending metadata lands
    case maintenance                  // enable 0 ... enable 1
    case syncStopStart = "sync"       // sync stop ... sync start
    case disassemble                  // del_sess mode=disassemble ... add_sess mode=assemble
    case removeStore = "remove_store" // remove_store ... add_store mode=add
    case replaceDisk = "replace_disk" // remove_store, new empty disk, add_store mode=replace
    // Knobs: drawn from their own random stream (so adding them left every other seed's
    // schedule as it was), rendered as `set` lines or extra steps.
    case inFlight = "in_flight"       // at a crash, each message on the wire lands or is lost
    case intentLog = "intent_log"     // a small write-intent log (eviction and trimming)
    case diskTiming = "disk_timing"   // random data and metadata latencies (either may be faster)
    case crashDuringSync = "crash_during_sync" // a restarted storage node crashes again mid chunk-sync write
    case crashMidWrite = "crash_mid_write"     // a crash lands inside the host's next write
    case crashPair = "crash_pair"              // a client crash, then a storage crash while it is down

    /// Faults the harness schedules as events (the others modify them).
    public var isEvent: Bool { self != .metadataLands && !isKnob }
    /// Drawn from the seed's knob stream rather than its fault stream.
    public var isKnob: Bool { [.inFlight, .intentLog, .diskTiming, .crashDuringSync, .crashMidWrite, .crashPair].contains(self) }
    public var isNetwork: Bool { [.linkFlap, .partition, .oneWay, .latency].contains(self) }
}

public struct FuzzProfile: Sendable {
    public var name = "default"
    /// Simulated length of the fault/workload schedule.
    public var scheduleNanos: UInt64 = 600_000_000_000
    public var replicationFactor = IntRange(1, 4)
    public var chunkKiB: [UInt64] = [128, 256, 512, 1024]
    public var chunks = IntRange(32, 160)
    public var queueDepth = IntRange(4, 64)
    public var iodepth = IntRange(1, 16)
    public var rateIOPS = IntRange(100, 400)
    public var blockKiB: [UInt64] = [4, 8, 16, 64]
    public var patterns: [String] = ["randwrite", "randrw", "write"]
    /// Share of the schedule with the workload running (idle phases between).
    public var dutyPercent = IntRange(5, 30)
    /// Workload phase length.
    public var phaseSeconds = IntRange(2, 20)
    /// Kinds the profile allows; each seed enables each with `enablePercent`.
    public var kinds: [FaultKind] = FaultKind.allCases
    public var enablePercent: UInt64 = 50
    /// Events per enabled kind over the schedule.
    public var eventsPerKind = IntRange(1, 8)
    /// How long a fault lasts (seconds).
    public var faultSeconds = IntRange(1, 30)
    /// Operator waits in the schedule, and the final liveness bound after healing.
    public var waitNanos: UInt64 = 180_000_000_000
    public var livenessNanos: UInt64 = 600_000_000_000
    /// Share of seeds run twice (determinism check).
    public var determinismPercent: UInt64 = 5
    /// Unlimited faults, liveness skipped, safety checked.
    public var beyondBudget = false

    public init() {}

    public static func parse(_ text: String, name: String) -> Result<FuzzProfile, SimError> {
        var p = FuzzProfile()
        p.name = name
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if let hash = line.firstIndex(of: "#") { line = String(line[..<hash]) }
            line = trim(line)
            if line.isEmpty { continue }
            guard let eq = line.firstIndex(of: "=") else { return .failure(SimError("\(name):\(i + 1): expected key = value")) }
            let key = trim(String(line[..<eq])), value = trim(String(line[line.index(after: eq)...]))
            func range() throws(SimError) -> IntRange {
                var parts = [value]
                if let r = value.firstRange(of: "..") { parts = [String(value[..<r.lowerBound]), String(value[r.upperBound...])] }
                guard (1...2).contains(parts.count), let lo = UInt64(trim(parts[0])), let hi = UInt64(trim(parts.last!)), lo <= hi else {
                    throw SimError("\(name):\(i + 1): \(key): expected N or LOW..HIGH")
                }
                return IntRange(lo, hi)
            }
            func list() throws(SimError) -> [UInt64] {
                let l = value.split(separator: ",").compactMap { UInt64(trim(String($0))) }
                guard !l.isEmpty else { throw SimError("\(name):\(i + 1): \(key): expected a list of numbers") }
                return l
            }
            func duration() throws(SimError) -> UInt64 {
                guard let d = parseDuration(value) else { throw SimError("\(name):\(i + 1): \(key): expected a duration") }
                return d
            }
            do throws(SimError) {
                switch key {
                case "schedule": p.scheduleNanos = try duration()
                case "rf": p.replicationFactor = try range()
                case "chunk_kib": p.chunkKiB = try list()
                case "chunks": p.chunks = try range()
                case "queue_depth": p.queueDepth = try range()
                case "iodepth": p.iodepth = try range()
                case "rate_iops": p.rateIOPS = try range()
                case "bs_kib": p.blockKiB = try list()
                case "rw": p.patterns = value.split(separator: ",").map { trim(String($0)) }
                case "duty_percent": p.dutyPercent = try range()
                case "phase_seconds": p.phaseSeconds = try range()
                case "faults":
                    var ks: [FaultKind] = []
                    for w in value.split(separator: ",") {
                        let n = trim(String(w))
                        if n == "all" { ks = FaultKind.allCases; continue }
                        guard let k = FaultKind(rawValue: n) else { throw SimError("\(name):\(i + 1): unknown fault kind '\(n)'") }
                        ks.append(k)
                    }
                    p.kinds = ks
                case "enable_percent": p.enablePercent = try range().high
                case "events_per_kind": p.eventsPerKind = try range()
                case "fault_seconds": p.faultSeconds = try range()
                case "wait": p.waitNanos = try duration()
                case "liveness": p.livenessNanos = try duration()
                case "determinism_percent": p.determinismPercent = try range().high
                case "beyond_budget": p.beyondBudget = value == "1" || value == "true" || value == "yes"
                default: throw SimError("\(name):\(i + 1): unknown key '\(key)'")
                }
            } catch { return .failure(error) }
        }
        return .success(p)
    }

    public static func load(nameOrPath: String, directory: String = "Simulations/profiles") -> Result<FuzzProfile, SimError> {
        let path = nameOrPath.contains("/") || nameOrPath.hasSuffix(".profile") ? nameOrPath : "\(directory)/\(nameOrPath).profile"
        var base = path
        if let s = base.lastIndex(of: "/") { base = String(base[base.index(after: s)...]) }
        if base.hasSuffix(".profile") { base = String(base.dropLast(8)) }
        do { return parse(try readTextFile(path), name: base) } catch { return .failure(SimError("cannot read profile \(path): \(error.message)")) }
    }
}
