// A minimal in-memory driver for core tests (the style guide's `Pair`, generalised to N hosts):
// FIFO links with a fixed latency, in-memory disks whose writes complete after a fixed latency,
// persists applied to a DurablePoolState in issue order, timers, link cut/restore, crashes.
// It has no protocol logic: it only performs the effects the nodes return.
import Testing
@testable import RMRCore

struct TestDisk {
    var sizeSectors: UInt64
    var data: [UInt64: [UInt8]] = [:]  // 512-byte sectors
    var durable: DurablePoolState?
    var failWrites = false

    func read(_ offset: UInt64, _ length: UInt64) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(Int(length))
        var o = offset
        while o < offset + length {
            let sector = o / 512
            let within = Int(o % 512)
            let take = min(512 - within, Int(offset + length - o))
            let bytes = data[sector] ?? Array(repeating: 0, count: 512)
            out.append(contentsOf: bytes[within..<(within + take)])
            o += UInt64(take)
        }
        return out
    }

    mutating func write(_ offset: UInt64, _ bytes: [UInt8]) {
        var o = offset
        var i = 0
        while i < bytes.count {
            let sector = o / 512
            let within = Int(o % 512)
            let take = min(512 - within, bytes.count - i)
            var s = data[sector] ?? Array(repeating: 0, count: 512)
            s.replaceSubrange(within..<(within + take), with: bytes[i..<(i + take)])
            data[sector] = s
            o += UInt64(take); i += take
        }
    }
}

struct TestHost {
    var name: String
    var address: HostAddress
    var node: Node
    var alive = true
    var disks: [String: TestDisk] = [:]
}

enum TestEvent {
    case deliver(to: HostAddress, Input)
    case timer(HostAddress)
}

final class TestCluster {
    var hosts: [TestHost] = []
    var now = Instant.zero
    var queue: [(time: Instant, seq: UInt64, event: TestEvent)] = []
    var seq: UInt64 = 0
    var latency = Duration.milliseconds(1)
    var diskLatency = Duration.milliseconds(1)
    /// Links that are cut, as "a|b" with a < b.
    var cut: Set<String> = []
    /// Connections a node asked for (from, to).
    var wanted: [(HostAddress, HostAddress)] = []
    var connected: Set<String> = []
    var adminResults: [UInt64: AdminResult] = [:]
    var blockResults: [UInt64: BlockIOResult] = [:]
    var transitions: [Transition] = []
    var rejections: [Rejection] = []
    var probes: [CoverageProbe] = []
    var nextToken: UInt64 = 1
    var timers: [HostAddress: Instant] = [:]
    /// Directed drops "from>to": messages silently lost while the link stays up.
    var dropping: Set<String> = []
    /// Directed extra delays "from>to". Links stay FIFO: a message never overtakes one sent
    /// before it on the same direction, even when a delay is lowered.
    var delays: [String: Duration] = [:]
    var lastDelivery: [String: Instant] = [:]
    var syncQueueDepth = 32
    /// Inputs applied so far, and the effect buffer of `Node.apply(_:at:into:)`.
    var applied = 0
    var buffer: [Effect] = []

    func addHost(_ name: String, _ address: HostAddress, disks: [String: UInt64] = [:], queueDepth: Int = 16) {
        var h = TestHost(name: name, address: address,
                         node: Node(host: name, address: address, seed: UInt64(hosts.count + 1) * 7919,
                                    options: NodeOptions(verify: true, queueDepth: queueDepth, syncQueueDepth: syncQueueDepth)))
        for (d, size) in disks { h.disks[d] = TestDisk(sizeSectors: size) }
        hosts.append(h)
    }

    func index(_ nameOrAddress: String) -> Int {
        hosts.firstIndex { $0.name == nameOrAddress || $0.address == nameOrAddress }!
    }

    func linkKey(_ a: HostAddress, _ b: HostAddress) -> String { a < b ? "\(a)|\(b)" : "\(b)|\(a)" }

    func schedule(_ after: Duration, _ event: TestEvent) {
        seq += 1
        queue.append((now + after, seq, event))
    }

    /// Applies an input to a host now and performs the effects.
    func apply(_ host: Int, _ input: Input) {
        guard hosts[host].alive else { return }
        applied += 1
        let effects: [Effect]
        if applied % 2 == 0 {
            // Every other input goes through the buffer-filling entry point (the simulator's),
            // every eighth also through the returning one on a twin of the node: the same
            // effects, the same node afterwards.
            var twin: Node? = applied % 8 == 0 ? hosts[host].node : nil
            hosts[host].node.apply(input, at: now, into: &buffer)
            effects = buffer
            if twin != nil {
                let returned = twin!.apply(input, at: now)
                #expect(returned == effects, "apply(into:) and apply(_:at:) differ on \(input.kindName)")
                #expect(twin!.nextDeadline == hosts[host].node.nextDeadline)
            }
        } else {
            effects = hosts[host].node.apply(input, at: now)
        }
        for e in effects { perform(e, from: host) }
        if let d = hosts[host].node.nextDeadline, timers[hosts[host].address] != d {
            timers[hosts[host].address] = d
            seq += 1
            queue.append((max(d, now), seq, .timer(hosts[host].address)))
        }
    }

