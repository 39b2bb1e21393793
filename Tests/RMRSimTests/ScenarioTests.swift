import Testing
import RMRCore
@testable import RMRSim

/// The package root, found from this file's path (tests run with any working directory).
let packageRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    parts.removeLast(3)  // Tests/RMRSimTests/ScenarioTests.swift
    return parts.joined(separator: "/")
}()

let scenarioFiles: [String] = listFiles(packageRoot + "/Scenarios", suffix: ".scenario")

func parseErrors(_ text: String) -> [String] {
    switch Scenario.parse(text: text, file: "t.scenario", loader: { _ in nil }) {
    case .success: return []
    case .failure(let e): return e.errors.map(\.description)
    }
}

@Suite struct ScenarioParseTests {
    @Test func validScenarioParses() {
        let text = """
        # comment
        host pserver client ip 192.168.122.10
        host stg-rmr0 storage ip 192.168.122.80
        disk stg-rmr0 /dev/sda sectors 409600
        stg-rmr0$ echo 'poolname=ionos_pool member_id=42' > /sys/class/rmr-server/ctl/join_pool
        stg-rmr0$ cat /sys/class/rmr-server/pools/ionos_pool/state
          empty
        link down pserver stg-rmr0
        partition pserver -> stg-rmr0
        heal
        workload start w on pserver dev brmr0 rw=randwrite bs=4k iodepth=8 size=25M
        workload wait w within 10s
        wait until stg-rmr0: cat /sys/class/rmr-server/pools/ionos_pool/state == normal within 60s
        disk error stg-rmr0 /dev/sda count 3
        disk error stg-rmr0 /dev/sda for 2s
        expect error EINVAL
        stg-rmr0$ echo 'poolname=ionos_pool member_id=42' > /sys/class/rmr-server/ctl/join_pool
        assert no data lost pserver dev brmr0
        advance 10s
        """
        guard case .success(let s) = Scenario.parse(text: text, file: "t.scenario") else {
            Issue.record("did not parse: \(parseErrors(text))")
            return
        }
        #expect(s.steps.count == 17)
        if case .read(_, _, let expected) = s.steps[4].kind { #expect(expected == ["empty"]) } else { Issue.record("step 5 is not a read") }
        #expect(s.steps[4].line == 6)
    }

    @Test(arguments: [
        ("host a storage ip 1.2.3.4\nfrobnicate a", "t.scenario:2: unknown verb 'frobnicate'"),
        ("host a storage ip 1.2.3.4\ncrash b", "t.scenario:2: unknown host 'b'"),
        ("nobody$ cat /sys/class/rmr-server/pools/p/state", "t.scenario:1: unknown host 'nobody'"),
        ("host a storage ip 1.2.3.4\n\na$ echo 'poolname=p member_id=x' > /sys/class/rmr-server/ctl/join_pool", "t.scenario:3: EINVAL"),
        ("host a storage ip 1.2.3.4\na$ echo 1 > /sys/class/rmr-server/nope", "t.scenario:2: ENOENT"),
        ("host a storage ip 1.2.3.4\na$ cat /sys/class/rmr-server/pools/p/nope", "t.scenario:2: ENOENT"),
        ("host a storage ip 1.2.3.4\nadvance soon", "t.scenario:2: 'soon' is not a duration"),
        ("host a client ip 1.2.3.4\nworkload start w on a dev brmr0 rw=sideways", "t.scenario:2: rw=sideways"),
        ("host a storage ip 1.2.3.4\n  indented", "t.scenario:2: indented line"),
        ("host a storage ip 1.2.3.4\nexpect error EINVAL\nadvance 1s", "t.scenario:3: `expect error` must be followed"),
        ("host a storage ip 1.2.3.4\nworkload stop w", "t.scenario:2: unknown workload 'w'"),
        ("include missing.inc", "t.scenario:1: cannot read included file"),
        ("set crash-in-flight 120%", "t.scenario:1: set crash-in-flight: expected a percentage"),
        ("set crash-in-flight 50", "t.scenario:1: set crash-in-flight: expected a percentage"),
        ("set write-intent-capacity 1", "t.scenario:1: set write-intent-capacity: expected a number of chunks"),
        ("host a storage ip 1.2.3.4\ncrash a during sync", "t.scenario:2: usage: crash HOST | crash HOST during sync|write within DURATION"),
        ("host a storage ip 1.2.3.4\ncrash a during sync within soon", "t.scenario:2: 'soon' is not a duration"),
    ])
    func errorsCarryFileAndLine(text: String, expected: String) {
        let errors = parseErrors(text)
        #expect(errors.contains { $0.hasPrefix(expected) }, "got \(errors)")
    }

    @Test func allErrorsReportedBeforeRunning() {
        let errors = parseErrors("frob\nhost a storage ip 1\ncrash z\nadvance x")
        #expect(errors.count == 3)
    }

    @Test func shippedScenarioFilesParse() {
        #expect(scenarioFiles.count >= 20)
        for f in scenarioFiles {
            if case .failure(let e) = Scenario.load(path: f) { Issue.record("\(e)") }
        }
    }

    @Test func demoScenarioParses() {
        if case .failure(let e) = Scenario.parse(text: demoScenarioText, file: "demo") { Issue.record("\(e)") }
    }
}

@Suite struct WorldConnectionTests {
    /// Connection handling needs no protocol: drive `perform` directly.
    func world() -> World {
        let w = World(seed: 1)
        w.addHost(name: "a", role: .client, address: "10.0.0.1")
        w.addHost(name: "b", role: .storage, address: "10.0.0.2")
        return w
    }

