// A host's RMR instance: the client pools (IO pools on a compute client, sync pools on a storage
// node), the server pools with their stores, and the brmr-client devices, behind one entry point.
//
// How a driver uses a Node (the same in the simulator and the daemon):
//   1. Turn each happening into an `Input` stamped with the current time and call
//      `apply(_:at:)`. Times passed in must never go backwards.
//   2. Perform the returned effects in order. Completions of effects (store IO, persists,
//      connections, messages from peers) come back later as new inputs. Persist completions of
//      one device must come back in the order the persists were issued.
//   3. After every `apply`, read `nextDeadline`; when that time is reached call
//      `apply(.timerFired, at:)`. An early or repeated call is harmless.
//   Getters (`serverPool(_:)`, `clientPool(_:)`, `store(forPool:)`, `device(_:)`) never change
//   state; the control tree renders from them.
//
// The node's logic is split by concern: Node+Admin (control-tree commands), Node+ClientIO (the
// client write/read path), Node+ClientControl (joins, legs, maintenance, leave, device map),
// Node+Recovery (try_enable: spread, last-IO), Node+Server (server message handling),
// Node+ServerIO (server IO path, chunk locks, sync), Node+Timers.

public struct NodeOptions: Sendable, Hashable {
    /// Run whole-map invariant scans after each input (the simulator turns this on).
    public var verify: Bool
    public var queueDepth: Int
    public var syncQueueDepth: Int
    /// The storage node's chunk size (the reference's rmr-server `chunk_size` module
    /// parameter): stores are formatted with it, and client pools must use the same.
    public var serverChunkBytes: UInt64
    /// Write-intent (activity log) capacity per server pool, in chunks: a full log evicts the
    /// least recently written unpinned chunk, and the recovery tick trims unpinned intents
    /// once the log is half full. The fuzzer draws small values to exercise both.
    public var writeIntentCapacity: Int
    public init(verify: Bool = false, queueDepth: Int = Limits.defaultQueueDepth,
                syncQueueDepth: Int = Limits.defaultSyncQueueDepth, serverChunkBytes: UInt64 = Limits.defaultChunkBytes,
                writeIntentCapacity: Int = Limits.writeIntentCapacity) {
        precondition(serverChunkBytes.nonzeroBitCount == 1 && serverChunkBytes >= Limits.minChunkBytes
                     && serverChunkBytes <= Limits.maxChunkBytes, "server chunk size out of range")
        self.serverChunkBytes = serverChunkBytes
        precondition(queueDepth > 0 && queueDepth <= Limits.maxQueueDepth, "queue depth out of range")
        precondition(syncQueueDepth > 0, "sync queue depth must be positive")
        precondition(writeIntentCapacity >= 2, "write-intent capacity must be at least 2")
        self.writeIntentCapacity = writeIntentCapacity
        self.verify = verify
        self.queueDepth = queueDepth
        self.syncQueueDepth = syncQueueDepth
    }
}

/// What a request in flight is for: routes its response (or its failure on link loss).
enum PendingKind: Sendable, Hashable {
    case ioLeg(unit: UInt64, member: MemberID)
    case mapAddLeg(unit: UInt64, member: MemberID)
    case join(session: String, admin: AdminToken?, rejoin: Bool)
    case readMetadata(session: String, admin: AdminToken?)
    case enable(session: String, enable: Bool, admin: AdminToken?)
    /// USER(MAP) to a new leg of a pool whose device is mapped, before its ENABLE_POOL(1).
    case extendMap(session: String, admin: AdminToken?)
    case leave(session: String, mode: LeaveMode, admin: AdminToken?)
    case recovery(job: UInt64, member: MemberID)
    case mapCheck(member: MemberID, generation: UInt64)
    case storeCheck(session: String)
    case deviceParams(job: UInt64, member: MemberID)
    case deviceMap(job: UInt64, member: MemberID)
    /// Answers nobody waits for (POOL_INFO, SEND_MD_BUF, MAP_CLEAR, UNMAP, SEND_DISCARD).
    case fireAndForget
    /// A server pool pushing map buffers (MAP_SEND) over its sync pool.
    case mapPush(serverPool: String, push: UInt64)
    /// A server pool asking a peer whether its own map is clean.
    case peerMapCheck(serverPool: String, member: MemberID)
}

struct PendingRequest: Sendable, Hashable {
    var peer: HostAddress
    /// When it was sent: unanswered for `Timing.commandTimeout` means lost (RTRS times out too).
    var sentAt: Instant
    /// The client pool that sent the request.
    var pool: String
    var kind: PendingKind
}

/// A block request from the upper layer being served in pieces (one per chunk).
struct BlockParent: Sendable, Hashable {
    var remaining: Int
    var error: Errno?
    var op: IOOperation
    var data: [UInt8]
}