    func perform(_ effect: Effect, from h: Int) {
        let me = hosts[h].address
        switch effect {
        case .send(let m, let to):
            let direction = "\(me)>\(to)"
            if connected.contains(linkKey(me, to)) && !dropping.contains(direction) {
                let at = max(now + latency + (delays[direction] ?? Duration(nanos: 0)), lastDelivery[direction] ?? .zero)
                lastDelivery[direction] = at
                schedule(at.since(now), .deliver(to: to, .received(m, from: me)))
            }
        case .connect(let peer):
            wanted.append((me, peer))
            tryConnect(me, peer)
        case .disconnect: break
        case .submitStore(let tag, let device, let op):
            var disk = hosts[h].disks[device]!
            let result: StoreResult
            switch op {
            case .read(let off, let len): result = .ok(data: disk.read(off, len))
            case .write(let off, let data):
                if disk.failWrites { result = .failed(.EIO) } else { disk.write(off, data); result = .ok(data: []) }
            case .flush: result = .ok(data: [])
            }
            hosts[h].disks[device] = disk
            schedule(diskLatency, .deliver(to: me, .storeCompleted(tag, result)))
        case .persist(let tag, let device, let record):
            for u in record.updates { hosts[h].disks[device]!.durable!.apply(u) }
            schedule(diskLatency, .deliver(to: me, .persistCompleted(tag, ok: true)))
        case .formatStore(let tag, let device, let state):
            hosts[h].disks[device]!.durable = state
            hosts[h].disks[device]!.data = [:]
            schedule(diskLatency, .deliver(to: me, .persistCompleted(tag, ok: true)))
        case .wipeStore(let tag, let device):
            hosts[h].disks[device]!.durable = nil
            schedule(diskLatency, .deliver(to: me, .persistCompleted(tag, ok: true)))
        case .completeBlockIO(let tag, let result): blockResults[tag.raw] = result
        case .completeAdmin(let token, let result): adminResults[token.raw] = result
        case .transitioned(let t): transitions.append(t)
        case .rejected(let r): rejections.append(r)
        case .ignored: break
        case .probe(let p): probes.append(p)
        }
    }

    func tryConnect(_ a: HostAddress, _ b: HostAddress) {
        let key = linkKey(a, b)
        guard !connected.contains(key), !cut.contains(key) else { return }
        let ia = index(a), ib = index(b)
        guard hosts[ia].alive, hosts[ib].alive else { return }
        connected.insert(key)
        schedule(latency, .deliver(to: a, .linkUp(peer: b)))
        schedule(latency, .deliver(to: b, .linkUp(peer: a)))
    }

    /// Runs events until the queue is empty or `until` is reached.
    func run(until end: Instant? = nil, maxEvents: Int = 2_000_000) {
        var n = 0
        while n < maxEvents {
            guard let i = queue.indices.min(by: { (queue[$0].time, queue[$0].seq) < (queue[$1].time, queue[$1].seq) }) else { break }
            if let end, queue[i].time > end { now = end; return }
            let item = queue.remove(at: i)
            now = max(now, item.time)
            n += 1
            switch item.event {
            case .deliver(let to, let input):
                apply(index(to), input)
            case .timer(let addr):
                let h = index(addr)
                guard let d = hosts[h].node.nextDeadline, d <= now else { continue }
                timers[addr] = nil
                apply(h, .timerFired)
            }
        }
        if let end { now = max(now, end) }
    }

    func advance(_ d: Duration) { run(until: now + d) }

    /// Runs an admin command to completion (like a blocking sysfs write) and returns its result.
    @discardableResult
    func admin(_ host: String, _ command: AdminCommand, within: Duration = .seconds(60)) -> AdminResult {
        let h = index(host)
        let token = nextToken; nextToken += 1
        var probe: DeviceProbe?
        if let d = command.deviceToProbe {
            if let disk = hosts[h].disks[d] { probe = .present(sizeSectors: disk.sizeSectors, metadata: disk.durable) } else { probe = .missing }
        }
        apply(h, .admin(command, token: AdminToken(token), probe: probe))
        let deadline = now + within
        while adminResults[token] == nil && now < deadline {
            guard let next = queue.map(\.time).min(), next <= deadline else { now = deadline; break }
            run(until: next)
        }
        return adminResults[token] ?? .failed(RMRError(.ETIMEDOUT, "test: no completion"))
    }

