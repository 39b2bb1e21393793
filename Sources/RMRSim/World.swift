import RMRCore

// The simulated world: hosts holding one `Node` each, links, RTRS-like connections, disks,
// workloads, one virtual clock and one agenda. The world makes no protocol decision: it turns
// happenings into `Input`s, applies them to the target node and performs the returned effects.

public enum HostRole: String, Sendable { case client, storage }

public final class Host {
    public let name: String
    public let role: HostRole
    public let address: HostAddress
    public let index: Int
    public internal(set) var node: Node?
    public internal(set) var alive = true
    public internal(set) var incarnation: UInt64 = 0
    public internal(set) var disks: [SimDisk] = []
    /// Peers this host's node asked to be connected to (host indices, ascending).
    var wants: [Int] = []
    var timerAt: UInt64?
    /// The trace hash's fold of `name` (what `TraceHasher.put(name)` mixes in), made once.
    let nameFold: UInt64

    init(name: String, role: HostRole, address: HostAddress, index: Int) {
        self.name = name
        self.role = role
        self.address = address
        self.index = index
        nameFold = TraceHasher.contentFold(name)
    }

    public func disk(named name: String) -> SimDisk? {
        if let d = disks.first(where: { $0.name == name }) { return d }
        if !name.hasPrefix("/dev/") { return disks.first(where: { $0.name == "/dev/" + name }) }
        return nil
    }
}

public struct WorldConfig: Sendable {
    /// Delay before a broken connection is re-established (RTRS reconnect delay).
    public var reconnectDelayNanos: UInt64 = 1_000_000_000
    /// Delay of a first connection (handshake).
    public var connectDelayNanos: UInt64 = 200_000
    /// One direction down for this long breaks the connection (heartbeat loss).
    public var heartbeatTimeoutNanos: UInt64 = 1_000_000_000
    public var diskLatencyNanos: UInt64 = 100_000
    public var diskJitterNanos: UInt64 = 50_000
    public var metadataLatencyNanos: UInt64 = 200_000
    /// At a crash, each message the crashed host had on the wire (sent, not yet delivered)
    /// still reaches its peer with this probability, independently; the rest are lost. 0: all
    /// are lost (the peers see the connection drop first). Scenario: `set crash-in-flight N%`.
    public var crashInFlightLandPercent: UInt64 = 0
    /// Core options for every node (the simulator verifies invariants).
    public var nodeOptions = NodeOptions(verify: true)
    public init() {}
}

enum StoreKind {
    case read(offset: UInt64, length: UInt64)
    case write(id: UInt64)
    case flush
    case missing
}

enum SimEvent {
    case input(host: Int, incarnation: UInt64, Input)
    case message(from: Int, to: Int, epoch: UInt64, Message)
    case timer(host: Int, incarnation: UInt64)
    case storeDone(host: Int, incarnation: UInt64, disk: SimDisk?, tag: StoreTag, kind: StoreKind)
    case metadataDone(host: Int, incarnation: UInt64, disk: SimDisk?, id: UInt64, tag: PersistTag)
    case connectAttempt(key: Int, attempt: UInt64)
    case heartbeat(key: Int, epoch: UInt64)
    case workloadIssue(Int)
    /// A triggered crash (`crash HOST during sync|write`): crash the host if it is still the same
    /// incarnation.
    case crashHost(host: Int, incarnation: UInt64, CrashTrigger)
    /// The end of an armed crash's window: crash now if it has not fired.
    case crashDeadline(host: Int, incarnation: UInt64)
}

/// What an armed crash waits for (`crash HOST during sync|write within D`).
public enum CrashTrigger: String, Sendable {
    case syncWrite = "sync"
    case write
}

struct Connection {
    var established = false
    var epoch: UInt64 = 0
    var attempt: UInt64 = 0
    var attemptPending = false
    var everEstablished = false
    var heartbeatPending = false
}

/// Why a run stopped early.
public struct SimFailure: Sendable, CustomStringConvertible {
    public var message: String
    public var time: UInt64
    public var description: String { message }
}

