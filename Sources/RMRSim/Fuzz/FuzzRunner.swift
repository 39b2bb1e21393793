import RMRCore

// Runs one fuzz scenario (generated or a regression file) in-process with the fuzzer's
// checkers on top of the scenario's own steps:
//   (a) per-block register model  — the workload's DataModel, every read (World).
//   (b) durability                — `assert no data lost` + `assert legs identical` after healing.
//   (c) no client IO on a chunk dirty for the serving node itself — effect hook below.
//   (d) state-machine legality    — the core's preconditions (the campaign runs each seed in a
//                                    child process, so a trap is a reported failure).
//   (e) liveness                  — the rendered finale waits for NORMAL legs and clean maps;
//                                    here: the client's own maps must drain too.

/// Options carried in a scenario's `# rmr-fuzz:` header line.
public struct FuzzHeader: Sendable {
    public var seed: UInt64 = 0
    public var profile = "default"
    public var worldSeed: UInt64 = 1
    public var queueDepth: Int = Limits.defaultQueueDepth
    public var metadataLands = false
    public var beyondBudget = false
    /// The storage nodes' chunk size (NodeOptions.serverChunkBytes, rmr-server's module parameter).
    public var chunkBytes: UInt64 = Limits.defaultChunkBytes

    public static func parse(_ text: String) -> FuzzHeader? {
        for raw in text.split(separator: "\n").prefix(5) {
            let line = String(raw)
            guard line.hasPrefix("# rmr-fuzz:") else { continue }
            var h = FuzzHeader()
            for w in line.dropFirst(11).split(separator: " ") {
                let kv = w.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { continue }
                switch kv[0] {
                case "seed": h.seed = UInt64(kv[1]) ?? 0
                case "profile": h.profile = kv[1]
                case "world-seed": h.worldSeed = UInt64(kv[1]) ?? 1
                case "queue-depth": h.queueDepth = Int(kv[1]) ?? Limits.defaultQueueDepth
                case "metadata-lands": h.metadataLands = kv[1] == "1"
                case "beyond-budget": h.beyondBudget = kv[1] == "1"
                case "chunk-bytes": h.chunkBytes = UInt64(kv[1]) ?? Limits.defaultChunkBytes
                default: break
                }
            }
            return h
        }
        return nil
    }
}

public struct FuzzRunResult: Sendable {
    public var passed: Bool
    /// Which checker failed: register, durability, dirty-serve, liveness, admin, parse, other.
    public var checker: String
    public var failure: String
    public var traceHash: String
    public var virtualNanos: UInt64
    public var coreEvents: UInt64
    public var probes: [String: Int]
    public var steps: Int
    public var writesAcked: UInt64

    /// One line for the campaign protocol (child -> parent).
    public var protocolLine: String {
        let pr = probes.keys.sorted().map { "\($0):\(probes[$0]!)" }.joined(separator: ",")
        return "RESULT \(passed ? "pass" : "fail") checker=\(checker) hash=\(traceHash) vnanos=\(virtualNanos) events=\(coreEvents) acked=\(writesAcked) steps=\(steps) probes=\(pr.isEmpty ? "-" : pr)"
    }
}

/// World-level coverage probes (counted by the fuzzer, next to the core's `CoverageProbe`s).
public enum WorldProbe: String, CaseIterable {
    case crashWithPendingDataWrite, crashWithPendingMetadata, heartbeatLoss
    case storageCrashWhileClientDown, legFailedThenNormal, serverNoIOThenNormal
    case syncThreadStoppedByFault, dirtyChunkWrittenBySync, clientIOOnDirtyChunkWaited
    case crashDuringChunkSyncWrite, crashDuringWrite, beyondBudgetStepFailed
}

public final class FuzzRunner {
    let text: String
    let name: String
    public var tracePrinter: ((String) -> Void)?

    public init(text: String, name: String) {
        self.text = text
        self.name = name
    }

    /// Keep the last trace records from the start (see `RunOptions.keepTraceTail`); without
    /// them a failed run is replayed with them kept, for its report.
    public var keepTraceTail = false

    public func run() -> FuzzRunResult {
        let keep = keepTraceTail || tracePrinter != nil
        let first = runOnce(keepTraceTail: keep)
        guard !first.passed, !keep, first.checker != "parse" else { return first }
        // Same text, same run: the replay fails the same way, now with the last events.
        let replay = runOnce(keepTraceTail: true)
        if !replay.passed && replay.traceHash == first.traceHash && replay.checker == first.checker { return replay }
        var r = first
        r.failure += "\n  NONDETERMINISM: the replay with trace records kept "
            + (replay.passed ? "passed" : "failed (\(replay.checker)) with trace hash \(replay.traceHash), not \(first.traceHash)")
        return r
    }

