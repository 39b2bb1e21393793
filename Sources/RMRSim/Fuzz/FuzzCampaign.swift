#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import RMRCore

// `rmr-sim fuzz` (a campaign: seeds in child processes, determinism re-runs, shrinking, probe
// report) and `rmr-sim fuzz-one SEED | --file F` (one run in this process). Docs/fuzzing.md.

struct FuzzArgs {
    var seeds = 100
    var start: UInt64 = 1
    var profile = "default"
    var shard = (0, 1)
    var report = false
    var beyond = false
    var jobs = 1
    var shrink = true
    var regressions = "Simulations/regressions"
    var file: String?
    var dumpTrace: String?
    var printScenario = false
    var verbose = false
    var maxFailures = Int.max
    var positional: [String] = []
}

func parseFuzzArgs(_ args: [String]) -> FuzzArgs? {
    var a = FuzzArgs()
    var i = 0
    func next() -> String? { i += 1; return i < args.count ? args[i] : nil }
    while i < args.count {
        switch args[i] {
        case "--seeds": guard let v = next(), let n = Int(v) else { return nil }; a.seeds = n
        case "--start": guard let v = next(), let n = UInt64(v) else { return nil }; a.start = n
        case "--profile": guard let v = next() else { return nil }; a.profile = v
        case "--shard":
            guard let v = next() else { return nil }
            let kn = v.split(separator: "/").compactMap { Int($0) }
            guard kn.count == 2, kn[1] > 0, kn[0] >= 0, kn[0] < kn[1] else { return nil }
            a.shard = (kn[0], kn[1])
        case "--report": a.report = true
        case "--beyond-budget": a.beyond = true
        case "--jobs", "-j": guard let v = next(), let n = Int(v), n > 0 else { return nil }; a.jobs = n
        case "--no-shrink": a.shrink = false
        case "--regressions": guard let v = next() else { return nil }; a.regressions = v
        case "--file": guard let v = next() else { return nil }; a.file = v
        case "--dump-trace": guard let v = next() else { return nil }; a.dumpTrace = v
        case "--print": a.printScenario = true
        case "--max-failures": guard let v = next(), let n = Int(v), n > 0 else { return nil }; a.maxFailures = n
        case "--verbose", "-v": a.verbose = true
        default:
            if args[i].hasPrefix("--") { return nil }
            a.positional.append(args[i])
        }
        i += 1
    }
    return a
}

let fuzzUsage = """
usage: rmr-sim fuzz --seeds N [--start S] [--profile NAME] [--shard K/N] [--report] [--beyond-budget]
                    [--jobs J] [--no-shrink] [--regressions DIR]
       rmr-sim fuzz-one SEED [--profile NAME] [--beyond-budget] [--print] [--verbose] [--dump-trace FILE]
       rmr-sim fuzz-one --file SCENARIO [--verbose]
"""

public func fuzzMain(command: String, args: [String], executable: String) -> Int32 {
    guard let a = parseFuzzArgs(args) else { print(fuzzUsage); return 2 }
    if command == "fuzz-one" { return fuzzOne(a) }
    return FuzzCampaign(args: a, executable: executable).run()
}

func loadProfile(_ a: FuzzArgs) -> FuzzProfile? {
    switch FuzzProfile.load(nameOrPath: a.profile) {
    case .success(var p):
        if a.beyond { p.beyondBudget = true }
        return p
    case .failure(let e):
        print("error: \(e.message)")
        return nil
    }
}

func fuzzOne(_ a: FuzzArgs) -> Int32 {
    let text: String
    let name: String
    if let f = a.file {
        do { text = try readTextFile(f) } catch { print("error: \(error.message)"); return 2 }
        name = f
    } else {
        guard let s = a.positional.first.flatMap(UInt64.init), let profile = loadProfile(a) else { print(fuzzUsage); return 2 }
        text = FuzzGenerator.plan(seed: s, profile: profile).render()
        name = "seed-\(s).scenario"
    }
    if a.printScenario { print(text, terminator: "") ; return 0 }
    let runner = FuzzRunner(text: text, name: name)
    var dump: UnsafeMutablePointer<FILE>?
    if let d = a.dumpTrace {
        dump = fopen(d, "w")
        var index = 0
        runner.tracePrinter = { line in
            index += 1
            fputs("\(index) \(line)\n", dump)
        }
    } else if a.verbose {
        runner.tracePrinter = { print($0) }
    }
    let r = runner.run()
    if let dump { fclose(dump) }
    print(r.protocolLine)
    if !r.passed { print(r.failure) }
    return r.passed ? 0 : 1
}

