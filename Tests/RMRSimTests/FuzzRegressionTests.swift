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

    @Test func profilesParse() throws {
        var dir = #filePath
        for _ in 0..<3 { dir = String(dir[..<dir.lastIndex(of: "/")!]) }
        for f in listFiles(dir + "/Simulations/profiles", suffix: ".profile") {
            guard case .success = FuzzProfile.load(nameOrPath: f) else { Issue.record("\(f) does not parse"); continue }
        }
    }
}