    func runOnce(keepTraceTail: Bool) -> FuzzRunResult {
        let header = FuzzHeader.parse(text) ?? FuzzHeader()
        let scenario: Scenario
        switch Scenario.parse(text: text, file: name) {
        case .success(let s): scenario = s
        case .failure(let e):
            return FuzzRunResult(passed: false, checker: "parse", failure: e.description, traceHash: "-", virtualNanos: 0,
                                 coreEvents: 0, probes: [:], steps: 0, writesAcked: 0)
        }
        var options = RunOptions(seed: header.worldSeed)
        options.config.nodeOptions = NodeOptions(verify: true, queueDepth: header.queueDepth, serverChunkBytes: header.chunkBytes)
        options.trace = tracePrinter
        options.keepTraceTail = keepTraceTail
        let runner = ScenarioRunner(scenario: scenario, options: options)
        let world = runner.world
        // Rejections that are expected under faults (a race the core reports, not a bug).
        // Races the core reports as refusals and then retries; the liveness checker judges
        // whether the retry converges (Docs/fuzzing.md).
        world.expectedRejections.append(contentsOf: ["IO: pool is no_io", "no normal sync session to member", "older than own map version"])
        var probes: [String: Int] = [:]
        var dirtyServe: String?
        world.effectHook = { world, h, effect in
            switch effect {
            case .submitStore(_, let device, let op):
                if let v = FuzzRunner.checkDirtyServe(world, h, device, op, &probes), dirtyServe == nil {
                    dirtyServe = v
                    world.fail("checker (c) dirty-serve: \(v)")
                }
            case .transitioned(let t):
                if case .leg = t.machine, t.from == "reconnecting", t.to == "normal" { probes[WorldProbe.legFailedThenNormal.rawValue, default: 0] += 1 }
                if case .serverPool = t.machine, t.from == "no_io", t.to == "normal" { probes[WorldProbe.serverNoIOThenNormal.rawValue, default: 0] += 1 }
                if case .syncThread = t.machine, t.to == "stopped", !t.cause.contains("sync stop") {
                    probes[WorldProbe.syncThreadStoppedByFault.rawValue, default: 0] += 1
                }
            default: break
            }
        }
        var ran = 0
        for step in scenario.steps {
            ran += 1
            if case .crash(let h) = step.kind, let host = world.host(h), host.alive {
                if host.disks.contains(where: { $0.pendingWriteCount > 0 }) { probes[WorldProbe.crashWithPendingDataWrite.rawValue, default: 0] += 1 }
                if host.disks.contains(where: { $0.pendingMetadataCount > 0 }) { probes[WorldProbe.crashWithPendingMetadata.rawValue, default: 0] += 1 }
                if host.role == .storage, world.hosts.contains(where: { $0.role == .client && !$0.alive }) {
                    probes[WorldProbe.storageCrashWhileClientDown.rawValue, default: 0] += 1
                }
            }
            runner.execute(step)

            if header.metadataLands { for h in world.hosts { for d in h.disks { d.metadataPrefixLandsAtCrash = true } } }
            if runner.failure == nil, let f = world.failure { runner.fail(step, f.message) }
            // Beyond the budget the operator's steps may fail (a host down, a refusal, a wait
            // that cannot be met): only the safety checkers end the run.
            if header.beyondBudget, let f = runner.failure, !FuzzRunner.safetyCheckers.contains(FuzzRunner.classify(f)) {
                probes[WorldProbe.beyondBudgetStepFailed.rawValue, default: 0] += 1
                runner.failure = nil
                world.failure = nil
            }
            if runner.failure != nil { break }
        }
        // (e) the client's own copies of the maps drain too (MAP_CHECK, ≥5 s quiet).
        if runner.failure == nil && !header.beyondBudget, let client = world.hosts.first(where: { $0.role == .client }) {
            var last = ""
            let ok = runner.poll(within: 60_000_000_000) {
                guard let node = client.node, let pool = node.clientPool(FuzzPlan.pool) else { last = "client down or no pool"; return false }
                var dirty: [String] = []
                for m in pool.members { if let map = node.clientMap(FuzzPlan.pool, member: m), !map.isEmpty { dirty.append("member \(m): \(map.dirtyCount)") } }
                for l in pool.legs where l.state != .normal { dirty.append("\(l.session) \(l.state)") }
                last = dirty.joined(separator: ", ")
                return dirty.isEmpty
            }
            if !ok && runner.failure == nil {
                runner.failure = "liveness: the client's maps/legs did not converge within 60s after healing: \(last)"
            }
        }
        for (p, n) in world.probes { probes[p.rawValue, default: 0] += n }
        if world.crashesDuringSyncWrite > 0 { probes[WorldProbe.crashDuringChunkSyncWrite.rawValue, default: 0] += world.crashesDuringSyncWrite }
        if world.crashesDuringWrite > 0 { probes[WorldProbe.crashDuringWrite.rawValue, default: 0] += world.crashesDuringWrite }
        var acked: UInt64 = 0
        for key in world.models.keys.sorted() { acked += world.models[key]!.writesAcked }
        let failure = runner.failure ?? ""
        return FuzzRunResult(passed: runner.failure == nil, checker: FuzzRunner.classify(failure), failure: failure,
                             traceHash: world.trace.hashText, virtualNanos: world.now, coreEvents: world.coreEvents,
                             probes: probes, steps: ran, writesAcked: acked)
    }