public final class World {
    public let seed: UInt64
    public var config: WorldConfig
    public private(set) var now: UInt64 = 0
    var queue = EventQueue<SimEvent>()
    public internal(set) var hosts: [Host] = []
    var hostByName: [String: Int] = [:]
    var hostByAddress = AddressTable()
    public var network: Network
    var connections = ConnectionTable()
    var diskRandom: WorldRandom
    var crashRandom: WorldRandom
    let nodeSeedBase: UInt64
    let workloadSeedBase: UInt64
    public let trace: Trace
    public internal(set) var failure: SimFailure?
    public var expectedRejections: [String] = []
    /// While an admin step declared `expect error E`, the core's rejection of that command
    /// (its text names the errno) is expected too.
    public var expectedAdminErrno: Errno?
    var adminResults: [UInt64: AdminResult] = [:]
    var nextToken: UInt64 = 1
    var nextOpID: UInt64 = 1
    var nextBlockTag: UInt64 = 1
    public internal(set) var workloads: [Workload] = []
    /// Workload IOs in flight by block tag (sequential; an integer-keyed table, not a SipHash
    /// dictionary: one insert and one removal per IO).
    var blockTags = IntKeyedTable<UInt64, (workload: Int, isWrite: Bool)>()
    /// The effect list `apply` hands to each node, reused from input to input.
    var effectBuffer: [Effect] = []
    public internal(set) var models: [String: DataModel] = [:]
    /// Number of `Node.apply` calls.
    public private(set) var coreEvents: UInt64 = 0
    public private(set) var rejections: [Rejection] = []
    public private(set) var probes: [CoverageProbe: Int] = [:]
    var lastTimerInstant: UInt64 = .max
    var timerFiresAtInstant = 0
    public var timeline: TimelineRecorder?
    /// Fuzzer checkers: sees every effect before the world performs it (nil: no cost).
    public var effectHook: ((World, Int, Effect) -> Void)?
    /// Every input given to a node, in order, with its host index and time; nil (the default)
    /// keeps none. `rmr-bench sim` replays it into copies of the nodes: the core alone, side
    /// by side with the simulator.
    public var inputLog: [(host: Int, time: UInt64, input: Input)]?
    /// Hosts armed by `crash HOST during sync|write`, with what they wait for.
    var crashTriggers: [(host: Int, on: CrashTrigger)] = []
    /// Crashes that `crash HOST during sync` placed inside a chunk-sync write (not at its timeout).
    public private(set) var crashesDuringSyncWrite = 0
    /// Crashes that `crash HOST during write` placed inside a write (not at its timeout).
    public private(set) var crashesDuringWrite = 0

    public init(seed: UInt64, config: WorldConfig = WorldConfig()) {
        self.seed = seed
        self.config = config
        network = Network(seed: WorldRandom.subSeed(seed, "network"))
        diskRandom = WorldRandom(seed: WorldRandom.subSeed(seed, "disk"))
        crashRandom = WorldRandom(seed: WorldRandom.subSeed(seed, "crash"))
        nodeSeedBase = WorldRandom.subSeed(seed, "node")
        workloadSeedBase = WorldRandom.subSeed(seed, "workload")
        trace = Trace()
    }

    // MARK: - Building the world

    @discardableResult
    public func addHost(name: String, role: HostRole, address: HostAddress) -> Host {
        precondition(hosts.count < Network.maxHosts, "too many hosts")
        precondition(hostByName[name] == nil, "duplicate host \(name)")
        let h = Host(name: name, role: role, address: address, index: hosts.count)
        hosts.append(h)
        hostByName[name] = h.index
        hostByAddress[address] = h.index
        h.node = makeNode(h)
        return h
    }

    func makeNode(_ h: Host) -> Node {
        let s = WorldRandom.subSeed(nodeSeedBase, "\(h.name)#\(h.incarnation)")
        return Node(host: h.name, address: h.address, seed: s, options: config.nodeOptions)
    }

    public func host(_ name: String) -> Host? { hostByName[name].map { hosts[$0] } }

    /// Shared by all disks: a chunk read on one leg and written on another is stored without a copy.
    let readOrigins = ReadOrigins()

    @discardableResult
    public func addDisk(host: String, name: String, sectors: UInt64) -> SimDisk {
        let h = self.host(host)!
        let d = SimDisk(name: name, sizeSectors: sectors, origins: readOrigins)
        d.latencyNanos = config.diskLatencyNanos
        d.jitterNanos = config.diskJitterNanos
        if let i = h.disks.firstIndex(where: { $0.name == name }) { h.disks[i] = d } else { h.disks.append(d) }
        return d
    }

    // MARK: - The agenda

