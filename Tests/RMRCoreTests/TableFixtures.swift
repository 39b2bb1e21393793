// Fixtures for the table-driven tests (style guide §3 rule 18a, §4): a single storage node driven
// directly through `Node.apply` (server pool cells), and small clusters holding one client leg in
// a chosen state (leg cells). Every fixture reaches its state through real inputs only — admin
// commands, messages from a client, link events — and checks that it got there.
import Testing
@testable import RMRCore

let tablePool = "ionos_pool"

// MARK: - One storage node, driven directly

/// What a request or admin command got back.
enum TableAnswer: String, Sendable, Hashable {
    /// A success response (or `AdminResult.ok`).
    case ok
    /// A failure response (or a failed admin command).
    case failed
    /// Nothing is answered (link events).
    case none
}

/// What one input (or a short sequence of them) did to the node.
struct TableOutcome {
    var answer: TableAnswer
    var rejections: [Rejection]
    var effects: [Effect]
    /// Tolerated races the node reported (`.ignored`, style rule 9a).
    var ignored: [IgnoreReason] {
        effects.compactMap { if case .ignored(let r) = $0 { return r } else { return nil } }
    }
}

/// A storage node (`stg0`, member 42) with a driver that performs everything the node asks for
/// at once: each `.persist` / `.formatStore` / `.wipeStore` is applied to an in-memory durable
/// image and answered with `.persistCompleted(tag, ok: true)` (in issue order), each store IO is
/// answered successfully (reads return zeros). Time advances 1 ms per input.
struct TableServerBench {
    static let client: HostAddress = "10.9.9.9"
    /// A peer storage node whose sync pool joins in the fixtures (sync IO comes from here).
    static let syncPeer: HostAddress = "10.9.9.8"
    /// Another peer, used for the sync-join input so it is a fresh join, not a repeat.
    static let otherSyncPeer: HostAddress = "10.9.9.7"
    /// A host that never joined the pool.
    static let stranger: HostAddress = "10.9.9.5"
    static let member: MemberID = 42
    static let device = "/dev/sdb"
    static let mappedSectors: UInt64 = 2048  // 1 MiB: 8 chunks of 128 KiB
    static let deviceSectors: UInt64 = 8192
    static let chunkBytes: UInt64 = 131_072
    static let poolUUID = PoolUUID(high: 0x1111, low: 0x2222)

    var node: Node
    var now = Instant.zero
    /// The store's durable image, as the persists so far left it.
    var disk: DurablePoolState?
    var nextID: UInt64 = 1_000

    init(seed: UInt64 = 1) {
        node = Node(host: "stg0", address: "10.0.1.0", seed: seed, options: NodeOptions(verify: true))
    }

    var state: ServerPoolState? { node.serverPool(tablePool)?.state }
    var view: ServerPoolView? { node.serverPool(tablePool) }

    /// Applies `input` and then every completion it leads to, until the node asks for nothing.
    mutating func run(_ input: Input) -> [Effect] {
        now = now + .milliseconds(1)
        var all: [Effect] = []
        var inbox: [Input] = [input]
        var steps = 0
        while !inbox.isEmpty {
            steps += 1
            precondition(steps < 10_000, "table bench: the node keeps asking for work")
            let next = inbox.removeFirst()
            let effects = node.apply(next, at: now)
            all += effects
            for e in effects {
                switch e {
                case .persist(let tag, _, let record):
                    for u in record.updates { disk?.apply(u) }
                    inbox.append(.persistCompleted(tag, ok: true))
                case .formatStore(let tag, _, let image):
                    disk = image
                    inbox.append(.persistCompleted(tag, ok: true))
                case .wipeStore(let tag, _):
                    disk = nil
                    inbox.append(.persistCompleted(tag, ok: true))
                case .submitStore(let tag, _, let op):
                    switch op {
                    case .read(_, let length): inbox.append(.storeCompleted(tag, .ok(data: Array(repeating: 0, count: Int(length)))))
                    case .write, .flush: inbox.append(.storeCompleted(tag, .ok(data: [])))
                    }
                case .send, .connect, .disconnect, .completeBlockIO, .completeAdmin, .transitioned, .rejected, .ignored, .probe:
                    break  // Only observed.
                }
            }
        }
        return all
    }

