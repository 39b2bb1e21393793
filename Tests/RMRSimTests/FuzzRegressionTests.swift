import Testing
@testable import RMRSim

// Every scenario the fuzzer shrank into Simulations/regressions/ is replayed with the fuzzer's
// checkers (and its `# rmr-fuzz:` header options) on every `make test`.

private func regressionFiles() -> [String] {
    var dir = #filePath
    for _ in 0..<3 { dir = String(dir[..<dir.lastIndex(of: "/")!]) }
    return listFiles(dir + "/Simulations/regressions", suffix: ".scenario")
}

@Suite struct FuzzRegressionTests {
    @Test(arguments: regressionFiles())
    func replay(_ path: String) throws {
        let text = try readTextFile(path)
        let r = FuzzRunner(text: text, name: path).run()
        #expect(r.passed, "\(path) [\(r.checker)]\n\(r.failure)")
    }

    @Test func generatorIsDeterministic() throws {
        var p = FuzzProfile()
        p.scheduleNanos = 30_000_000_000
        for seed in UInt64(1)...20 {
            #expect(FuzzGenerator.plan(seed: seed, profile: p).render() == FuzzGenerator.plan(seed: seed, profile: p).render())
        }
    }

    /// The knobs come from their own sub-seed: a profile without them draws the same cluster,
    /// workload and faults for a seed; with them, their `set` lines precede the hosts (so the
    /// nodes are created with them) and a storage crash may carry a crash during resync.
    @Test func knobsAreRenderedAndLeaveTheOtherDrawsAlone() throws {
        var with = FuzzProfile()
        with.scheduleNanos = 120_000_000_000
        var without = with
        without.kinds = FaultKind.allCases.filter { !$0.isKnob }
        var sawSet = false, sawResyncCrash = false
        for seed in UInt64(1)...40 {
            let a = FuzzGenerator.plan(seed: seed, profile: with), b = FuzzGenerator.plan(seed: seed, profile: without)
            #expect(a.rf == b.rf && a.chunks == b.chunks && a.queueDepth == b.queueDepth)
            #expect(a.enabled.filter { !$0.isKnob } == b.enabled)
            let text = a.render()
            let lines = text.split(separator: "\n")
            let firstHost = lines.firstIndex { $0.hasPrefix("host ") }!
            for (i, l) in lines.enumerated() where l.hasPrefix("set ") {
                sawSet = true
                #expect(i < firstHost, "\(l) comes after the hosts")
            }
            if text.contains(" during sync within ") { sawResyncCrash = true }
            #expect(!b.render().contains("set crash-in-flight") && !b.render().contains(" during sync "))
            if case .failure(let e) = Scenario.parse(text: text, file: "seed-\(seed)") { Issue.record("\(e)") }
        }
        #expect(sawSet && sawResyncCrash)
    }

    @Test func profilesParse() throws {
        var dir = #filePath
        for _ in 0..<3 { dir = String(dir[..<dir.lastIndex(of: "/")!]) }
        for f in listFiles(dir + "/Simulations/profiles", suffix: ".profile") {
            guard case .success = FuzzProfile.load(nameOrPath: f) else { Issue.record("\(f) does not parse"); continue }
        }
    }
}