    func schedule(_ at: UInt64, _ e: consuming SimEvent) { queue.push(at: max(at, now), e) }

    func deliver(_ h: Int, _ input: Input, at t: UInt64? = nil) {
        schedule(t ?? now, .input(host: h, incarnation: hosts[h].incarnation, input))
    }

    /// Processes one event; false if the agenda is empty or the time limit is reached.
    @discardableResult
    public func step(until limit: UInt64 = .max) -> Bool {
        guard failure == nil, let t = queue.earliestTime, t <= limit else { return false }
        let (time, _, event) = queue.pop()!
        now = time
        handle(consume event)
        if let tl = timeline { tl.maybeSample(self) }
        return true
    }

    /// Runs until `limit` (the clock ends at `limit`) or until `stop` holds after an event.
    /// Returns true if `stop` held.
    @discardableResult
    public func run(until limit: UInt64, stop: (() -> Bool)? = nil) -> Bool {
        if let stop, stop() { return true }
        while failure == nil {
            guard step(until: limit) else { break }
            if let stop, stop() { return true }
        }
        if failure == nil && now < limit { now = limit }
        return false
    }

    func handle(_ event: consuming SimEvent) {
        switch consume event {
        case .input(let h, let inc, let input):
            guard hosts[h].alive, hosts[h].incarnation == inc else { return }
            apply(h, input)
        case .message(let from, let to, let epoch, let m):
            let key = pairKey(from, to)
            guard let c = connections[key], c.established, c.epoch == epoch, network.isUp(from: from, to: to),
                  hosts[to].alive else {
                trace.note(now, hosts[to].name, "lost in flight: " + messageText(m) + " from \(hosts[from].name)", self)
                return
            }
            apply(to, .received(m, from: hosts[from].address))
        case .timer(let h, let inc):
            let host = hosts[h]
            guard host.alive, host.incarnation == inc, host.timerAt == now else { return }
            host.timerAt = nil
            if lastTimerInstant == now {
                timerFiresAtInstant += 1
                if timerFiresAtInstant > 10_000 {
                    fail("livelock: \(host.name)'s nextDeadline stays at \(formatTime(now)) after timerFired")
                    return
                }
            } else {
                lastTimerInstant = now
                timerFiresAtInstant = 0
            }
            apply(h, .timerFired)
        case .storeDone(let h, let inc, let disk, let tag, let kind):
            guard hosts[h].alive, hosts[h].incarnation == inc else { return }
            let attached = disk.map { d in hosts[h].disks.contains { $0 === d } } ?? false
            let result: StoreResult
            switch kind {
            case .missing:
                result = .failed(.EIO)
            case .write(let id):
                if !attached || disk!.takeInjectedError(at: now) {
                    disk?.dropWrite(id: id)
                    result = .failed(.EIO)
                } else {
                    disk!.completeWrite(id: id)
                    result = .ok(data: [])
                }
            case .read(let off, let len):
                if !attached || disk!.takeInjectedError(at: now) { result = .failed(.EIO) } else { result = .ok(data: disk!.read(offset: off, length: len)) }
            case .flush:
                result = attached ? .ok(data: []) : .failed(.EIO)
            }
            apply(h, .storeCompleted(tag, result))
        case .metadataDone(let h, let inc, let disk, let id, let tag):
            guard hosts[h].alive, hosts[h].incarnation == inc else { return }
            var ok = false
            if let disk, hosts[h].disks.contains(where: { $0 === disk }) { ok = disk.completeMetadata(id: id) }
            apply(h, .persistCompleted(tag, ok: ok))
        case .connectAttempt(let key, let attempt):
            guard var c = connections[key], c.attempt == attempt else { return }
            c.attemptPending = false
            connections[key] = c
            let (x, y) = (key / Network.maxHosts, key % Network.maxHosts)
            if desired(x, y) && possible(x, y) && !c.established {
                c.established = true
                c.epoch += 1
                c.everEstablished = true
                connections[key] = c
                trace.note(now, hosts[x].name, "connection \(hosts[x].name) <-> \(hosts[y].name) up", self)
                deliver(x, .linkUp(peer: hosts[y].address))
                deliver(y, .linkUp(peer: hosts[x].address))
            } else {
                reconcile(x, y)
            }
        case .heartbeat(let key, let epoch):
            guard var c = connections[key] else { return }
            c.heartbeatPending = false
            connections[key] = c
            let (x, y) = (key / Network.maxHosts, key % Network.maxHosts)
            if c.established && c.epoch == epoch && !possible(x, y) { breakConnection(key, reason: "heartbeat lost") }
            reconcile(x, y)
        case .workloadIssue(let w):
            workloads[w].issuePending = false
            issue(workloads[w])
        case .crashHost(let h, let inc, let trigger):
            guard hosts[h].alive, hosts[h].incarnation == inc else { return }
            switch trigger {
            case .syncWrite:
                trace.note(now, hosts[h].name, "triggered crash: chunk-sync write in flight", self)
                crashesDuringSyncWrite += 1
            case .write:
                trace.note(now, hosts[h].name, "triggered crash: write in flight", self)
                crashesDuringWrite += 1
            }
            crash(hosts[h].name)
        case .crashDeadline(let h, let inc):
            guard hosts[h].alive, hosts[h].incarnation == inc, let i = crashTriggers.firstIndex(where: { $0.host == h }) else { return }
            trace.note(now, hosts[h].name, "armed crash (during \(crashTriggers[i].on.rawValue)) timed out: crashing now", self)
            crashTriggers.remove(at: i)
            crash(hosts[h].name)
        }
    }