/// What to do when a store IO completes.
enum StoreContext: Sendable, Hashable {
    /// Only what the completion needs of the request (op, offset, slot): holding the whole
    /// request retained its data and member arrays and copied it through an outlined copy.
    case clientIO(pool: String, peer: HostAddress, rid: RequestID, op: IOOperation, offsetBytes: UInt64, slot: UInt32,
                  isSync: Bool, store: UInt64)
    case syncWrite(pool: String, chunk: ChunkIndex, lock: UInt64, store: UInt64)
}

/// A chunk whose operations wait for a persist (see `Node.persistBarriers`).
struct PersistBarrier: Sendable, Hashable {
    var pool: String
    var chunk: ChunkIndex
}

/// What to do when a persist completes.
enum PersistAction: Sendable, Hashable {
    case submitWrite(pool: String, peer: HostAddress, rid: RequestID, request: IORequest)
    case respond(pool: String, peer: HostAddress, rid: RequestID, Response)
    case completeAdmin(AdminToken)
    case createStoreDone(pool: String, device: String, mappedSectors: UInt64, deviceSectors: UInt64, token: AdminToken)
    case replaceStoreDone(pool: String, device: String, mappedSectors: UInt64, deviceSectors: UInt64, token: AdminToken)
    case deleteStoreDone(pool: String, token: AdminToken)
}

/// A `map_device` in progress.
struct DeviceMapJob: Sendable, Hashable {
    var pool: String
    var sizeSectors: UInt64
    var token: AdminToken
    var waitingOn: [MemberID]
    var mappedAnswers: [MemberID] = []
    var unmappedAnswers: [MemberID] = []
    var failures: [MemberID] = []
    var sizeMismatch: (MemberID, UInt64)? = nil
    var sendingMap = false
    static func == (a: DeviceMapJob, b: DeviceMapJob) -> Bool { a.token == b.token }
    func hash(into h: inout Hasher) { h.combine(token) }
}

/// A brmr-client device.
struct BlockDevice: Sendable, Hashable {
    var name: String
    var pool: String
    var state: DeviceState
    var sizeSectors: UInt64
}

/// An admin command waiting for a network answer, with its deadline.
struct AdminDeadline: Sendable, Hashable {
    var token: AdminToken
    var deadline: Instant
    var pool: String
    var session: String
}

public struct Node: Sendable {
    public let host: String
    public let address: HostAddress
    public let options: NodeOptions
    var rng: SplitMix64
    var now: Instant = .zero
    var serial: UInt64 = 1
    var effects: [Effect] = []
    /// The input being handled, named in transition records. Kept as a small value and turned
    /// into text only when a transition or rejection is recorded (inputs are hot, those rare).
    var causeKind: Cause = .timer
    var cause: String { causeKind.description }
    /// The admin command being handled, named in rejections of refused commands.
    var adminCommand: String?

    var clientPools: [ClientPool] = []
    var serverPools: [ServerPool] = []
    var devices: [BlockDevice] = []
    var linksUp: [HostAddress] = []
    var pending: IntKeyedTable<RequestID, PendingRequest> = [:]
    var blocks: IntKeyedTable<BlockIOTag, BlockParent> = [:]
    var storeOps: IntKeyedTable<StoreTag, StoreContext> = [:]
    var persistActions: IntKeyedTable<PersistTag, [PersistAction]> = [:]
    /// The incarnation of the store each `persistAndThen` record went to: a record that fails
    /// after its store was removed or replaced closes nothing of the successor (fuzz seed 3138;
    /// the same rule as store IO, seed 227).
    var persistStores: IntKeyedTable<PersistTag, UInt64> = [:]
    /// The chunk barrier (`ServerPool.chunkPersist`) each persist in flight was made for: the
    /// only entry its completion can clear (a tag is set on one chunk of one pool, once).
    var persistBarriers: IntKeyedTable<PersistTag, PersistBarrier> = [:]
    var deviceJobs: [UInt64: DeviceMapJob] = [:]
    var adminDeadlines: [AdminDeadline] = []

    public init(host: String, address: HostAddress, seed: UInt64, options: NodeOptions = NodeOptions()) {
        self.host = host
        self.address = address
        self.options = options
        self.rng = SplitMix64(seed: seed)
    }

    /// The single entry point: one input, at one time, returns the effects in order.
    public mutating func apply(_ input: Input, at time: Instant) -> [Effect] {
        var out: [Effect] = []
        apply(input, at: time, into: &out)
        return out
    }