    /// Issues an admin command without waiting; its result lands in `adminResults[token]`.
    func startAdmin(_ host: String, _ command: AdminCommand) -> UInt64 {
        let token = nextToken; nextToken += 1
        precondition(command.deviceToProbe == nil, "startAdmin: commands that probe a device go through admin()")
        apply(index(host), .admin(command, token: AdminToken(token), probe: nil))
        return token
    }

    func ok(_ host: String, _ command: AdminCommand, sourceLocation: SourceLocationShim = .init()) {
        let r = admin(host, command)
        if case .failed(let e) = r { preconditionFailure("\(host): \(command) failed: \(e)") }
    }

    /// Issues a block IO and runs until it completes.
    func blockIO(_ host: String, _ op: IOOperation, offset: UInt64, length: UInt64, data: [UInt8] = [],
                          device: String = "brmr0", within: Duration = .seconds(30)) -> BlockIOResult {
        let tag = nextToken; nextToken += 1
        apply(index(host), .blockIO(BlockRequest(tag: BlockIOTag(tag), device: device, op: op, offsetBytes: offset, lengthBytes: length, data: data)))
        let deadline = now + within
        while blockResults[tag] == nil && now < deadline {
            guard let next = queue.map(\.time).min(), next <= deadline else { now = deadline; break }
            run(until: next)
        }
        return blockResults.removeValue(forKey: tag) ?? .failed(.ETIMEDOUT)
    }

    /// Issues a block IO without waiting.
    func startBlockIO(_ host: String, _ op: IOOperation, offset: UInt64, length: UInt64, data: [UInt8] = []) -> UInt64 {
        let tag = nextToken; nextToken += 1
        apply(index(host), .blockIO(BlockRequest(tag: BlockIOTag(tag), device: "brmr0", op: op, offsetBytes: offset, lengthBytes: length, data: data)))
        return tag
    }

    func cutLink(_ a: String, _ b: String) {
        let aa = hosts[index(a)].address, bb = hosts[index(b)].address
        let key = linkKey(aa, bb)
        cut.insert(key)
        if connected.remove(key) != nil {
            // Messages in flight on the link are lost.
                let k = key
            queue.removeAll { item in
                if case .deliver(let to, .received(_, let from)) = item.event { return (to < from ? "\(to)|\(from)" : "\(from)|\(to)") == k }
                return false
            }
            apply(index(aa), .linkDown(peer: bb))
            apply(index(bb), .linkDown(peer: aa))
        }
    }

    func restoreLink(_ a: String, _ b: String) {
        let aa = hosts[index(a)].address, bb = hosts[index(b)].address
        cut.remove(linkKey(aa, bb))
        for (x, y) in wanted where linkKey(x, y) == linkKey(aa, bb) { tryConnect(x, y) }
    }

    func crash(_ host: String) {
        let h = index(host)
        let addr = hosts[h].address
        hosts[h].alive = false
        queue.removeAll { item in
            switch item.event {
            case .deliver(let to, .received(_, let from)): return to == addr || from == addr
            case .deliver(let to, _): return to == addr
            case .timer(let a): return a == addr
            }
        }
        timers[addr] = nil
        let peers = connected.filter { $0.split(separator: "|").contains(Substring(addr)) }
        for key in peers.sorted() {
            connected.remove(key)
            let other = key.split(separator: "|").map(String.init).first { $0 != addr }!
            apply(index(other), .linkDown(peer: addr))
        }
        wanted.removeAll { $0.0 == addr }
    }

    func restart(_ host: String) {
        let h = index(host)
        hosts[h].alive = true
        hosts[h].node = Node(host: hosts[h].name, address: hosts[h].address, seed: 4242 + UInt64(h),
                             options: hosts[h].node.options)
        for (x, y) in wanted where y == hosts[h].address { tryConnect(x, y) }
    }

    func node(_ host: String) -> Node { hosts[index(host)].node }
    func serverState(_ host: String, _ pool: String = "ionos_pool") -> ServerPoolState? { node(host).serverPool(pool)?.state }
    func legState(_ host: String, _ session: String, _ pool: String = "ionos_pool") -> LegState? {
        node(host).clientPool(pool)?.legs.first { $0.session == session }?.state
    }
    func ownDirty(_ host: String, _ pool: String = "ionos_pool") -> UInt64 {
        let v = node(host).serverPool(pool)!
        return v.maps.first { $0.member == v.member }?.map.dirtyCount ?? 0
    }
    func diskBytes(_ host: String, _ device: String, _ offset: UInt64, _ length: UInt64) -> [UInt8] {
        hosts[index(host)].disks[device]!.read(offset, length)
    }
}

struct SourceLocationShim { init() {} }
