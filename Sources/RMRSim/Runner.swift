import RMRCore
import RMRControl
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Runs a parsed scenario against a fresh world: admin steps go through the control tree into
// the nodes, world verbs change the world, waits advance virtual time.

public struct RunOptions {
    public var seed: UInt64 = 1
    /// Prints the admin's commands and their outputs as a terminal transcript.
    public var transcript: ((String) -> Void)?
    /// Prints every trace record.
    public var trace: ((String) -> Void)?
    /// Writes the timeline SVG here at the end of the run.
    public var timelinePath: String?
    public var hashing = true
    /// Keep the last trace records in memory for failure reports. Off by default: holding
    /// them costs about a tenth of the run time, and a run is deterministic, so a failed run
    /// is replayed from the start with the records kept (`run()` does this; the replay must
    /// fail the same way, with the same trace hash, or the report says the run is
    /// nondeterministic). On when `trace` prints every record anyway.
    public var keepTraceTail = false
    public var adminTimeoutNanos: UInt64 = 60_000_000_000
    public var config = WorldConfig()
    public init(seed: UInt64 = 1) { self.seed = seed }
}

public struct RunResult: Sendable {
    public var name: String
    public var passed: Bool
    public var failure: String?
    public var traceHash: String
    public var virtualNanos: UInt64
    public var coreEvents: UInt64
    public var stepsRun: Int
    public var writesAcknowledged: UInt64
    public var sectorsVerified: UInt64
}

public final class ScenarioRunner {
    public let scenario: Scenario
    public let options: RunOptions
    public let world: World
    var expectError: Errno?
    var workloadsByName: [String: Workload] = [:]
    var failure: String?
    var verifiedSectors: UInt64 = 0

    public init(scenario: Scenario, options: RunOptions) {
        self.scenario = scenario
        self.options = options
        world = World(seed: options.seed, config: options.config)
        world.trace.hashing = options.hashing
        world.trace.printer = options.trace
        if !options.keepTraceTail && options.trace == nil { world.trace.ringCapacity = 0 }
        if options.timelinePath != nil { world.timeline = TimelineRecorder() }
    }

    public func run() -> RunResult {
        var ran = 0
        for step in scenario.steps {
            ran += 1
            execute(step)
            if failure == nil, let f = world.failure { fail(step, f.message) }
            if failure != nil { break }
        }
        if let path = options.timelinePath, let tl = world.timeline {
            do { try writeTextFile(path, tl.svg(world: world, title: "\(scenario.name) seed \(options.seed)")) } catch {
                failure = (failure.map { $0 + "\n" } ?? "") + error.message
            }
        }
        if failure != nil { replayForTraceTail() }
        var acked: UInt64 = 0
        for key in world.models.keys.sorted() { acked += world.models[key]!.writesAcked }
        return RunResult(name: scenario.name, passed: failure == nil, failure: failure, traceHash: world.trace.hashText,
                         virtualNanos: world.now, coreEvents: world.coreEvents, stepsRun: ran,
                         writesAcknowledged: acked, sectorsVerified: verifiedSectors)
    }

    // MARK: - Reporting

    func fail(_ step: Step, _ message: String, expected: String? = nil, actual: String? = nil) {
        var s = "\(step.location): \(step.text)\n  \(message)"
        if let expected { s += "\n  expected: \(expected)" }
        if let actual { s += "\n  actual:   \(actual)" }
        s += "\n  at virtual time \(formatTime(world.now)); last events:"
        for l in world.trace.lastLines(30) { s += "\n    " + l }
        failure = s
    }

    /// A failed run without kept trace records: runs the scenario again from the start with
    /// them kept and takes its failure report (the last events before the failure). Same
    /// scenario, same seed, same run: a replay that passes, or fails with another trace hash,
    /// is reported as nondeterminism.
    func replayForTraceTail() {
        guard world.trace.ringCapacity == 0, let original = failure else { return }
        var o = options
        o.keepTraceTail = true
        o.transcript = nil
        o.timelinePath = nil
        let replay = ScenarioRunner(scenario: scenario, options: o)
        let r = replay.run()
        if let f = r.failure, r.traceHash == world.trace.hashText {
            failure = f
        } else {
            failure = original + "\n  NONDETERMINISM: the replay with trace records kept "
                + (r.failure == nil ? "passed" : "failed with trace hash \(r.traceHash), not \(world.trace.hashText)")
        }
    }

    func say(_ text: String) { options.transcript?(text) }
    func sayWorld(_ step: Step) { say("# [\(formatTime(world.now))] \(step.text)") }

    // MARK: - Steps