    /// `apply(_:at:)` with the effects written into the caller's buffer `out` (emptied first,
    /// its capacity kept). The buffer is the caller's alone afterwards, so a driver that keeps
    /// one buffer allocates nothing per input and may move the effects out of it.
    /// (Between inputs `effects` is an empty array that owns no storage: the caller's buffer is
    /// swapped in for the step and out again, so nothing is emptied twice.)
    public mutating func apply(_ input: Input, at time: Instant, into out: inout [Effect]) {
        precondition(time >= now, "time went backwards: \(time) < \(now)")
        precondition(effects.isEmpty, "effects left over from an earlier step")
        now = time
        if !out.isEmpty { out.removeAll(keepingCapacity: true) }
        swap(&effects, &out)
        defer { swap(&effects, &out) }
        switch input {
        case .admin(let command, let token, let probe):
            causeKind = .admin(command.name)
            adminCommand = command.name
            handleAdmin(command, token: token, probe: probe)
            adminCommand = nil
        case .received(let message, let peer):
            switch message {
            case .request(let rid, let pool, let request):
                causeKind = .request(request.name, peer)
                handleRequest(request, rid: rid, pool: pool, from: peer)
            case .response(let rid, let pool, let response):
                handleResponse(response, rid: rid, pool: pool, from: peer)
            }
        case .linkUp(let peer):
            causeKind = .linkUp(peer)
            handleLinkUp(peer)
        case .linkDown(let peer):
            causeKind = .linkDown(peer)
            handleLinkDown(peer)
        case .storeCompleted(let tag, let result):
            causeKind = .storeCompleted
            handleStoreCompleted(tag, result)
        case .persistCompleted(let tag, let ok):
            causeKind = .persistCompleted
            handlePersistCompleted(tag, ok: ok)
        case .blockIO(let request):
            causeKind = .blockIO
            handleBlockIO(request)
        case .timerFired:
            causeKind = .timer
            handleTimers()
        }
        checkInvariants()
    }

    public var nextDeadline: Instant? {
        var best: Instant?
        func consider(_ t: Instant?) {
            guard let t else { return }
            if best == nil || t < best! { best = t }
        }
        for p in clientPools { consider(p.nextTick) }
        for s in serverPools { consider(s.nextCheck) }
        for d in adminDeadlines { consider(d.deadline) }
        return best
    }

    // MARK: - Small shared helpers

    mutating func nextSerial() -> UInt64 {
        serial += 1
        return serial
    }

    mutating func emit(_ effect: Effect) { effects.append(effect) }

    mutating func completeAdmin(_ token: AdminToken, _ result: AdminResult) {
        adminDeadlines.removeAll { $0.token == token }
        emit(.completeAdmin(token, result))
    }

    mutating func fail(_ token: AdminToken, _ code: Errno, _ message: String) {
        // An operator command the current state forbids is an illegal input (style rule 9b):
        // answered with the errno, and recorded as a rejection. Failures that arrive later
        // (a peer's refusal, a timeout) are answers, not rejections of the command itself.
        if let name = adminCommand {
            reject(.admin(name), state: "-", input: name, reason: "\(code): \(message)")
        }
        completeAdmin(token, .failed(RMRError(code, message)))
    }

    func isLinkUp(_ peer: HostAddress) -> Bool { linksUp.contains(peer) }

    /// Sends a request from client pool `pool` and remembers what the answer is for.
    mutating func sendRequest(_ request: consuming Request, pool: String, to peer: HostAddress, kind: consuming PendingKind) {
        let rid = RequestID(nextSerial())
        // Fresh id: inserted without the setter's lookup; `kind` consumed, moved in (not copied).
        pending.insertAbsent(rid, PendingRequest(peer: peer, sentAt: now, pool: pool, kind: kind))
        emit(.send(.request(rid, pool: pool, request), to: peer))
    }

    mutating func respond(_ response: consuming Response, rid: RequestID, pool: String, to peer: HostAddress) {
        emit(.send(.response(rid, pool: pool, response), to: peer))
    }

    mutating func reject(_ machine: Machine, state: String, input: String, reason: String) {
        emit(.rejected(Rejection(machine: machine, state: state, input: input, reason: reason)))
    }

    // Inlined: a call to a non-mutating method of the node from a mutating one copies the
    // whole node (336 bytes) to pass it; these two run several times per input.
    @inline(__always) func clientPoolIndex(_ name: String) -> Int? { clientPools.firstIndex { $0.name == name } }
    @inline(__always) func serverPoolIndex(_ name: String) -> Int? { serverPools.firstIndex { $0.name == name } }

    // MARK: - Links

    mutating func handleLinkUp(_ peer: HostAddress) {
        if isLinkUp(peer) {
            emit(.ignored(.duplicateLinkEvent(peer)))
            return
        }
        linksUp.append(peer)
        clientLinkUp(peer)
    }

