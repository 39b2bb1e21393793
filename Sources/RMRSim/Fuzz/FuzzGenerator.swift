import RMRCore

// Seed -> cluster, workload and fault schedule -> scenario text (Docs/fuzzing.md).
//
// A plan is a list of timed abstract events grouped into removable units (a workload phase, a
// fault with its end and the operator's recovery). `render(keeping:)` turns any subset of the
// groups into a scenario file, re-deriving the glue (advances, heals before operator steps),
// so the shrinker's candidates are valid scenarios too.

public enum FuzzAction: Sendable {
    case workload(name: String, options: String)
    case linkDown(Int, Int), linkUp(Int, Int)
    case partition(groupA: [Int], groupB: [Int]), healPartition
    case oneWay(Int, Int), oneWayEnd(Int, Int)
    case latency(Int, Int, micros: UInt64), latencyEnd(Int, Int)
    case crash(Int)            // host index (0 = client, 1... = storage)
    case crashDuring(Int, CrashTrigger, within: UInt64)
    case restart(Int)
    case begin(FaultKind, Int) // operator action on storage host index
    case end(FaultKind, Int)

    var isOperator: Bool {
        switch self {
        case .restart, .begin, .end: return true
        default: return false
        }
    }
}

public struct FuzzEvent: Sendable {
    public var time: UInt64
    public var group: Int
    public var action: FuzzAction
}

public struct FuzzPlan: Sendable {
    public var seed: UInt64
    public var profile: String
    public var worldSeed: UInt64
    public var rf: Int
    public var chunkBytes: UInt64
    public var chunks: UInt64
    public var queueDepth: Int
    public var metadataLands: Bool
    public var beyondBudget: Bool
    public var enabled: [FaultKind]
    /// Knobs (nil: the world's default).
    public var crashInFlightPercent: UInt64?
    public var writeIntentCapacity: UInt64?
    public var diskTiming: (dataNanos: UInt64, jitterNanos: UInt64, metadataNanos: UInt64)?
    public var events: [FuzzEvent]
    public var groupCount: Int
    public var scheduleNanos: UInt64
    public var waitNanos: UInt64
    public var livenessNanos: UInt64

    static let pool = "ionos_pool"
    var mappedSectors: UInt64 { chunks * chunkBytes / 512 }
    func hostName(_ i: Int) -> String { i == 0 ? "pserver" : "stg\(i - 1)" }
    func address(_ i: Int) -> String { i == 0 ? "10.0.0.2" : "10.0.1.\(i + 9)" }
    func member(_ i: Int) -> Int { 41 + i }
    var storage: [Int] { Array(1...rf) }

    /// The header line the fuzz runner and the regression test read back.
    public var headerLine: String {
        "# rmr-fuzz: seed=\(seed) profile=\(profile) world-seed=\(worldSeed) queue-depth=\(queueDepth) metadata-lands=\(metadataLands ? 1 : 0) beyond-budget=\(beyondBudget ? 1 : 0) chunk-bytes=\(chunkBytes)"
    }

    // MARK: - Rendering