    /// Applies one input to a node and performs its effects in order.
    func apply(_ h: Int, _ input: consuming Input) {
        let host = hosts[h]
        if inputLog != nil { inputLog!.append((h, now, input)) }
        trace.applyingInput(now, host, input)
        // The node writes into the world's effect buffer (taken, so a nested apply would find
        // it empty), and each effect is moved out of it to be performed: no copy per effect.
        var effects: [Effect] = []
        swap(&effects, &effectBuffer)
        let deadline = World.applyInPlace(&host.node!, input, now, &effects)
        coreEvents &+= 1
        if trace.keepsRecords { trace.applied(now, host.name, consume input, effects) }
        // (If the trace kept the list, the first write below copies the buffer: the kept
        // records stay as they were.)
        let hostDied = effects.withUnsafeMutableBufferPointer { list -> Bool in
            for i in 0..<list.count {
                let effect = (list.baseAddress! + i).move()
                (list.baseAddress! + i).initialize(to: World.movedOut)
                trace.performingEffect(now, host, effect)
                perform(effect, from: h)
                if !host.alive { return true }
            }
            return false
        }
        effects.removeAll(keepingCapacity: true)
        swap(&effects, &effectBuffer)
        if hostDied { return }
        if let d = deadline {
            let t = max(d.nanos, now)
            if host.timerAt != t {
                host.timerAt = t
                schedule(t, .timer(host: h, incarnation: host.incarnation))
            }
        }
    }

    /// What a performed effect leaves in the buffer (a case with nothing to release).
    static let movedOut = Effect.ignored(.staleTimer)

    /// One in-place access: reading `nextDeadline` through `host.node!` would copy the whole
    /// Node (performing effects never changes the node, so reading it first is the same).
    @inline(__always)
    static func applyInPlace(_ node: inout Node, _ input: Input, _ now: UInt64, _ effects: inout [Effect]) -> Instant? {
        node.apply(input, at: Instant(nanos: now), into: &effects)
        return node.nextDeadline
    }

    func fail(_ message: String) {
        if failure == nil { failure = SimFailure(message: message, time: now) }
    }

    // MARK: - Effects