    mutating func handleLinkDown(_ peer: HostAddress) {
        guard let i = linksUp.firstIndex(of: peer) else {
            emit(.ignored(.duplicateLinkEvent(peer)))
            return
        }
        linksUp.remove(at: i)
        // Fail every request in flight to that peer, in request order (deterministic).
        let lost = pending.filter { $0.value.peer == peer }.keys.sorted()
        for rid in lost {
            guard let p = pending[rid] else { continue }
            handleResponse(.failed(.ENOTCONN), rid: rid, pool: p.pool, from: peer)
        }
        clientLinkDown(peer)
        serverLinkDown(peer)
    }

    // MARK: - Responses

    mutating func handleResponse(_ response: Response, rid: RequestID, pool: String, from peer: HostAddress) {
        guard let p = pending.removeValue(forKey: rid) else {
            // A reply after we gave up on the request (link loss already failed it).
            emit(.ignored(.staleResponse(rid)))
            return
        }
        if p.peer != peer {
            reject(.leg(pool: p.pool, session: "?"), state: "-", input: "response \(rid)",
                   reason: "response from \(peer) but request went to \(p.peer)")
            return
        }
        causeKind = .response(rid, peer)
        switch p.kind {
        case .ioLeg(let unit, let member): ioLegAnswered(pool: p.pool, unit: unit, member: member, response)
        case .mapAddLeg(let unit, let member): mapAddAnswered(pool: p.pool, unit: unit, member: member, response)
        case .join(let session, let admin, let rejoin): joinAnswered(pool: p.pool, session: session, admin: admin, rejoin: rejoin, response)
        case .readMetadata(let session, let admin): metadataAnswered(pool: p.pool, session: session, admin: admin, response)
        case .enable(let session, let enable, let admin): enableAnswered(pool: p.pool, session: session, enable: enable, admin: admin, response)
        case .extendMap(let session, let admin): extendMapAnswered(pool: p.pool, session: session, admin: admin, response)
        case .leave(let session, let mode, let admin): leaveAnswered(pool: p.pool, session: session, mode: mode, admin: admin, response)
        case .recovery(let job, let member): recoveryAnswered(pool: p.pool, job: job, member: member, response)
        case .mapCheck(let member, let generation): mapCheckAnswered(pool: p.pool, member: member, generation: generation, response)
        case .storeCheck(let session): storeCheckAnswered(pool: p.pool, session: session, response)
        case .deviceParams(let job, let member): deviceParamsAnswered(job: job, member: member, response)
        case .deviceMap(let job, let member): deviceMapAnswered(job: job, member: member, response)
        case .fireAndForget: break
        case .mapPush(let serverPool, let push): mapPushAnswered(serverPool: serverPool, push: push, response)
        case .peerMapCheck(let serverPool, let member): peerMapCheckAnswered(serverPool: serverPool, member: member, response)
        }
    }
}

/// What caused the current input's transitions.
enum Cause: Sendable, Hashable, CustomStringConvertible {
    case admin(String)
    case request(String, HostAddress)
    case response(RequestID, HostAddress)
    case linkUp(HostAddress)
    case linkDown(HostAddress)
    case storeCompleted
    case persistCompleted
    case blockIO
    case timer
    var description: String {
        switch self {
        case .admin(let name): return "admin \(name)"
        case .request(let name, let peer): return "\(name) from \(peer)"
        case .response(let rid, let peer): return "response \(rid) from \(peer)"
        case .linkUp(let peer): return "link up \(peer)"
        case .linkDown(let peer): return "link down \(peer)"
        case .storeCompleted: return "store completed"
        case .persistCompleted: return "persist completed"
        case .blockIO: return "block IO"
        case .timer: return "timer"
        }
    }
}

extension AdminCommand {
    /// The control-tree attribute this command is written to, for traces.
    public var name: String {
        switch self {
        case .clientJoinPool: return "rmr-client join_pool"
        case .addSession: return "add_sess"
        case .sessionEnable: return "enable"
        case .deleteSession: return "del_sess"
        case .reconnectSession: return "reconnect"
        case .poolEnable: return "pool_enable"
        case .clientLeavePool: return "rmr-client leave_pool"
        case .serverJoinPool: return "rmr-server join_pool"
        case .attachSyncPool: return "add_clt"
        case .sync: return "sync"
        case .serverLeavePool: return "rmr-server leave_pool"
        case .createStore: return "create_store"
        case .addStore: return "add_store"
        case .removeStore: return "remove_store"
        case .deleteStore: return "delete_store"
        case .mapDevice: return "map_device"
        case .unmapDevice: return "unmap_device"
        }
    }
}