    /// What `--beyond-budget` still fails on: wrong data, serving a dirty chunk, a node stuck at
    /// one instant (and, outside this list, a trapped precondition).
    static let safetyCheckers: Set<String> = ["register", "durability", "dirty-serve", "livelock"]

    static func classify(_ f: String) -> String {
        if f.isEmpty { return "none" }
        if f.contains("dirty-serve") { return "dirty-serve" }
        if f.contains("data violation") { return f.contains("assert no data lost") ? "durability" : "register" }
        if f.contains("legs differ") { return "durability" }
        if f.contains("unexpected rejection") { return "rejection" }
        if f.contains("livelock") { return "livelock" }
        if f.contains("liveness") || f.contains("condition not reached") || f.contains("maps still dirty") || f.contains("did not finish") { return "liveness" }
        if f.contains("the write failed") || f.contains("the write did not complete") { return "admin" }
        return "other"
    }

    /// Checker (c): a store read or write on behalf of client IO must find the chunk clean in the
    /// node's own map. The only store IO allowed on a chunk dirty for the node is the chunk
    /// sync's write of a whole chunk it holds locked.
    static func checkDirtyServe(_ world: World, _ h: Int, _ device: String, _ op: StoreOperation, _ probes: inout [String: Int]) -> String? {
        guard let node = world.hosts[h].node else { return nil }
        for pool in node.serverPoolNames {
            guard let st = node.store(forPool: pool), st.device == device, let view = node.serverPool(pool),
                  let own = view.maps.first, own.member == view.member, own.map.chunkCount > 0 else { continue }
            let chunkBytes = max(1, (st.mappedSectors * 512 + own.map.chunkCount - 1) / own.map.chunkCount).roundedUpToPowerOfTwo
            let (offset, length, isWrite): (UInt64, UInt64, Bool)
            switch op {
            case .read(let o, let l): (offset, length, isWrite) = (o, l, false)
            case .write(let o, let d): (offset, length, isWrite) = (o, UInt64(d.count), true)
            case .flush: return nil
            }
            guard length > 0 else { return nil }
            let first = offset / chunkBytes, last = (offset + length - 1) / chunkBytes
            for c in first...last where c < own.map.chunkCount && own.map.isDirty(c) {
                let wholeChunk = offset == c * chunkBytes && length == chunkBytes
                if isWrite && wholeChunk && node.isChunkLocked(pool: pool, chunk: c) {
                    probes[WorldProbe.dirtyChunkWrittenBySync.rawValue, default: 0] += 1
                    continue
                }
                return "\(world.hosts[h].name) \(isWrite ? "writes" : "reads") chunk \(c) of \(pool) (offset \(offset), \(length) bytes) while the chunk is dirty for itself (member \(view.member))\(isWrite ? (node.isChunkLocked(pool: pool, chunk: c) ? " (locked, partial write)" : " (not locked)") : "")"
            }
        }
        return nil
    }
}

extension UInt64 {
    var roundedUpToPowerOfTwo: UInt64 {
        var p: UInt64 = 1
        while p < self { p <<= 1 }
        return p
    }
}