    /// Sends `request` from `peer` and returns how it was answered.
    mutating func request(_ request: Request, from peer: HostAddress = TableServerBench.client) -> TableOutcome {
        nextID += 1
        let rid = RequestID(nextID)
        let effects = run(.received(.request(rid, pool: tablePool, request), from: peer))
        var answer = TableAnswer.none
        for case .send(.response(let r, _, let response), let to) in effects where r == rid && to == peer {
            answer = response.isOK ? .ok : .failed
        }
        return TableOutcome(answer: answer, rejections: Self.rejections(effects), effects: effects)
    }

    /// Runs an admin command; store commands get the probe a driver would make of `device`.
    mutating func admin(_ command: AdminCommand, probe: DeviceProbe? = nil) -> TableOutcome {
        nextID += 1
        let token = AdminToken(nextID)
        let effects = run(.admin(command, token: token, probe: probe))
        var answer = TableAnswer.none
        for case .completeAdmin(let t, let result) in effects where t == token {
            if case .ok = result { answer = .ok } else { answer = .failed }
        }
        return TableOutcome(answer: answer, rejections: Self.rejections(effects), effects: effects)
    }

    mutating func event(_ input: Input) -> TableOutcome {
        let effects = run(input)
        return TableOutcome(answer: .none, rejections: Self.rejections(effects), effects: effects)
    }

    static func rejections(_ effects: [Effect]) -> [Rejection] {
        effects.compactMap { if case .rejected(let r) = $0 { return r } else { return nil } }
    }

    // MARK: Requests a client or peer sends

    static func join(create: Bool, rejoin: Bool = false, sync: Bool = false) -> Request {
        .join(JoinRequest(poolUUID: sync ? .none : poolUUID, queueDepth: 16, chunkBytes: chunkBytes, create: create,
                          dirty: false, peers: [], rejoin: rejoin, fromSyncPool: sync))
    }

    static func io(_ op: IOOperation) -> Request {
        .io(IORequest(op: op, offsetBytes: 0, lengthBytes: 4096, data: op == .write ? Array(repeating: 0xAB, count: 4096) : [],
                      slot: 0, mapVersion: .initial, failedMembers: [], target: member))
    }
}

/// The server pool fixtures: one per `ServerPoolState`, plus variants that matter to the cells.
enum TableServerFixture: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `join_pool` only.
    case empty
    /// `create_store` on a blank disk: `marked_create`, waiting for the first create-mode join.
    case registeredFresh
    /// A rebooted node: `join_pool` + `add_store mode=add` of a disk that served a pool.
    case registeredAdded
    /// The first create-mode client join happened, not enabled yet.
    case created
    /// Enabled (ENABLE_POOL(1)) and BRMR-mapped: serves IO.
    case normal
    /// NORMAL, then the client's link dropped and came back and the client rejoined (notes §6.3):
    /// session present, waiting for a map update.
    case noIO
    /// NORMAL, then ENABLE_POOL(0): maintenance mode (notes §6.8).
    case noIOMaintenance

    var state: ServerPoolState {
        switch self {
        case .empty: return .empty
        case .registeredFresh, .registeredAdded: return .registered
        case .created: return .created
        case .normal: return .normal
        case .noIO, .noIOMaintenance: return .noIO
        }
    }

    /// The fixture that stands for each state in `serverNode(in:)`.
    static func canonical(_ state: ServerPoolState) -> TableServerFixture {
        switch state {
        case .empty: return .empty
        case .registered: return .registeredFresh
        case .created: return .created
        case .normal: return .normal
        case .noIO: return .noIO
        }
    }

    var testDescription: String {
        switch self {
        case .empty: return "EMPTY"
        case .registeredFresh: return "REGISTERED(create_store)"
        case .registeredAdded: return "REGISTERED(add_store)"
        case .created: return "CREATED"
        case .normal: return "NORMAL"
        case .noIO: return "NO_IO"
        case .noIOMaintenance: return "NO_IO+maintenance"
        }
    }
}