    func notes(_ w: World) -> [String] { w.trace.lastLines(40) }

    @Test func connectEstablishesBothEndsAndLinkDownBreaksIt() {
        let w = world()
        w.perform(.connect(peer: "10.0.0.2"), from: 0)
        w.run(until: 10_000_000)
        #expect(w.connections[w.pairKey(0, 1)]?.established == true)
        #expect(notes(w).contains { $0.contains("a <- link up 10.0.0.2") })
        #expect(notes(w).contains { $0.contains("b <- link up 10.0.0.1") })
        w.setLink("a", "b", up: false)
        w.run(until: w.now + 10_000_000)
        #expect(w.connections[w.pairKey(0, 1)]?.established == false)
        #expect(notes(w).contains { $0.contains("b <- link down 10.0.0.1") })
        // Comes back after the reconnect delay once the link is up again.
        w.setLink("a", "b", up: true)
        w.run(until: w.now + 500_000_000)
        #expect(w.connections[w.pairKey(0, 1)]?.established == false)
        w.run(until: w.now + 600_000_000)
        #expect(w.connections[w.pairKey(0, 1)]?.established == true)
    }

    @Test func messagesInFlightAreDroppedWhenTheConnectionBreaks() {
        let w = world()
        w.perform(.connect(peer: "10.0.0.2"), from: 0)
        w.run(until: 10_000_000)
        w.perform(.send(.request(RequestID(1), pool: "p", .mapReady), to: "10.0.0.2"), from: 0)
        w.setLink("a", "b", up: false)
        w.run(until: w.now + 10_000_000)
        #expect(notes(w).contains { $0.contains("lost in flight: MAP_READY") })
        #expect(!notes(w).contains { $0.contains("recv MAP_READY") })
    }

    @Test func crashedPeerReconnectsAfterRestartBecauseTheOtherEndStillWantsIt() {
        let w = world()
        w.perform(.connect(peer: "10.0.0.2"), from: 0)
        w.run(until: 10_000_000)
        w.crash("b")
        w.run(until: w.now + 10_000_000)
        #expect(notes(w).contains { $0.contains("a <- link down 10.0.0.2") })
        w.restart("b")
        w.run(until: w.now + 2_000_000_000)
        #expect(w.connections[w.pairKey(0, 1)]?.established == true)
    }

    /// `set crash-in-flight`: at a crash, messages the host had on the wire land (100%) or are
    /// lost with the connection (0%, the default).
    @Test(arguments: [(UInt64(0), false), (UInt64(100), true)])
    func inFlightMessagesOfACrashedHost(percent: UInt64, lands: Bool) {
        let w = world()
        w.config.crashInFlightLandPercent = percent
        w.perform(.connect(peer: "10.0.0.2"), from: 0)
        w.run(until: 10_000_000)
        w.perform(.send(.request(RequestID(1), pool: "p", .mapReady), to: "10.0.0.2"), from: 0)
        w.crash("a")
        w.run(until: w.now + 10_000_000)
        #expect(notes(w).contains { $0.contains("b <- recv MAP_READY") } == lands)
        #expect(notes(w).contains { $0.contains("landed from crashed a: MAP_READY") } == lands)
    }

