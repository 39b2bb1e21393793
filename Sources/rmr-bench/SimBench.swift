#if canImport(Glibc)
import Glibc
#endif
import RMRCore
import RMRSim

// rmr-bench sim [--seconds N]
//   (a) core events (Node.apply calls) per wall second under a continuous 4 KiB random-write
//       workload on the demo cluster (client + 2 storage nodes), target >= 1,000,000/s;
//   (b) simulated-to-wall time ratio of the recovery-heavy demo scenario (storage-node crash
//       during writes, resync, compute-client crash, reassembly; 4000 IOPS throughout), and of
//       Simulations/bench/recovery-heavy.scenario (5 minutes of crashes, link failures and
//       resyncs, 200-400 IOPS bursts with idle phases), target >= 1000x.
// --only a|a0|a1|a2|a3|b, --divide N (1/N of the virtual time; for valgrind --toggle-collect='*measuredRun*'),
// --size-mib N: the random writes' span for (a) (default 100: the demo's whole 100 MiB device).
// --repeat N (default 3): every measurement runs N times and prints the median and the best run.
// Runs on a shared virtual machine vary by up to 30% from minute to minute (other guests take the
// CPU); the best run is the code's speed on this hardware, the median what a run typically gets.
// A target is reported as met when the median meets it ("best run only" when only the best does).

private func wallNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// CPU time of this thread: on a loaded machine wall time overstates the cost.
private func cpuNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

private func fmt(_ v: Double, _ decimals: Int = 1) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = Int64(v * scale + 0.5)
    let whole = r / Int64(scale), frac = r % Int64(scale)
    if decimals == 0 { return String(whole) }
    let f = String(frac)
    return "\(whole).\(String(repeating: "0", count: decimals - f.count))\(f)"
}

/// Runs the demo's bring-up and returns the runner with brmr0 mapped.
private func bringUp(hashing: Bool, verify: Bool) -> ScenarioRunner? {
    var kept: [Substring] = []
    for line in demoScenarioText.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.hasPrefix("note --- running") { break }
        kept.append(line)
    }
    let text = kept.joined(separator: "\n")
    guard case .success(let s) = Scenario.parse(text: text, file: "bench-bringup") else { return nil }
    var o = RunOptions(seed: 1)
    o.hashing = hashing
    o.config.nodeOptions.verify = verify
    let r = ScenarioRunner(scenario: s, options: o)
    guard r.run().passed else { return nil }
    return r
}

/// The measured part, a function of its own (`valgrind --tool=callgrind --toggle-collect='*measuredRun*'`).
@inline(never)
private func measuredRun(_ w: World, virtualNanos: UInt64) {
    w.run(until: w.now + virtualNanos)
}

/// `--divide N`: run 1/N of the virtual seconds (short runs under valgrind).
nonisolated(unsafe) private var virtualDivisor: UInt64 = 1
nonisolated(unsafe) private var benchSizeBytes: UInt64 = 100 << 20
nonisolated(unsafe) private var repeats = 3

/// Median and best (largest) of `rates`.
private func medianAndBest(_ rates: [Double]) -> (median: Double, best: Double) {
    let sorted = rates.sorted()
    let n = sorted.count
    let median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    return (median, sorted[n - 1])
}

/// "met" (by the median), "met by the best run only", or "NOT met".
private func verdict(median: Double, best: Double, target: Double) -> String {
    median >= target ? "met" : best >= target ? "met by the best run only" : "NOT met"
}

/// "median M, best B of N runs" for rates printed with `decimals` digits.
private func spread(_ m: Double, _ b: Double, _ unit: String) -> String {
    repeats == 1 ? "\(fmt(m, 0))\(unit)" : "\(fmt(m, 0))\(unit) median, \(fmt(b, 0))\(unit) best of \(repeats) runs"
}