    public func render(keeping keep: Set<Int>? = nil) -> String {
        var out: [String] = []
        func add(_ s: String) { out.append(s) }
        let p = FuzzPlan.pool
        let kept = events.filter { keep == nil || keep!.contains($0.group) }
        add(headerLine)
        add("# rf=\(rf) chunk=\(chunkBytes / 1024)KiB chunks=\(chunks) faults=\(enabled.map(\.rawValue).joined(separator: ","))")
        add("# replay: rmr-sim fuzz-one \(seed) --profile \(profile)\(beyondBudget ? " --beyond-budget" : "")   or   rmr-sim run THIS_FILE --seed \(worldSeed)")
        if let pct = crashInFlightPercent { add("set crash-in-flight \(pct)%") }
        if let cap = writeIntentCapacity { add("set write-intent-capacity \(cap)") }
        if let d = diskTiming {
            add("set disk-latency \(d.dataNanos / 1000)us")
            add("set disk-jitter \(d.jitterNanos / 1000)us")
            add("set metadata-latency \(d.metadataNanos / 1000)us")
        }
        for i in 0...rf { add("host \(hostName(i)) \(i == 0 ? "client" : "storage") ip \(address(i))") }
        for i in storage { add("disk \(hostName(i)) /dev/sda sectors \(mappedSectors * 2)") }
        // Bring-up (the guide's commands).
        let c = hostName(0)
        add("\(c)$ echo 'poolname=\(p) chunk_size=\(chunkBytes)' > /sys/class/rmr-client/ctl/join_pool")
        for i in storage {
            add("\(hostName(i))$ echo 'poolname=\(p) member_id=\(member(i))' > /sys/class/rmr-server/ctl/join_pool")
            add("\(hostName(i))$ echo 'device=/dev/sda pool=\(p) mapped_size=\(mappedSectors)' > /sys/class/brmr-server/ctl/create_store")
        }
        for i in storage {
            add("\(c)$ echo 'sessname=\(session(i)) path=ip:\(address(i)) mode=create' > /sys/class/rmr-client/pools/\(p)/add_sess")
            add("\(c)$ echo 1 > /sys/class/rmr-client/pools/\(p)/sessions/\(session(i))/enable")
        }
        for i in storage { out.append(contentsOf: syncPoolSetup(i, peers: storage)) }
        add("wait until maps clean \(p) within \(seconds(livenessNanos))")
        add("\(c)$ echo 'pool=\(p) size=\(mappedSectors)' > /sys/class/brmr-client/ctl/map_device")
        add("note --- schedule ---")
        // The schedule.
        var now: UInt64 = 0
        var openNet: [FuzzAction] = []
        var latencyPairs: [(Int, Int)] = []
        var down: Set<Int> = []
        var diskErrorHosts: Set<Int> = []
        var workloads: [String] = []
        for e in kept {
            if e.time > now { add("advance \(e.time - now)ns"); now = e.time }
            if e.action.isOperator && !openNet.isEmpty {
                add("heal")
                add("advance 3s")
                now += 3_000_000_000
                openNet = []
            }
            switch e.action {
            case .workload(let name, let options):
                workloads.append(name)
                add("workload start \(name) on \(c) dev brmr0 \(options)")
            case .linkDown(let a, let b):
                add("link down \(hostName(a)) \(hostName(b))"); openNet.append(e.action)
            case .linkUp(let a, let b):
                add("link up \(hostName(a)) \(hostName(b))")
            case .partition(let ga, let gb):
                for a in ga { for b in gb { add("partition \(hostName(a)) \(hostName(b))") } }
                openNet.append(e.action)
            case .healPartition:
                add("heal"); openNet = []
            case .oneWay(let a, let b):
                add("partition \(hostName(a)) -> \(hostName(b))"); openNet.append(e.action)
            case .oneWayEnd(let a, let b):
                add("link up \(hostName(a)) \(hostName(b))")
            case .latency(let a, let b, let us):
                add("link \(hostName(a)) \(hostName(b)) latency \(us)us jitter \(us / 2)us")
                latencyPairs.append((a, b))
            case .latencyEnd(let a, let b):
                add("link \(hostName(a)) \(hostName(b)) latency 50us jitter 20us")
                latencyPairs.removeAll { $0 == (a, b) }
            case .crash(let h):
                add("crash \(hostName(h))"); down.insert(h)
            case .crashDuring(let h, let trigger, let within):
                add("crash \(hostName(h)) during \(trigger.rawValue) within \(seconds(within))"); down.insert(h)
            case .restart(let h):
                down.remove(h)
                add("restart \(hostName(h))")
                if h == 0 {
                    add("\(c)$ echo 'poolname=\(p) chunk_size=\(chunkBytes)' > /sys/class/rmr-client/ctl/join_pool")
                    for i in storage where !down.contains(i) {
                        add("\(c)$ echo 'sessname=\(session(i)) path=ip:\(address(i)) mode=assemble' > /sys/class/rmr-client/pools/\(p)/add_sess")
                    }
                    if down.isEmpty {
                        for i in storage { add("wait until \(c): cat /sys/class/rmr-client/pools/\(p)/sessions/\(session(i))/state == normal within \(seconds(waitNanos))") }
                        add("\(c)$ echo 'pool=\(p) size=\(mappedSectors)' > /sys/class/brmr-client/ctl/map_device")
                    }
                } else {
                    let n = hostName(h)
                    add("\(n)$ echo 'poolname=\(p) member_id=\(member(h))' > /sys/class/rmr-server/ctl/join_pool")
                    add("\(n)$ echo 'device=/dev/sda pool=\(p) mapped_size=\(mappedSectors) mode=add' > /sys/class/brmr-server/ctl/add_store")
                    out.append(contentsOf: syncPoolSetup(h, peers: storage.filter { !down.contains($0) }))
                }
            case .begin(let kind, let h):
                if kind == .diskError { diskErrorHosts.insert(h) }
                out.append(contentsOf: operatorBegin(kind, h))
            case .end(let kind, let h):
                out.append(contentsOf: operatorEnd(kind, h))
            }
        }
        // Liveness: heal everything, wait for convergence, compare legs, read everything back.
        if scheduleNanos > now { add("advance \(scheduleNanos - now)ns") }
        add("note --- heal ---")
        add("heal")
        for (a, b) in latencyPairs { add("link \(hostName(a)) \(hostName(b)) latency 50us jitter 20us") }
        if !diskErrorHosts.isEmpty {
            // A backend IO error closes the store until the operator re-adds it (notes §3.4); an
            // error window may outlast the fault's end event, so repair once more after it.
            add("advance 8s")
            for h in diskErrorHosts.sorted() where !down.contains(h) {
                add("\(hostName(h))$ echo 1 > /sys/class/brmr-server/stores/\(p)/remove_store")
                add("\(hostName(h))$ echo 'device=/dev/sda pool=\(p) mapped_size=\(mappedSectors) mode=add' > /sys/class/brmr-server/ctl/add_store")
            }
        }
        for w in workloads { add("workload wait \(w) within 120s") }
        if beyondBudget {
            add("note --- beyond the budget: liveness skipped ---")
        } else {
            add("advance 3s")
            for i in storage { add("wait until \(c): cat /sys/class/rmr-client/pools/\(p)/sessions/\(session(i))/state == normal within \(seconds(livenessNanos))") }
            add("wait until maps clean \(p) within \(seconds(livenessNanos))")
            if rf >= 2 { add("assert legs identical \(p)") }
            add("assert no data lost \(c) dev brmr0")
        }
        return out.joined(separator: "\n") + "\n"
    }