    func perform(_ effect: consuming Effect, from h: Int) {
        let host = hosts[h]
        // The trace record of `effect` was made by `apply` (it keeps the list, not a copy).
        if let hook = effectHook { hook(self, h, effect) }
        // Consumed: a message's payload moves on into the event that delivers it.
        switch consume effect {
        case .send(let m, let to):
            guard let dst = hostByAddress[to] else {
                trace.note(now, host.name, "dropped (no host at \(to)): " + messageText(m), self)
                return
            }
            let key = pairKey(h, dst)
            guard let c = connections[key], c.established else {
                trace.note(now, host.name, "dropped (not connected to \(hosts[dst].name)): " + messageText(m), self)
                return
            }
            guard let t = network.arrivalTime(from: h, to: dst, bytes: messageBytes(m), now: now) else {
                trace.note(now, host.name, "lost (link \(host.name) -> \(hosts[dst].name) down): " + messageText(m), self)
                return
            }
            var isWrite = false
            if !crashTriggers.isEmpty, case .request(_, _, .io(let r)) = m, r.op == .write { isWrite = true }
            schedule(t, .message(from: h, to: dst, epoch: c.epoch, m))
            if isWrite, takeTrigger(h, .write) {
                // While this write request is on the wire (a client's fan-out: the legs it has
                // not reached yet see it or not, by `crash-in-flight`).
                schedule(now + crashRandom.below(t - now + 1), .crashHost(host: h, incarnation: host.incarnation, .write))
            }
        case .connect(let peer):
            guard let dst = hostByAddress[peer], dst != h else {
                trace.note(now, host.name, "connect: no host at \(peer)", self)
                return
            }
            if !host.wants.contains(dst) {
                host.wants.append(dst)
                host.wants.sort()
                if let c = connections[pairKey(h, dst)], c.established { deliver(h, .linkUp(peer: peer)) }
            }
            reconcile(h, dst)
        case .disconnect(let peer):
            guard let dst = hostByAddress[peer] else { return }
            host.wants.removeAll { $0 == dst }
            reconcile(h, dst)
        case .submitStore(let tag, let device, let op):
            if !crashTriggers.isEmpty, case .write(let off, let data) = op {
                let sync = isChunkSyncWrite(h, device, offset: off, length: data.count)
                if takeTrigger(h, sync ? .syncWrite : .write) {
                    // Crash somewhere between now and the slower of this data write and a
                    // metadata write issued with it.
                    let d = host.disk(named: device)
                    let span = max(d.map { $0.latencyNanos + $0.jitterNanos } ?? config.diskLatencyNanos,
                                   config.metadataLatencyNanos + (d?.jitterNanos ?? 0))
                    schedule(now + crashRandom.below(span + 1), .crashHost(host: h, incarnation: host.incarnation, sync ? .syncWrite : .write))
                }
            }
            let disk = host.disk(named: device)
            let t = now + (disk.map { $0.latencyNanos + diskRandom.below($0.jitterNanos + 1) } ?? config.diskLatencyNanos)
            let kind: StoreKind
            if let disk {
                switch op {
                case .read(let off, let len): kind = .read(offset: off, length: len)
                case .write(let off, let data):
                    let id = nextOpID
                    nextOpID += 1
                    disk.beginWrite(id: id, offset: off, data: data)
                    kind = .write(id: id)
                case .flush: kind = .flush
                }
            } else {
                kind = .missing
            }
            schedule(t, .storeDone(host: h, incarnation: host.incarnation, disk: disk, tag: tag, kind: kind))
        case .persist(let tag, let device, let record):
            metadata(h, device, tag, .persist(record))
        case .formatStore(let tag, let device, let state):
            metadata(h, device, tag, .format(state))
        case .wipeStore(let tag, let device):
            metadata(h, device, tag, .wipe)
        case .completeBlockIO(let tag, let result):
            blockIOCompleted(tag.raw, result)
        case .completeAdmin(let token, let result):
            adminResults[token.raw] = result
        case .transitioned(let t):
            timeline?.transition(now, host: host.name, t)
        case .rejected(let r):
            rejections.append(r)
            let text = r.description
            let adminExpected = expectedAdminErrno.map { text.contains("\($0.description):") } ?? false
            if !adminExpected && !expectedRejections.contains(where: { text.contains($0) }) {
                fail("unexpected rejection on \(host.name): \(text)")
            }
        case .ignored:
            break
        case .probe(let p):
            probes[p, default: 0] += 1
        }
    }

    func metadata(_ h: Int, _ device: String, _ tag: PersistTag, _ op: MetadataOperation) {
        let host = hosts[h]
        let id = nextOpID
        nextOpID += 1
        guard let disk = host.disk(named: device) else {
            schedule(now + config.metadataLatencyNanos, .metadataDone(host: h, incarnation: host.incarnation, disk: nil, id: id, tag: tag))
            return
        }
        disk.beginMetadata(id: id, op)
        // Completions for one disk in issue order: never before the previous one.
        let t = max(now + config.metadataLatencyNanos + diskRandom.below(disk.jitterNanos + 1), disk.lastMetadataCompletion)
        disk.lastMetadataCompletion = t
        schedule(t, .metadataDone(host: h, incarnation: host.incarnation, disk: disk, id: id, tag: tag))
    }