private func eventsPerSecond(virtualSeconds: UInt64, hashing: Bool, verify: Bool, spanBytes: UInt64) -> (events: UInt64, wall: Double, ios: UInt64, cpu: Double)? {
    guard let r = bringUp(hashing: hashing, verify: verify) else { return nil }
    let w = r.world
    var spec = WorkloadSpec(name: "bench", host: "pserver", device: "brmr0")
    spec.pattern = .randwrite
    spec.blockBytes = 4096
    spec.iodepth = 32
    spec.sizeBytes = spanBytes
    let load = w.startWorkload(spec)
    let e0 = w.coreEvents, t0 = wallNanos(), c0 = cpuNanos()
    measuredRun(w, virtualNanos: virtualSeconds * 1_000_000_000 / virtualDivisor)
    let t1 = wallNanos(), c1 = cpuNanos()
    if let f = w.failure { print("  run failed: \(f.message)"); return nil }
    return (w.coreEvents - e0, Double(t1 - t0) / 1e9, load.completed, Double(c1 - c0) / 1e9)
}

/// The side-by-side baseline of (a): the core alone. A run like (a)'s (trace hash off, verify
/// on) records every input; copies of the nodes taken at its start are then fed the same inputs,
/// in order, at the same times, with no world, no trace and no effects performed. (A shorter
/// run: the log keeps every write's data alive.)
private func coreAlone(virtualNanos: UInt64, spanBytes: UInt64) -> (events: Int, cpu: Double)? {
    guard let r = bringUp(hashing: false, verify: true) else { return nil }
    let w = r.world
    var spec = WorkloadSpec(name: "bench", host: "pserver", device: "brmr0")
    spec.pattern = .randwrite
    spec.blockBytes = 4096
    spec.iodepth = 32
    spec.sizeBytes = spanBytes
    _ = w.startWorkload(spec)
    var nodes = w.hosts.map(\.node)
    w.inputLog = []
    w.run(until: w.now + virtualNanos)
    guard w.failure == nil, let log = w.inputLog else { return nil }
    w.inputLog = nil
    var effects: [Effect] = []
    let c0 = cpuNanos()
    for e in log { nodes[e.host]!.apply(e.input, at: Instant(nanos: e.time), into: &effects) }
    let c1 = cpuNanos()
    return (log.count, Double(c1 - c0) / 1e9)
}