    func session(_ i: Int) -> String { "psrv0@\(hostName(i))" }
    func seconds(_ n: UInt64) -> String { "\(max(1, n / 1_000_000_000))s" }

    func syncPoolSetup(_ i: Int, peers: [Int]) -> [String] {
        guard rf >= 2 else { return [] }
        let n = hostName(i), p = FuzzPlan.pool
        var out = ["\(n)$ echo 'poolname=\(p) chunk_size=\(chunkBytes) sync=y' > /sys/class/rmr-client/ctl/join_pool"]
        for j in peers where j != i {
            out.append("\(n)$ echo 'sessname=\(n)@\(hostName(j)) path=ip:\(address(j))' > /sys/class/rmr-client/pools/\(p)/add_sess")
        }
        out.append("\(n)$ echo '\(p)' > /sys/class/rmr-server/pools/\(p)/add_clt")
        return out
    }

    func waitLegNormal(_ h: Int) -> String {
        "wait until pserver: cat /sys/class/rmr-client/pools/\(FuzzPlan.pool)/sessions/\(session(h))/state == normal within \(seconds(waitNanos))"
    }
    func waitServerNormal(_ h: Int) -> String {
        "wait until \(hostName(h)): cat /sys/class/rmr-server/pools/\(FuzzPlan.pool)/state == normal within \(seconds(waitNanos))"
    }

    func operatorBegin(_ kind: FaultKind, _ h: Int) -> [String] {
        let n = hostName(h), p = FuzzPlan.pool, ctl = "/sys/class/rmr-client/pools/\(p)/sessions/\(session(h))"
        switch kind {
        case .diskError:
            return ["disk error \(n) /dev/sda for \(seconds(2_000_000_000 + (UInt64(h) * 1_000_000_000)))"]
        case .maintenance:
            return [waitLegNormal(h), "pserver$ echo 0 > \(ctl)/enable"]
        case .syncStopStart:
            return [waitServerNormal(h), "\(n)$ echo stop > /sys/class/rmr-server/pools/\(p)/sync"]
        case .disassemble:
            return [waitLegNormal(h), "pserver$ echo 'mode=disassemble' > \(ctl)/del_sess"]
        case .removeStore:
            return ["\(n)$ echo 1 > /sys/class/brmr-server/stores/\(p)/remove_store"]
        case .replaceDisk:
            // Only with every copy in place: the new disk is filled from the others.
            return storage.map(waitLegNormal) + ["wait until maps clean \(p) within \(seconds(waitNanos))",
                    "\(n)$ echo 1 > /sys/class/brmr-server/stores/\(p)/remove_store",
                    "replace disk \(n) /dev/sda",
                    "\(n)$ echo 'device=/dev/sda pool=\(p) mapped_size=\(mappedSectors) mode=replace' > /sys/class/brmr-server/ctl/add_store"]
        default:
            return []
        }
    }