    func execute(_ step: Step) {
        switch step.kind {
        case .host(let name, let role, let address):
            world.addHost(name: name, role: role, address: address)
        case .disk(let host, let device, let sectors):
            world.addDisk(host: host, name: device, sectors: sectors)
        case .linkParameters(let a, let b, let p):
            if let a, let b { world.network.setParameters(world.host(a)!.index, world.host(b)!.index, p) } else { world.network.defaults = p }
        case .setCount(let key, let value):
            switch key {
            case "crash-in-flight": world.config.crashInFlightLandPercent = value
            case "write-intent-capacity": world.config.nodeOptions.writeIntentCapacity = Int(value)
            default: break
            }
        case .setOption(let key, let nanos):
            switch key {
            case "reconnect-delay": world.config.reconnectDelayNanos = nanos
            case "heartbeat-timeout": world.config.heartbeatTimeoutNanos = nanos
            case "connect-delay": world.config.connectDelayNanos = nanos
            case "metadata-latency": world.config.metadataLatencyNanos = nanos
            case "disk-latency":
                world.config.diskLatencyNanos = nanos
                for h in world.hosts { for d in h.disks { d.latencyNanos = nanos } }
            case "disk-jitter":
                world.config.diskJitterNanos = nanos
                for h in world.hosts { for d in h.disks { d.jitterNanos = nanos } }
            default: break
            }
        case .write(let host, let path, let value, let command):
            adminWrite(step, host: host, path: path, value: value, command: command)
        case .read(let host, let path, let expected):
            adminRead(step, host: host, path: path, expected: expected)
        case .shellNoop(let host, let command):
            say("\(host)$ \(command)")
        case .workloadStart(let spec):
            sayWorld(step)
            workloadsByName[spec.name] = world.startWorkload(spec)
        case .workloadStop(let name):
            sayWorld(step)
            world.stopWorkload(workloadsByName[name]!)
        case .workloadWait(let name, let within):
            sayWorld(step)
            let w = workloadsByName[name]!
            let done = world.run(until: world.now + within) { w.finished }
            if !done && world.failure == nil {
                fail(step, "workload \(name) did not finish", expected: "finished within \(formatTime(within))",
                     actual: "\(w.completed)/\(w.issued) completed, \(w.inflight) in flight")
            } else {
                say("#   \(name): \(w.writes) writes, \(w.reads) reads, \(w.errorSummary)")
            }
        case .linkDown(let a, let b):
            sayWorld(step)
            world.setLink(a, b, up: false)
        case .linkUp(let a, let b):
            sayWorld(step)
            world.setLink(a, b, up: true)
        case .partition(let a, let b, let oneWay):
            sayWorld(step)
            world.setLink(a, b, up: false, oneWay: oneWay)
        case .heal:
            sayWorld(step)
            world.heal()
        case .crash(let h):
            sayWorld(step)
            world.crash(h)
        case .crashDuring(let h, let trigger, let within):
            sayWorld(step)
            guard world.host(h)?.alive == true else { return fail(step, "\(h) is down") }
            world.armCrash(h, on: trigger, within: within)
        case .restart(let h):
            sayWorld(step)
            if world.host(h)?.alive == true {
                return fail(step, "restart \(h): \(h) is up" + (world.hasArmedCrash(h) ? " (its armed crash has not fired yet)" : ""))
            }
            world.restart(h)
        case .diskError(let host, let device, let count, let duration):
            sayWorld(step)
            guard let d = world.host(host)!.disk(named: device) else { return fail(step, "\(host) has no disk \(device)") }
            if let count { d.failNext += count }
            if let duration { d.failUntil = world.now + duration }
            world.trace.note(world.now, host, "inject IO errors on \(device): \(step.text)")
            world.timeline?.marker(world.now, host: host, "disk error", fault: true)
        case .replaceDisk(let host, let device, let sectors):
            sayWorld(step)
            guard let old = world.host(host)!.disk(named: device) else { return fail(step, "\(host) has no disk \(device)") }
            world.addDisk(host: host, name: old.name, sectors: sectors ?? old.sizeSectors)
            world.trace.note(world.now, host, "disk \(device) replaced by an empty one")
            world.timeline?.marker(world.now, host: host, "replace disk", fault: true)
        case .advance(let d):
            sayWorld(step)
            world.run(until: world.now + d)
        case .waitRead(let host, let path, let cmp, let value, let within):
            sayWorld(step)
            var last = ""
            let read = ControlTree.reader(path: path)
            let check: () -> Bool = { [world] in
                guard let node = world.host(host)!.node else { last = "(host is down)"; return false }
                switch read(node) {
                case .success(let text): last = ScenarioRunner.lines(text).joined(separator: " ")
                case .failure(let e): last = "error \(e.code): \(e.message)"
                }
                let m = globMatch(value, last)
                return cmp == .equal ? m : !m
            }
            if !poll(within: within, check) && world.failure == nil {
                fail(step, "condition not reached in time", expected: "\(cmp.rawValue) \(value) within \(formatTime(within))", actual: last)
            }
        case .waitMapsClean(let pool, let within):
            sayWorld(step)
            var last = ""
            if !poll(within: within, { [self] in last = dirtySummary(pool); return last.isEmpty }) && world.failure == nil {
                fail(step, "maps still dirty", expected: "all maps of \(pool) clean within \(formatTime(within))", actual: last)
            }
        case .assertMapsClean(let pool):
            sayWorld(step)
            let s = dirtySummary(pool)
            if !s.isEmpty { fail(step, "maps are not clean", expected: "no dirty chunk for \(pool)", actual: s) }
            else if storageNodes(pool).isEmpty { fail(step, "no node has a server pool \(pool)") }
        case .assertLegsIdentical(let pool):
            sayWorld(step)
            if let problem = legsDiffer(pool) { fail(step, "legs differ", expected: "identical data regions", actual: problem) }
        case .assertNoDataLost(let host, let device):
            sayWorld(step)
            let w = world.startVerification(host: host, device: device)
            let done = world.run(until: world.now + 600_000_000_000) { w.finished }
            if world.failure != nil { return }
            if !done { return fail(step, "verification reads did not finish", actual: "\(w.completed)/\(w.issued) completed") }
            if w.crashed { return fail(step, "\(host) is down") }
            if w.errorCount > 0 { return fail(step, "verification reads failed", expected: "no errors", actual: w.errorSummary) }
            let sectors = w.completed
            verifiedSectors += world.model(host: host, device: device)!.sectorsVerified
            say("#   verified \(sectors) regions of \(device): every read matches the last acknowledged write")
        case .assertWorkloadErrors(let name, let count):
            sayWorld(step)
            let w = workloadsByName[name]!
            if w.errorCount != count { fail(step, "workload error count", expected: "\(count)", actual: w.errorSummary) }
        case .expectError(let e):
            expectError = e
        case .expectRejection(let text):
            world.expectedRejections.append(text)
        case .note(let text):
            say("# " + text)
        }
    }