    func messageBytes(_ m: Message) -> Int {
        switch m {
        case .request(_, _, .io(let r)): return 64 + r.data.count
        case .response(_, _, .data(let d)): return 64 + d.count
        default: return 256
        }
    }

    func messageText(_ m: Message) -> String { var s = ""; Canonical.message(m, &s); return s }

    // MARK: - Connections

    func pairKey(_ a: Int, _ b: Int) -> Int { min(a, b) * Network.maxHosts + max(a, b) }

    func desired(_ x: Int, _ y: Int) -> Bool {
        (hosts[x].alive && hosts[x].wants.contains(y)) || (hosts[y].alive && hosts[y].wants.contains(x))
    }

    func possible(_ x: Int, _ y: Int) -> Bool {
        hosts[x].alive && hosts[y].alive && network.isConnected(x, y)
    }

    func breakConnection(_ key: Int, reason: String) {
        guard var c = connections[key], c.established else { return }
        c.established = false
        c.epoch += 1
        connections[key] = c
        let (x, y) = (key / Network.maxHosts, key % Network.maxHosts)
        trace.note(now, hosts[x].name, "connection \(hosts[x].name) <-> \(hosts[y].name) down (\(reason))", self)
        if hosts[x].alive { deliver(x, .linkDown(peer: hosts[y].address)) }
        if hosts[y].alive { deliver(y, .linkDown(peer: hosts[x].address)) }
    }

    /// Brings the connection between two hosts in line with wishes, liveness and links.
    func reconcile(_ a: Int, _ b: Int) {
        let (x, y) = (min(a, b), max(a, b))
        let key = pairKey(x, y)
        var c = connections[key] ?? Connection()
        connections[key] = c
        let want = desired(x, y)
        let can = possible(x, y)
        if c.established && !(want && can) {
            let oneWay = hosts[x].alive && hosts[y].alive && (network.isUp(from: x, to: y) || network.isUp(from: y, to: x))
            if want && oneWay {
                // Asymmetric partition: messages one way are lost; the connection dies when the
                // heartbeat times out.
                if !c.heartbeatPending {
                    c.heartbeatPending = true
                    connections[key] = c
                    schedule(now + config.heartbeatTimeoutNanos, .heartbeat(key: key, epoch: c.epoch))
                }
            } else {
                breakConnection(key, reason: !want ? "no longer wanted" : (!hosts[x].alive || !hosts[y].alive ? "host down" : "link down"))
            }
            c = connections[key]!
        }
        if !c.established && want && can && !c.attemptPending {
            c.attempt += 1
            c.attemptPending = true
            connections[key] = c
            let delay = c.everEstablished ? config.reconnectDelayNanos : config.connectDelayNanos
            schedule(now + delay, .connectAttempt(key: key, attempt: c.attempt))
        }
    }

    func reconcileAll(_ h: Int) {
        for other in hosts.indices where other != h { reconcile(h, other) }
    }

    // MARK: - Faults

    public func setLink(_ a: String, _ b: String, up: Bool, oneWay: Bool = false) {
        let x = hostByName[a]!, y = hostByName[b]!
        network.setUp(from: x, to: y, up)
        if !oneWay { network.setUp(from: y, to: x, up) }
        trace.note(now, a, "link \(a) \(oneWay ? "->" : "<->") \(b) \(up ? "up" : "down")", self)
        timeline?.marker(now, host: a, "link \(up ? "up" : "down") \(b)", fault: !up)
        reconcile(x, y)
    }

    public func heal() {
        network.setAllUp()
        trace.note(now, "world", "heal: all links up", self)
        for x in hosts.indices { for y in hosts.indices where x < y { reconcile(x, y) } }
    }

    /// Arms `crash HOST during sync|write`. `.syncWrite`: the host crashes at a random instant
    /// while its next chunk-sync write (a whole-chunk write to a chunk it holds locked for sync)
    /// is in flight. `.write`: while its next write is in flight — a write request it sends (on
    /// the wire) or a data write it submits to its disk.
    /// If nothing fires it by `now + within`, the host crashes then.
    public func armCrash(_ name: String, on trigger: CrashTrigger, within: UInt64) {
        let h = hostByName[name]!
        guard hosts[h].alive else { return }
        crashTriggers.removeAll { $0.host == h }
        crashTriggers.append((h, trigger))
        schedule(now + within, .crashDeadline(host: h, incarnation: hosts[h].incarnation))
    }