    func operatorEnd(_ kind: FaultKind, _ h: Int) -> [String] {
        let n = hostName(h), p = FuzzPlan.pool, ctl = "/sys/class/rmr-client/pools/\(p)/sessions/\(session(h))"
        switch kind {
        case .diskError, .removeStore:
            var out: [String] = []
            if kind == .diskError {
                // Repair after the injected error window (begin + 2 s + host index), or the next
                // IO error closes the store again with nobody left to repair it (seed 103).
                out.append("advance \(seconds(2_000_000_000 + (UInt64(h) * 1_000_000_000)))")
                out.append("\(n)$ echo 1 > /sys/class/brmr-server/stores/\(p)/remove_store")
            }
            out.append("\(n)$ echo 'device=/dev/sda pool=\(p) mapped_size=\(mappedSectors) mode=add' > /sys/class/brmr-server/ctl/add_store")
            return out
        case .maintenance:
            return ["pserver$ echo 1 > \(ctl)/enable"]
        case .syncStopStart:
            return [waitServerNormal(h), "\(n)$ echo start > /sys/class/rmr-server/pools/\(p)/sync"]
        case .disassemble:
            return ["pserver$ echo 'sessname=\(session(h)) path=ip:\(address(h)) mode=assemble' > /sys/class/rmr-client/pools/\(p)/add_sess"]
        default:
            return []
        }
    }
}

// MARK: - Generation