    /// Runs until `check` holds (polled every virtual millisecond) or `within` passes.
    func poll(within: UInt64, _ check: @escaping () -> Bool) -> Bool {
        var nextCheck = world.now
        let deadline = world.now + within
        let ok = world.run(until: deadline) { [world] in
            if world.now >= nextCheck {
                nextCheck = world.now + 1_000_000
                return check()
            }
            return false
        }
        return ok || (world.failure == nil && check())
    }

    static func lines(_ text: String) -> [String] {
        var ls = text.split(separator: "\n", omittingEmptySubsequences: false).map { trim(String($0)) }
        while let l = ls.last, l.isEmpty { ls.removeLast() }
        return ls
    }

    func adminWrite(_ step: Step, host: String, path: String, value: String, command: AdminCommand) {
        let expected = expectError
        expectError = nil
        let quoted = value.contains(" ") || value.contains("=") ? "'\(value)'" : value
        say("\(host)$ echo \(quoted) > \(path)")
        guard let token = world.submitAdmin(host: host, command) else { return fail(step, "\(host) is down") }
        world.expectedAdminErrno = expected
        let answered = world.run(until: world.now + options.adminTimeoutNanos) { [world] in world.adminResult(token) != nil }
        world.expectedAdminErrno = nil
        if world.failure != nil { return }
        guard answered, let result = world.adminResult(token) else {
            return fail(step, "the write did not complete", expected: "an answer within \(formatTime(options.adminTimeoutNanos))", actual: "no answer")
        }
        switch result {
        case .ok:
            if let expected { fail(step, "the write succeeded", expected: "error \(expected)", actual: "success") }
        case .failed(let e):
            say("-bash: echo: write error: \(e.code) (\(e.message))")
            if e.code != expected {
                fail(step, "the write failed", expected: expected.map { "error \($0)" } ?? "success", actual: "\(e.code): \(e.message)")
            }
        }
    }

    func adminRead(_ step: Step, host: String, path: String, expected: [String]) {
        let expectedError = expectError
        expectError = nil
        say("\(host)$ cat \(path)")
        guard let node = world.host(host)!.node else { return fail(step, "\(host) is down") }
        switch ControlTree.read(path: path, node: node) {
        case .success(let text):
            let got = ScenarioRunner.lines(text)
            for l in got { say(l) }
            if let expectedError { return fail(step, "the read succeeded", expected: "error \(expectedError)", actual: got.joined(separator: " / ")) }
            guard !expected.isEmpty else { return }
            let matches = got.count == expected.count && zip(expected, got).allSatisfy { globMatch($0, $1) }
            if !matches {
                fail(step, "unexpected output", expected: expected.joined(separator: " / "), actual: got.joined(separator: " / "))
            }
        case .failure(let e):
            say("cat: \(path): \(e.code) (\(e.message))")
            if e.code != expectedError {
                fail(step, "the read failed", expected: expectedError.map { "error \($0)" } ?? expected.joined(separator: " / "), actual: "\(e.code): \(e.message)")
            }
        }
    }