    @Test func asymmetricPartitionBreaksAfterHeartbeat() {
        let w = world()
        w.perform(.connect(peer: "10.0.0.2"), from: 0)
        w.run(until: 10_000_000)
        w.setLink("a", "b", up: false, oneWay: true)
        w.run(until: w.now + 500_000_000)
        #expect(w.connections[w.pairKey(0, 1)]?.established == true)
        w.run(until: w.now + 600_000_000)
        #expect(w.connections[w.pairKey(0, 1)]?.established == false)
    }
}

@Suite struct CrashDuringSyncTests {
    /// `crash HOST during sync` crashes the node inside a chunk-sync write (not at its
    /// timeout), and the scenario still recovers.
    @Test func crashLandsInsideAChunkSyncWrite() {
        guard case .success(let s) = Scenario.load(path: packageRoot + "/Scenarios/fault-crash-during-resync.scenario") else {
            Issue.record("scenario does not parse")
            return
        }
        let runner = ScenarioRunner(scenario: s, options: RunOptions(seed: 1))
        let result = runner.run()
        #expect(result.passed, "\(result.failure ?? "")")
        #expect(runner.world.crashesDuringSyncWrite == 1)
    }
}

@Suite struct DeterminismTests {
    static let file = packageRoot + "/Scenarios/guide-05-storage-crash.scenario"

    func run(seed: UInt64) -> RunResult? {
        guard case .success(let s) = Scenario.load(path: DeterminismTests.file) else { return nil }
        return ScenarioRunner(scenario: s, options: RunOptions(seed: seed)).run()
    }

    /// Runs keep no trace records; a failed run is replayed with them, so its report still
    /// ends with the last events before the failure (and the replay must agree on the hash).
    @Test func failedRunReportsTheLastEventsFromItsReplay() throws {
        let text = """
        host pserver client ip 192.168.122.10
        host stg-rmr0 storage ip 192.168.122.80
        disk stg-rmr0 /dev/sda sectors 409600
        stg-rmr0$ echo 'poolname=ionos_pool member_id=42' > /sys/class/rmr-server/ctl/join_pool
        stg-rmr0$ cat /sys/class/rmr-server/pools/ionos_pool/state
          normal
        """
        guard case .success(let s) = Scenario.parse(text: text, file: "t.scenario") else {
            Issue.record("does not parse")
            return
        }
        let runner = ScenarioRunner(scenario: s, options: RunOptions(seed: 1))
        #expect(runner.world.trace.ringCapacity == 0, "runs keep no records by default")
        let r = runner.run()
        let failure = try #require(r.failure)
        #expect(!r.passed)
        #expect(!failure.contains("NONDETERMINISM"), "\(failure)")
        let tail = try #require(failure.split(separator: "last events:").last)
        #expect(tail.contains("stg-rmr0 <- admin"), "the replay's last events name the admin input: \(failure)")
    }

    @Test func sameSeedSameTraceHash() throws {
        let a = try #require(run(seed: 7)), b = try #require(run(seed: 7))
        #expect(a.traceHash == b.traceHash)
        #expect(a.coreEvents == b.coreEvents)
        #expect(a.virtualNanos == b.virtualNanos)
    }

    @Test func worldOnlyRunIsDeterministicAndSeedSensitive() {
        // Link jitter and crash tearing come from the world seed.
        func hash(_ seed: UInt64) -> String {
            let w = World(seed: seed)
            w.addHost(name: "a", role: .client, address: "10.0.0.1")
            w.addHost(name: "b", role: .storage, address: "10.0.0.2")
            w.perform(.connect(peer: "10.0.0.2"), from: 0)
            w.run(until: 10_000_000)
            for i in 0..<50 { w.perform(.send(.request(RequestID(UInt64(i)), pool: "p", .mapReady), to: "10.0.0.2"), from: 0) }
            w.run(until: w.now + 10_000_000)
            return w.trace.hashText
        }
        #expect(hash(1) == hash(1))
        #expect(hash(1) != hash(2))
    }
}

/// One run per shipped scenario file. These pass once the core implements the protocol.
@Suite struct ShippedScenarioTests {
    @Test(arguments: scenarioFiles.map { String($0.split(separator: "/").last!) })
    func scenario(_ name: String) {
        let path = packageRoot + "/Scenarios/" + name
        switch Scenario.load(path: path) {
        case .failure(let e): Issue.record("\(e)")
        case .success(let s):
            let r = ScenarioRunner(scenario: s, options: RunOptions(seed: 1)).run()
            #expect(r.passed, "\(r.failure ?? "")")
        }
    }
}