/// A node whose pool `ionos_pool` is in `fixture`'s state, reached through real inputs. Every
/// step must succeed; the last check is that the state is the one the fixture names.
func tableServerBench(_ fixture: TableServerFixture) throws -> TableServerBench {
    typealias B = TableServerBench
    var b = B()
    func step(_ outcome: TableOutcome, _ what: String) throws {
        try tableFixtureStep(outcome, "fixture \(fixture): \(what)")
    }
    try step(b.admin(.serverJoinPool(pool: tablePool, member: B.member)), "join_pool")
    _ = b.event(.linkUp(peer: B.client))
    _ = b.event(.linkUp(peer: B.syncPeer))
    if fixture != .empty {
        try step(b.admin(.createStore(device: B.device, pool: tablePool, mappedSectors: B.mappedSectors),
                         probe: .present(sizeSectors: B.deviceSectors, metadata: nil)), "create_store")
        // The peer's sync pool attaches (notes §5.4); the reference code accepts it here.
        try step(b.request(B.join(create: false, sync: true), from: B.syncPeer), "sync join")
    }
    switch fixture {
    case .empty, .registeredFresh:
        break
    case .created, .normal, .noIO, .noIOMaintenance, .registeredAdded:
        try step(b.request(B.join(create: true)), "create-mode JOIN_POOL")
        if fixture == .created { break }
        try step(b.request(.enablePool(true)), "ENABLE_POOL(1)")
        try step(b.request(.user(.map(mappedSectors: B.mappedSectors))), "BRMR MAP")
        switch fixture {
        case .noIO:
            _ = b.event(.linkDown(peer: B.client))
            _ = b.event(.linkUp(peer: B.client))
            try step(b.request(B.join(create: false, rejoin: true)), "REJOIN_POOL")
        case .noIOMaintenance:
            try step(b.request(.enablePool(false)), "ENABLE_POOL(0)")
        case .registeredAdded:
            // Reboot: a fresh node finds the pool on its disk (notes §10 S4).
            let image = try #require(b.disk, "fixture \(fixture): no durable image")
            var r = B(seed: 2)
            try step(r.admin(.serverJoinPool(pool: tablePool, member: B.member)), "join_pool after reboot")
            _ = r.event(.linkUp(peer: B.client))
            _ = r.event(.linkUp(peer: B.syncPeer))
            try step(r.admin(.addStore(device: B.device, pool: tablePool, mappedSectors: B.mappedSectors, mode: .add),
                             probe: .present(sizeSectors: B.deviceSectors, metadata: image)), "add_store mode=add")
            try step(r.request(B.join(create: false, sync: true), from: B.syncPeer), "sync join after reboot")
            b = r
        case .empty, .registeredFresh, .created, .normal:
            break
        }
    }
    try #require(b.state == fixture.state, "fixture \(fixture) reached \(String(describing: b.state))")
    try #require(b.view?.maintenance == (fixture == .noIOMaintenance), "fixture \(fixture): maintenance flag")
    try #require(b.view?.mapUpdate == .disabled, "fixture \(fixture): map update sub-state")
    return b
}

/// A fixture step must be answered OK without a rejection.
func tableFixtureStep(_ outcome: TableOutcome, _ what: String) throws {
    try #require(outcome.answer == .ok, "\(what) answered \(outcome.answer)")
    try #require(outcome.rejections.isEmpty, "\(what) rejected: \(outcome.rejections)")
}

/// The node of the canonical fixture for `state` (EMPTY, REGISTERED fresh from create_store,
/// CREATED, NORMAL, NO_IO after a rejoin).
func serverNode(in state: ServerPoolState) throws -> Node {
    try tableServerBench(.canonical(state)).node
}

// MARK: - A client leg in a chosen state, in a small cluster

/// Leg fixtures. IO legs: the client's leg `psrv0@stg-rmr1` to stg1 (member 43), with stg0's leg
/// NORMAL beside it as the map source. Sync legs: stg0's sync-pool leg `stg-rmr0@stg-rmr1`.
enum TableLegFixture: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// `add_sess mode=create` answered, `enable` not yet written.
    case created
    case normal
    /// The link to stg1 is cut.
    case failed
    /// Rejoined, but try_enable cannot run: no NORMAL leg, the last authoritative leg (stg0) is
    /// still FAILED, so reconciliation waits for it (notes §6.5).
    case reconnecting
    /// `enable 0` on a NORMAL leg: RECONNECTING with maintenance mode (notes §6.8).
    case maintenance
    case syncNormal
    /// The stg0–stg1 link is cut.
    case syncFailed

    var isSync: Bool { self == .syncNormal || self == .syncFailed }
    var host: String { isSync ? "stg0" : "client" }
    var session: String { isSync ? "stg-rmr0@stg-rmr1" : "psrv0@stg-rmr1" }
    /// The host at the other end of the leg.
    var peer: String { "stg1" }
    var peerAddress: HostAddress { "10.0.1.1" }
    var state: LegState {
        switch self {
        case .created: return .created
        case .normal, .syncNormal: return .normal
        case .failed, .syncFailed: return .failed
        case .reconnecting, .maintenance: return .reconnecting
        }
    }
    var maintenance: Bool { self == .maintenance }
    var testDescription: String { (isSync ? "sync " : "") + state.rawValue.uppercased() + (maintenance ? "+maintenance" : "") }
}