public enum FuzzGenerator {
    public static func plan(seed: UInt64, profile: FuzzProfile) -> FuzzPlan {
        var cr = WorldRandom(seed: WorldRandom.subSeed(seed, "fuzz-cluster"))
        var wr = WorldRandom(seed: WorldRandom.subSeed(seed, "fuzz-workload"))
        var fr = WorldRandom(seed: WorldRandom.subSeed(seed, "fuzz-faults"))
        let rf = Int(profile.replicationFactor.draw(&cr))
        let chunkKiB = profile.chunkKiB[Int(cr.below(UInt64(profile.chunkKiB.count)))]
        let chunks = profile.chunks.draw(&cr)
        let qd = Int(min(profile.queueDepth.draw(&cr), UInt64(Limits.maxQueueDepth)))
        // Swarm: a random subset of fault kinds, each at its own rate.
        var enabled: [FaultKind] = []
        for k in profile.kinds where !k.isKnob && fr.chance(percent: profile.enablePercent) { enabled.append(k) }
        var kr = WorldRandom(seed: WorldRandom.subSeed(seed, "fuzz-knobs"))
        for k in profile.kinds where k.isKnob && kr.chance(percent: profile.enablePercent) { enabled.append(k) }
        let beyond = profile.beyondBudget
        if !beyond {
            // Operator actions that take away a leg need a second copy.
            if rf < 2 { enabled.removeAll { [.syncStopStart, .replaceDisk, .disassemble, .maintenance].contains($0) } }
        } else {
            enabled.removeAll { $0 == .replaceDisk }  // would destroy the only copy: not a bug
        }
        var plan = FuzzPlan(seed: seed, profile: profile.name, worldSeed: WorldRandom.subSeed(seed, "fuzz-world"), rf: rf,
                            chunkBytes: chunkKiB * 1024, chunks: chunks, queueDepth: qd,
                            metadataLands: enabled.contains(.metadataLands), beyondBudget: beyond, enabled: enabled,
                            events: [], groupCount: 0, scheduleNanos: profile.scheduleNanos,
                            waitNanos: profile.waitNanos, livenessNanos: profile.livenessNanos)
        if enabled.contains(.inFlight) { plan.crashInFlightPercent = kr.inRange(10, 90) }
        // A crash inside a write with every message on the wire lost is a crash before it.
        if enabled.contains(.crashMidWrite) && plan.crashInFlightPercent == nil { plan.crashInFlightPercent = 50 }
        if enabled.contains(.intentLog) { plan.writeIntentCapacity = [2, 4, 8, 16, 32][Int(kr.below(5))] }
        if enabled.contains(.diskTiming) {
            let data = [20, 100, 500, 2_000][Int(kr.below(4))] * 1_000 as UInt64
            let meta = [10, 50, 200, 1_000][Int(kr.below(4))] * 1_000 as UInt64
            plan.diskTiming = (data, data / 2, meta)
        }
        let T = profile.scheduleNanos
        let volumeBytes = chunks * chunkKiB * 1024
        var group = 0
        var events: [FuzzEvent] = []
        // Workload phases with idle gaps (duty cycle).
        let duty = max(1, profile.dutyPercent.draw(&wr))
        var t: UInt64 = 0
        var wn = 0
        var phases: [(start: UInt64, end: UInt64)] = []
        while t < T {
            let len = profile.phaseSeconds.draw(&wr) * 1_000_000_000
            let idle = len * (100 - duty) / duty
            t += wr.below(idle + 1)
            guard t + len < T else { break }
            let bs = min(profile.blockKiB[Int(wr.below(UInt64(profile.blockKiB.count)))] * 1024, chunkKiB * 1024)
            let rw = profile.patterns[Int(wr.below(UInt64(profile.patterns.count)))]
            var opts = "rw=\(rw) bs=\(bs) iodepth=\(profile.iodepth.draw(&wr)) size=\(volumeBytes / bs * bs) rate_iops=\(profile.rateIOPS.draw(&wr)) runtime=\(len / 1_000_000)ms seed=\(wr.next() >> 16)"
            if rw == "randrw" { opts += " rwmixread=\(wr.inRange(10, 90))" }
            events.append(FuzzEvent(time: t, group: group, action: .workload(name: "w\(wn)", options: opts)))
            phases.append((t, t + len))
            group += 1; wn += 1
            t += len
        }
        // Faults: candidate times per enabled kind, then admitted in time order.
        var candidates: [(UInt64, FaultKind, UInt64)] = []
        for k in enabled where k.isEvent {
            let n = profile.eventsPerKind.draw(&fr)
            for _ in 0..<n { candidates.append((fr.below(T), k, fr.next())) }
        }
        candidates.sort { $0.0 != $1.0 ? $0.0 < $1.0 : ($0.1.rawValue < $1.1.rawValue) }
        // The restart after an armed crash comes this long after the crash's deadline: the
        // rendered schedule may run the arming step late (a `heal` + 3 s before an operator step
        // puts the rendering ahead of the plan), and a restart must find the host down.
        let armedMargin: UInt64 = 10_000_000_000
        var busyUntil: UInt64 = 0   // operator actions / down hosts are serialized (within budget)
        var downUntil: [Int: UInt64] = [:]
        let hosts = rf + 1
        for (start, kind, draw) in candidates {
            var r = WorldRandom(seed: draw)
            let dur = profile.faultSeconds.draw(&r) * 1_000_000_000
            let end = start + dur
            guard end + 5_000_000_000 < T else { continue }
            func pair() -> (Int, Int) {
                let a = Int(r.below(UInt64(hosts)))
                var b = Int(r.below(UInt64(hosts - 1)))
                if b >= a { b += 1 }
                return (min(a, b), max(a, b))
            }
            let storageHost = 1 + Int(r.below(UInt64(rf)))
            if kind.isNetwork {
                guard hosts >= 2 else { continue }
                let (a, b) = pair()
                switch kind {
                case .linkFlap:
                    events.append(FuzzEvent(time: start, group: group, action: .linkDown(a, b)))
                    events.append(FuzzEvent(time: end, group: group, action: .linkUp(a, b)))
                case .oneWay:
                    let (x, y) = r.chance(percent: 50) ? (a, b) : (b, a)
                    events.append(FuzzEvent(time: start, group: group, action: .oneWay(x, y)))
                    events.append(FuzzEvent(time: end, group: group, action: .oneWayEnd(x, y)))
                case .partition:
                    var ga: [Int] = [], gb: [Int] = []
                    for h in 0..<hosts { if r.chance(percent: 50) { ga.append(h) } else { gb.append(h) } }
                    if ga.isEmpty || gb.isEmpty { ga = [a]; gb = (0..<hosts).filter { $0 != a } }
                    events.append(FuzzEvent(time: start, group: group, action: .partition(groupA: ga, groupB: gb)))
                    events.append(FuzzEvent(time: end, group: group, action: .healPartition))
                default:
                    let us = [500, 2_000, 10_000, 50_000][Int(r.below(4))]
                    events.append(FuzzEvent(time: start, group: group, action: .latency(a, b, micros: UInt64(us))))
                    events.append(FuzzEvent(time: end, group: group, action: .latencyEnd(a, b)))
                }
                group += 1
                continue
            }
            if !beyond {
                guard start >= busyUntil else { continue }
                busyUntil = end + 1_000_000_000
            } else if kind == .crashStorage || kind == .crashClient {
                let h = kind == .crashClient ? 0 : storageHost
                if let u = downUntil[h], u > start { continue }
                downUntil[h] = end
            } else {
                guard start >= busyUntil else { continue }
                busyUntil = end + 1_000_000_000
            }
            switch kind {
            case .crashStorage, .crashClient:
                let h = kind == .crashClient ? 0 : storageHost
                var end = end
                // The next moment the workload runs (now, or the start of the next phase).
                let busy = phases.first { $0.end > start }.map { max($0.start, start) }
                if enabled.contains(.crashMidWrite), let busy, busy - start < 60_000_000_000, r.chance(percent: 80) {
                    // Armed at `start`, the crash fires inside the host's next write, which the
                    // workload makes by `busy` (the bound leaves room for a slow start).
                    let within = busy - start + 5_000_000_000
                    guard end + within + armedMargin + 5_000_000_000 < T else { break }
                    events.append(FuzzEvent(time: start, group: group, action: .crashDuring(h, .write, within: within)))
                    end += within + armedMargin
                    if !beyond { busyUntil = max(busyUntil, end + 1_000_000_000) } else { downUntil[h] = end }
                } else {
                    events.append(FuzzEvent(time: start, group: group, action: .crash(h)))
                }
                events.append(FuzzEvent(time: end, group: group, action: .restart(h)))
                // "Client crash, then storage crash": a storage node also crashes while the client
                // is down and is back (disk kept) before it, so the divergences the client's
                // crash left must be found from what is on disk, not in the nodes' memory.
                if kind == .crashClient && rf >= 2 && enabled.contains(.crashPair) {
                    let s = 1 + Int(r.below(UInt64(rf)))
                    let clientDownBy = end - dur  // an armed crash has fired by then
                    let (down, up) = (clientDownBy + 1 + dur / 4, clientDownBy + dur * 3 / 4)
                    if up > down && (downUntil[s] ?? 0) <= down {
                        events.append(FuzzEvent(time: down, group: group, action: .crash(s)))
                        events.append(FuzzEvent(time: up, group: group, action: .restart(s)))
                        if beyond { downUntil[s] = up }
                    }
                }
                // Crash again while resyncing: armed right after the restart, it fires during
                // the node's next chunk-sync write (or after `within`), then a second restart.
                if kind == .crashStorage && rf >= 2 && enabled.contains(.crashDuringSync) && r.chance(percent: 60) {
                    let within: UInt64 = 20_000_000_000
                    let down2 = (1 + r.below(10)) * 1_000_000_000
                    let end2 = end + 1 + within + armedMargin + down2
                    guard end2 + 5_000_000_000 < T else { break }
                    events.append(FuzzEvent(time: end + 1, group: group, action: .crashDuring(h, .syncWrite, within: within)))
                    events.append(FuzzEvent(time: end2, group: group, action: .restart(h)))
                    if !beyond { busyUntil = max(busyUntil, end2 + 1_000_000_000) } else { downUntil[h] = end2 }
                }
            default:
                events.append(FuzzEvent(time: start, group: group, action: .begin(kind, storageHost)))
                events.append(FuzzEvent(time: end, group: group, action: .end(kind, storageHost)))
            }
            group += 1
        }
        events.sort { $0.time != $1.time ? $0.time < $1.time : $0.group < $1.group }
        plan.events = events
        plan.groupCount = group
        return plan
    }
}