func runSimBench(_ args: [String]) {
    var seconds: UInt64 = 2
    if let i = args.firstIndex(of: "--seconds"), i + 1 < args.count, let s = UInt64(args[i + 1]) { seconds = s }
    if let i = args.firstIndex(of: "--size-mib"), i + 1 < args.count, let s = UInt64(args[i + 1]) { benchSizeBytes = s << 20 }
    if let i = args.firstIndex(of: "--repeat"), i + 1 < args.count, let n = Int(args[i + 1]), n > 0 { repeats = n }
    if let i = args.firstIndex(of: "--divide"), i + 1 < args.count, let d = UInt64(args[i + 1]), d > 0 { virtualDivisor = d }
    // --only a|b|a0|a2 (a0: only trace hash and verify on; a2: only both off) for profiling one part.
    var only = ""
    if let i = args.firstIndex(of: "--only"), i + 1 < args.count { only = args[i + 1] }
    print("rmr-bench sim: one core, release build recommended (swift build -c release)")

    // (trace hash, core verify, span of the random writes). The last case is the demo's own fio
    // job span (--size=25M): a working set that stays in cache, for comparison.
    let all: [(Bool, Bool, UInt64)] = [(true, true, benchSizeBytes), (false, true, benchSizeBytes), (false, false, benchSizeBytes), (true, true, 25 << 20)]
    let cases = only == "b" ? [] : only == "a0" ? [all[0]] : only == "a1" ? [all[1]] : only == "a2" ? [all[2]] : only == "a3" ? [all[3]] : all
    var firstRate: Double?
    for (hashing, verify, span) in cases {
        var walls: [Double] = [], cpus: [Double] = []
        var events: UInt64 = 0, ios: UInt64 = 0
        for _ in 0..<repeats {
            guard let run = eventsPerSecond(virtualSeconds: seconds, hashing: hashing, verify: verify, spanBytes: span) else {
                print("(a) could not bring up the demo cluster")
                return
            }
            // The same seed: every run processes the same events.
            precondition(events == 0 || (run.events == events && run.ios == ios), "rmr-bench: runs of one seed differ")
            (events, ios) = (run.events, run.ios)
            walls.append(Double(run.events) / run.wall)
            cpus.append(Double(run.events) / run.cpu)
        }
        let (m, b) = medianAndBest(walls)
        let (mc, bc) = medianAndBest(cpus)
        if firstRate == nil { firstRate = bc }
        print("(a) 4 KiB randwrite iodepth 32 over \(span >> 20) MiB, \(seconds) s virtual, trace hash \(hashing ? "on " : "off"), core verify \(verify ? "on " : "off"): "
              + "\(events) core events, \(ios) IOs; \(spread(m, b, " events/s")) "
              + "(target >= 1000000/s: \(verdict(median: m, best: b, target: 1_000_000))); per CPU s: \(fmt(mc, 0)) median, \(fmt(bc, 0)) best")
    }

    if only == "" || only == "a" {
        // Side by side: the simulator's rate (hash on, verify on, measured above) against the core
        // alone on the same kind of input stream (best runs of both).
        var rates: [Double] = []
        var count = 0
        for _ in 0..<repeats {
            guard let (events, cpu) = coreAlone(virtualNanos: 250_000_000 / virtualDivisor, spanBytes: benchSizeBytes) else { break }
            rates.append(Double(events) / cpu)
            count = events
        }
        if !rates.isEmpty, let sim = firstRate {
            let (m, b) = medianAndBest(rates)
            print("(a) baseline, side by side: the core alone fed the recorded inputs of a 0.25 s run (no world, trace or effects): "
                  + "\(count) core events, \(spread(m, b, " events/CPU s")); the simulator (hash on, verify on) runs at "
                  + "\(fmt(sim / b, 2))x the core alone (best against best, CPU time)")
        }
    }
    if only.hasPrefix("a") { return }
    guard case .success(let demo) = Scenario.parse(text: demoScenarioText, file: "demo") else { return }
    // (b') the dedicated benchmark scenario: minutes of crashes, link failures and resyncs under
    // 200-400 IOPS bursts with idle phases (run from the package root, or pass --scenario PATH).
    var path = "Simulations/bench/recovery-heavy.scenario"
    if let i = args.firstIndex(of: "--scenario"), i + 1 < args.count { path = args[i + 1] }
    guard case .success(let heavy) = Scenario.load(path: path) else {
        print("(b) \(path) not found or does not parse (run from the package root)")
        return
    }
    for (name, scenario) in [("recovery-heavy demo scenario", demo), (path, heavy)] {
        var ratios: [Double] = [], cpuRatios: [Double] = []
        var last: RunResult?
        for _ in 0..<repeats {
            let t0 = wallNanos(), c0 = cpuNanos()
            let r = ScenarioRunner(scenario: scenario, options: RunOptions(seed: 1)).run()
            let wall = Double(wallNanos() - t0) / 1e9, cpu = Double(cpuNanos() - c0) / 1e9
            ratios.append(Double(r.virtualNanos) / 1e9 / wall)
            cpuRatios.append(Double(r.virtualNanos) / 1e9 / cpu)
            last = r
        }
        guard let r = last else { return }
        let (m, b) = medianAndBest(ratios)
        let (mc, bc) = medianAndBest(cpuRatios)
        print("(b) \(name) (\(r.passed ? "passed" : "FAILED")): \(formatTime(r.virtualNanos)) virtual, \(r.coreEvents) core events, "
              + "\(r.writesAcknowledged) writes; \(spread(m, b, "x")) "
              + "(target >= 1000x: \(verdict(median: m, best: b, target: 1000))); per CPU s: \(fmt(mc, 0))x median, \(fmt(bc, 0))x best")
    }
}