    public func hasArmedCrash(_ name: String) -> Bool { crashTriggers.contains { $0.host == hostByName[name]! } }

    /// True (and disarms) if `h` is armed for `trigger`.
    func takeTrigger(_ h: Int, _ trigger: CrashTrigger) -> Bool {
        guard let i = crashTriggers.firstIndex(where: { $0.host == h && $0.on == trigger }) else { return false }
        crashTriggers.remove(at: i)
        return true
    }

    func isChunkSyncWrite(_ h: Int, _ device: String, offset: UInt64, length: Int) -> Bool {
        guard let node = hosts[h].node else { return false }
        let chunkBytes = config.nodeOptions.serverChunkBytes
        guard UInt64(length) == chunkBytes, offset % chunkBytes == 0 else { return false }
        for pool in node.serverPoolNames where node.store(forPool: pool)?.device == device {
            if node.isChunkLocked(pool: pool, chunk: offset / chunkBytes) { return true }
        }
        return false
    }

    public func crash(_ name: String) {
        let h = hostByName[name]!
        let host = hosts[h]
        guard host.alive else { return }
        crashTriggers.removeAll { $0.host == h }
        for d in host.disks {
            let r = d.crash(random: &crashRandom)
            for w in r.writes {
                trace.note(now, name, "crash: \(d.name) pending write at \(w.offset): \(w.landed)/\(w.total) sectors landed", self)
            }
            if r.lostMetadataOperations > 0 {
                trace.note(now, name, "crash: \(d.name) lost \(r.lostMetadataOperations) pending metadata operations", self)
            }
        }
        host.alive = false
        host.node = nil
        host.incarnation += 1
        host.wants = []
        host.timerAt = nil
        trace.note(now, name, "CRASH \(name)", self)
        landInFlightMessages(from: h)
        timeline?.marker(now, host: name, "crash", fault: true)
        for w in workloads where w.host == h && !w.finished { workloadHostCrashed(w) }
        reconcileAll(h)
    }

    /// Messages the crashed host `h` had on the wire: with `crashInFlightLandPercent` each one
    /// independently reaches its peer now (it had left the host before the crash), before the
    /// peer sees the connection drop; the others are lost with the connection.
    func landInFlightMessages(from h: Int) {
        guard config.crashInFlightLandPercent > 0 else { return }
        let onTheWire = queue.pending { event in
            if case .message(let from, _, _, _) = event { return from == h }
            return false
        }
        for (_, _, event) in onTheWire {
            guard case .message(_, let to, let epoch, let m) = event else { continue }
            guard crashRandom.below(100) < config.crashInFlightLandPercent else { continue }
            guard let c = connections[pairKey(h, to)], c.established, c.epoch == epoch,
                  network.isUp(from: h, to: to), hosts[to].alive else { continue }
            trace.note(now, hosts[to].name, "landed from crashed \(hosts[h].name): " + messageText(m), self)
            apply(to, .received(m, from: hosts[h].address))
            if failure != nil { return }
        }
    }

    public func restart(_ name: String) {
        let h = hostByName[name]!
        let host = hosts[h]
        guard !host.alive else { return }
        host.alive = true
        host.node = makeNode(host)
        trace.note(now, name, "RESTART \(name) (new node, incarnation \(host.incarnation))", self)
        timeline?.marker(now, host: name, "restart", fault: false)
        reconcileAll(h)
    }

    // MARK: - Admin

    /// Submits a parsed admin write; returns its token (the answer arrives as `adminResult`).
    public func submitAdmin(host name: String, _ command: AdminCommand) -> UInt64? {
        let h = hostByName[name]!
        guard hosts[h].alive else { return nil }
        let token = nextToken
        nextToken += 1
        var probe: DeviceProbe?
        if let dev = command.deviceToProbe {
            if let d = hosts[h].disk(named: dev) {
                probe = .present(sizeSectors: d.sizeSectors, metadata: d.metadata)
            } else {
                probe = .missing
            }
        }
        timeline?.marker(now, host: name, shortAdmin(command), fault: false)
        deliver(h, .admin(command, token: AdminToken(token), probe: probe))
        return token
    }

    public func adminResult(_ token: UInt64) -> AdminResult? { adminResults[token] }

    func shortAdmin(_ c: AdminCommand) -> String {
        let s = String(describing: c)
        return String(s.prefix(while: { $0 != "(" }))
    }
}