/// The outcome of one child run.
struct ChildOutcome {
    var passed: Bool
    var checker: String
    var hash: String
    var vnanos: UInt64
    var events: UInt64
    var probes: [String: Int]
    var output: String
    var wallNanos: UInt64
}

final class FuzzCampaign {
    let args: FuzzArgs
    let executable: String
    var tmpDir: String

    init(args: FuzzArgs, executable: String) {
        self.args = args
        self.executable = executable
        tmpDir = "/tmp/rmr-fuzz-\(getpid())"
        mkdir(tmpDir, 0o755)
    }

    static func nowNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Spawns `executable fuzz-one ...` with stdout and stderr to `out`; returns its pid.
    func spawn(_ childArgs: [String], out: String) -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&fa, 1, 2)
        let all = [executable, "fuzz-one"] + childArgs
        var cargs = all.map { strdup($0) }
        cargs.append(nil)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &fa, nil, &cargs, environ)
        for p in cargs { free(p) }
        posix_spawn_file_actions_destroy(&fa)
        return rc == 0 ? pid : -1
    }

    func outcome(status: Int32, out: String, wall: UInt64) -> ChildOutcome {
        let text = (try? readTextFile(out)) ?? ""
        unlink(out)
        var o = ChildOutcome(passed: false, checker: "crash", hash: "-", vnanos: 0, events: 0, probes: [:], output: text, wallNanos: wall)
        let exited = (status & 0x7f) == 0
        if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }) {
            for w in line.split(separator: " ").dropFirst() {
                let kv = w.split(separator: "=", maxSplits: 1).map(String.init)
                if kv.count == 1 { o.passed = kv[0] == "pass"; continue }
                switch kv[0] {
                case "checker": o.checker = kv[1]
                case "hash": o.hash = kv[1]
                case "vnanos": o.vnanos = UInt64(kv[1]) ?? 0
                case "events": o.events = UInt64(kv[1]) ?? 0
                case "probes":
                    for p in kv[1].split(separator: ",") {
                        let pc = p.split(separator: ":")
                        if pc.count == 2 { o.probes[String(pc[0])] = Int(pc[1]) ?? 0 }
                    }
                default: break
                }
            }
        } else {
            o.checker = exited ? "crash" : "precondition"
            o.output = (exited ? "child exited with status \((status >> 8) & 0xff)" : "child killed by signal \(status & 0x7f) (a core precondition or trap)") + "\n" + text.split(separator: "\n").suffix(12).joined(separator: "\n")
        }
        return o
    }

    /// Runs a batch of child invocations, at most `jobs` at a time; results in input order.
    func runChildren(_ batch: [[String]]) -> [ChildOutcome] {
        var results = [ChildOutcome?](repeating: nil, count: batch.count)
        var running: [pid_t: (Int, String, UInt64)] = [:]
        var nextIndex = 0
        while nextIndex < batch.count || !running.isEmpty {
            while running.count < args.jobs && nextIndex < batch.count {
                let out = "\(tmpDir)/child-\(nextIndex).out"
                let pid = spawn(batch[nextIndex], out: out)
                if pid < 0 {
                    results[nextIndex] = ChildOutcome(passed: false, checker: "spawn", hash: "-", vnanos: 0, events: 0, probes: [:], output: "cannot spawn \(executable)", wallNanos: 0)
                } else {
                    running[pid] = (nextIndex, out, FuzzCampaign.nowNanos())
                }
                nextIndex += 1
            }
            if running.isEmpty { continue }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            guard pid > 0, let (i, out, t0) = running.removeValue(forKey: pid) else { continue }
            results[i] = outcome(status: status, out: out, wall: FuzzCampaign.nowNanos() - t0)
        }
        return results.map { $0! }
    }

    func seedArgs(_ s: UInt64) -> [String] {
        ["\(s)", "--profile", args.profile] + (args.beyond ? ["--beyond-budget"] : [])
    }

    func replayCommand(_ s: UInt64) -> String {
        "rmr-sim fuzz-one \(s) --profile \(args.profile)\(args.beyond ? " --beyond-budget" : "")"
    }

    func run() -> Int32 {
        guard let profile = loadProfile(args) else { return 2 }
        var seeds: [UInt64] = []
        for i in 0..<args.seeds where i % args.shard.1 == args.shard.0 { seeds.append(args.start + UInt64(i)) }
        print("fuzz: profile \(profile.name)\(profile.beyondBudget ? " (beyond the budget: liveness skipped)" : ""), \(seeds.count) seeds from \(args.start)\(args.shard.1 > 1 ? " (shard \(args.shard.0)/\(args.shard.1))" : ""), \(args.jobs) job(s)")
        let t0 = FuzzCampaign.nowNanos()
        var passed = 0, failed = 0
        var failures: [(UInt64, ChildOutcome)] = []
        var probeTotals: [String: Int] = [:]
        var vnanosTotal: UInt64 = 0, eventsTotal: UInt64 = 0, wallTotal: UInt64 = 0
        var determinismChecked = 0
        let batchSize = max(args.jobs * 4, 8)
        var done = 0
        var k = 0
        while k < seeds.count && failed < args.maxFailures {
            let batch = Array(seeds[k..<min(k + batchSize, seeds.count)])
            k += batch.count
            // Determinism: a share of the seeds runs twice, in two processes.
            let twice = batch.filter { WorldRandom.subSeed($0, "fuzz-determinism") % 100 < profile.determinismPercent }
            let results = runChildren(batch.map(seedArgs) + twice.map(seedArgs))
            for (j, s) in batch.enumerated() {
                var r = results[j]
                if let ti = twice.firstIndex(of: s) {
                    determinismChecked += 1
                    let second = results[batch.count + ti]
                    if second.hash != r.hash && r.checker != "precondition" {
                        r.passed = false
                        r.checker = "determinism"
                        r.output = "trace hash \(r.hash) then \(second.hash)\n" + firstDivergence(s)
                    }
                }
                done += 1
                vnanosTotal += r.vnanos; eventsTotal += r.events; wallTotal += r.wallNanos
                for (p, n) in r.probes { probeTotals[p, default: 0] += n }
                if r.passed {
                    passed += 1
                } else {
                    failed += 1
                    failures.append((s, r))
                    print("FAIL seed \(s) [\(r.checker)]: replay with: \(replayCommand(s))")
                    for l in r.output.split(separator: "\n").filter({ !$0.hasPrefix("RESULT") }).prefix(6) { print("    " + l) }
                }
            }
            let el = Double(FuzzCampaign.nowNanos() - t0) / 1e9
            print("[\(done)/\(seeds.count)] \(passed) passed, \(failed) failed, \(fmt(Double(vnanosTotal) / 1e9 / 60)) sim-min, \(fmt(el))s wall")
        }
        let wall = Double(FuzzCampaign.nowNanos() - t0) / 1e9
        let childWall = Double(wallTotal) / 1e9
        if !seeds.isEmpty {
            let perSeed = childWall / Double(seeds.count + determinismChecked)
            print("perf: \(fmt(Double(vnanosTotal) / 1e9 / Double(seeds.count)))s simulated per seed, \(fmt(perSeed))s wall per run (one core), "
                  + "\(fmt(Double(vnanosTotal) / 1e9 / max(childWall, 1e-9)))x simulated:wall, \(fmt(Double(eventsTotal) / max(childWall, 1e-9) / 1000))k core events/s, "
                  + "\(Int(3600 / max(perSeed, 1e-9))) seeds per core-hour; determinism re-runs: \(determinismChecked)")
        }
        if args.shrink {
            for (s, r) in failures where r.checker != "determinism" { shrink(seed: s, checker: r.checker, profile: profile) }
        }
        var probeFailure = false
        if args.report {
            print("coverage probes (\(seeds.count) seeds):")
            let names = CoverageProbe.allCases.map(\.rawValue) + WorldProbe.allCases.map { "world." + $0.rawValue }
            for n in names {
                let key = n.hasPrefix("world.") ? String(n.dropFirst(6)) : n
                print("  \(n): \(probeTotals[key] ?? 0)")
            }
            if let req = try? readTextFile("Simulations/required-probes.txt") {
                for raw in req.split(separator: "\n") {
                    let n = trim(String(raw.split(separator: "#", omittingEmptySubsequences: false).first ?? ""))
                    if n.isEmpty { continue }
                    let key = n.hasPrefix("world.") ? String(n.dropFirst(6)) : n
                    if (probeTotals[key] ?? 0) == 0 { print("required probe never fired: \(n)"); probeFailure = true }
                }
            }
        }
        rmdir(tmpDir)
        print("(\(fmt(wall))s wall)")
        print("\(passed) passed, \(failed) failed")
        return failed == 0 && !probeFailure ? 0 : 1
    }

    func fmt(_ d: Double) -> String {
        let v = (d * 100).rounded() / 100
        return "\(v)"
    }

    /// Runs the seed twice with per-record dumps and names the first diverging record.
    func firstDivergence(_ s: UInt64) -> String {
        let a = "\(tmpDir)/det-\(s)-a.trace", b = "\(tmpDir)/det-\(s)-b.trace"
        _ = runChildren([seedArgs(s) + ["--dump-trace", a], seedArgs(s) + ["--dump-trace", b]])
        let la = ((try? readTextFile(a)) ?? "").split(separator: "\n"), lb = ((try? readTextFile(b)) ?? "").split(separator: "\n")
        unlink(a); unlink(b)
        for i in 0..<max(la.count, lb.count) {
            let x = i < la.count ? String(la[i]) : "(end)", y = i < lb.count ? String(lb[i]) : "(end)"
            if x != y { return "first divergence at event \(i + 1):\n  run 1: \(x.prefix(300))\n  run 2: \(y.prefix(300))" }
        }
        return "the per-event traces are equal (divergence outside the trace?)"
    }

    // MARK: - Shrinking (ddmin over the plan's groups: faults and workload phases)

    func shrink(seed: UInt64, checker: String, profile: FuzzProfile) {
        let plan = FuzzGenerator.plan(seed: seed, profile: profile)
        var kept = Array(0..<plan.groupCount)
        var runs = 0
        func fails(_ groups: [Int]) -> Bool {
            runs += 1
            let path = "\(tmpDir)/shrink-\(seed).scenario"
            do { try writeTextFile(path, plan.render(keeping: Set(groups))) } catch { return false }
            let r = runChildren([["--file", path]])[0]
            unlink(path)
            return !r.passed && r.checker == checker
        }
        var n = 2
        while kept.count >= 2 && runs < 200 {
            let chunk = (kept.count + n - 1) / n
            var reduced = false
            var i = 0
            while i < kept.count {
                let complement = Array(kept[..<i]) + Array(kept[min(i + chunk, kept.count)...])
                if fails(complement) {
                    kept = complement
                    n = max(n - 1, 2)
                    reduced = true
                    break
                }
                i += chunk
            }
            if !reduced {
                if n >= kept.count { break }
                n = min(kept.count, n * 2)
            }
        }
        if kept.count == 1 && fails([]) { kept = [] }
        let text = plan.render(keeping: Set(kept))
        let steps = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        let full = plan.render().split(separator: "\n").filter { !$0.hasPrefix("#") }.count
        mkdir(args.regressions, 0o755)
        let path = "\(args.regressions)/seed-\(seed)-\(profile.name)-\(checker).scenario"
        do {
            try writeTextFile(path, "# Shrunk by rmr-sim fuzz from seed \(seed) (\(plan.groupCount) -> \(kept.count) fault/workload groups, \(full) -> \(steps) steps, \(runs) re-runs); failing checker: \(checker)\n" + text)
            print("shrunk seed \(seed): \(plan.groupCount) -> \(kept.count) groups, \(full) -> \(steps) steps (\(runs) re-runs); written to \(path)")
            print("  replay: rmr-sim fuzz-one --file \(path)")
        } catch {
            print("shrunk seed \(seed): cannot write \(path): \(error.message)")
        }
    }
}