enum TableLeg {
    static let mappedSectors: UInt64 = 2048  // 8 chunks: keeps the initial sync of stg1 short
    static let settle = Duration.seconds(8)  // more than two recovery ticks (3 s)

    static func session(_ i: Int) -> String { "psrv0@stg-rmr\(i)" }

    static func mustSucceed(_ c: TestCluster, _ host: String, _ command: AdminCommand, _ what: String) throws {
        let r = c.admin(host, command)
        guard case .ok = r else {
            Issue.record("fixture step \(what) on \(host) failed: \(r)")
            throw TableFixtureError.stepFailed(what)
        }
    }

    /// The guide's bring-up with two storage nodes (no device map), leaving stg1's leg CREATED
    /// when `enableSecond` is false.
    static func bringUp(enableSecond: Bool) throws -> TestCluster {
        let c = TestCluster.guide(legs: 2, mappedSectors: mappedSectors)
        for i in 0..<2 {
            try mustSucceed(c, "stg\(i)", .serverJoinPool(pool: tablePool, member: MemberID(42 + i)), "join_pool")
            try mustSucceed(c, "stg\(i)", .createStore(device: "/dev/sda", pool: tablePool, mappedSectors: mappedSectors), "create_store")
        }
        try mustSucceed(c, "client", .clientJoinPool(pool: tablePool, chunkBytes: 131_072, sync: false), "client join_pool")
        for i in 0..<2 {
            try mustSucceed(c, "client", .addSession(pool: tablePool, session: session(i), address: "10.0.1.\(i)", mode: .create), "add_sess \(i)")
            if i == 0 || enableSecond {
                try mustSucceed(c, "client", .sessionEnable(pool: tablePool, session: session(i), enable: true), "enable \(i)")
            }
        }
        for i in 0..<2 {
            let me = "stg\(i)"
            try mustSucceed(c, me, .clientJoinPool(pool: tablePool, chunkBytes: 131_072, sync: true), "sync join_pool")
            try mustSucceed(c, me, .addSession(pool: tablePool, session: "stg-rmr\(i)@stg-rmr\(1 - i)", address: "10.0.1.\(1 - i)", mode: nil), "sync add_sess")
            try mustSucceed(c, me, .attachSyncPool(pool: tablePool, syncPool: tablePool), "add_clt")
        }
        c.advance(settle)
        return c
    }

    static func leg(_ c: TestCluster, _ f: TableLegFixture) -> LegView? {
        c.node(f.host).clientPool(tablePool)?.legs.first { $0.session == f.session }
    }

    /// A cluster with the fixture's leg in its state, checked.
    static func cluster(_ f: TableLegFixture) throws -> TestCluster {
        let c = try bringUp(enableSecond: f != .created)
        switch f {
        case .created, .normal, .syncNormal:
            break
        case .failed:
            c.cutLink("client", "stg1")
        case .syncFailed:
            c.cutLink("stg0", "stg1")
        case .reconnecting:
            // stg1 fails first, then stg0 (which so becomes the last authoritative leg); only
            // stg1 comes back.
            c.cutLink("client", "stg1")
            c.advance(.milliseconds(50))
            c.cutLink("client", "stg0")
            c.advance(.milliseconds(50))
            c.restoreLink("client", "stg1")
        case .maintenance:
            try mustSucceed(c, "client", .sessionEnable(pool: tablePool, session: f.session, enable: false), "enable 0")
        }
        c.advance(settle)
        let v = leg(c, f)
        guard v?.state == f.state, v?.maintenance == f.maintenance else {
            Issue.record("leg fixture \(f) reached \(String(describing: v?.state)) maintenance \(String(describing: v?.maintenance))")
            throw TableFixtureError.stepFailed("fixture \(f)")
        }
        return c
    }
}

enum TableFixtureError: Error {
    case stepFailed(String)
}