    // MARK: - Whole-cluster checks (read-only views and disks)

    /// (host, store device) of every live node holding a server pool `pool`.
    func storageNodes(_ pool: String) -> [(Host, String?)] {
        world.hosts.compactMap { h in
            guard let node = h.node, node.serverPool(pool) != nil else { return nil }
            return (h, node.store(forPool: pool)?.device)
        }
    }

    /// Empty if every map of `pool` on every live node is clean; else a summary of the dirty ones.
    func dirtySummary(_ pool: String) -> String {
        var parts: [String] = []
        for (h, _) in storageNodes(pool) {
            guard let v = h.node!.serverPool(pool) else { continue }
            for (member, map) in v.maps where map.dirtyCount > 0 {
                parts.append("\(h.name) holds \(map.dirtyCount) dirty for member \(member)")
            }
        }
        return parts.joined(separator: "; ")
    }

    /// `a == b` for pages, with one memcmp (shared buffers compare without reading).
    static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in
                x.baseAddress == y.baseAddress || x.count == 0 || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0
            }
        }
    }

    func legsDiffer(_ pool: String) -> String? {
        let legs = storageNodes(pool).compactMap { (h, dev) -> (Host, SimDisk, UInt64)? in
            guard let dev, let d = h.disk(named: dev), let s = h.node!.store(forPool: pool) else { return nil }
            return (h, d, s.mappedSectors * 512)
        }
        guard legs.count >= 2 else { return "only \(legs.count) leg(s) with a store for \(pool)" }
        // The union of the legs' written pages: each list is ascending, so sorting their
        // concatenation is a merge of runs (no hashing of tens of thousands of page numbers).
        var pages: [UInt64] = []
        for (_, d, _) in legs { pages.append(contentsOf: d.writtenPages) }
        pages.sort()
        let pb = SimDisk.pageBytes
        for (i, p) in pages.enumerated() where i == 0 || pages[i - 1] != p {
            let reference = legs[0]
            guard p * pb < reference.2 else { continue }
            let a = reference.1.read(offset: p * pb, length: pb)
            for leg in legs.dropFirst() {
                let b = leg.1.read(offset: p * pb, length: pb)
                if !ScenarioRunner.sameBytes(a, b) {
                    var i = 0
                    while i < a.count && a[i] == b[i] { i += 1 }
                    let sector = p * 8 + UInt64(i / 512)
                    func describe(_ d: [UInt8]) -> String {
                        d.withUnsafeBytes { raw in
                            if let (lba, v) = SectorPattern.decode(raw, at: (i / 512) * 512) { return v == 0 ? "zeros" : "version \(v) of LBA \(lba)" }
                            return "unrecognised data"
                        }
                    }
                    return "sector \(sector): \(reference.0.name) has \(describe(a)), \(leg.0.name) has \(describe(b))"
                }
            }
        }
        return nil
    }
}

/// Loads and runs scenario files; prints results; returns (passed, failed).
public func runScenarioFiles(_ paths: [String], options: RunOptions, out: (String) -> Void) -> (passed: Int, failed: Int) {
    var scenarios: [Scenario] = []
    var parseFailed = false
    for p in paths {
        switch Scenario.load(path: p) {
        case .success(let s): scenarios.append(s)
        case .failure(let errs):
            for e in errs.errors { out("error: \(e)") }
            parseFailed = true
        }
    }
    if parseFailed { return (0, paths.count) }
    var passed = 0, failed = 0
    for (i, s) in scenarios.enumerated() {
        var o = options
        if let t = options.timelinePath, scenarios.count > 1 {
            let base = t.hasSuffix(".svg") ? String(t.dropLast(4)) : t
            o.timelinePath = base + "-" + (s.name.hasSuffix(".scenario") ? String(s.name.dropLast(9)) : s.name) + ".svg"
        }
        let r = ScenarioRunner(scenario: s, options: o).run()
        let summary = "\(r.name): \(formatTime(r.virtualNanos)) virtual, \(r.coreEvents) core events, trace \(r.traceHash)"
        if r.passed {
            passed += 1
            out("PASS \(summary)")
        } else {
            failed += 1
            out("FAIL \(summary)\n\(r.failure ?? "")")
        }
        _ = i
    }
    return (passed, failed)
}
