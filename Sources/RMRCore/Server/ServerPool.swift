// Server pool (`rmr_srv_pool`) state: one per pool on a storage node. Transitions are made by
// Node's entry points (Node+Server*.swift) through `Node.moveServerPool`, which checks them
// against `ServerPoolState.allows`.

/// The brmr-server store registered for the pool.
struct ServerStore: Sendable, Hashable {
    var device: String
    var open: Bool
    var mapped: Bool
    var mappedSectors: UInt64
    var deviceSectors: UInt64
    /// Replaced by an empty disk (`add_store mode=replace`) and not yet fully resynced.
    var replacing: Bool
    /// Which opening of a store this is (a node serial): IO submitted to an earlier one (before
    /// remove_store / add_store) completes against that one, never against this.
    var incarnation: UInt64
    /// The reference's `io_allowed()`: only OPEN and MAPPED serve client IO.
    var ioAllowed: Bool { open && mapped }
}

/// A session of a client pool on this server pool.
struct ServerSession: Sendable, Hashable {
    var peer: HostAddress
    var isSync: Bool
}

/// A request waiting on a locked (being synced) chunk.
struct ChunkWaiter: Sendable, Hashable {
    var peer: HostAddress
    var rid: RequestID
    var request: IORequest
}

struct ChunkLock: Sendable, Hashable {
    /// Names this sync attempt: completions of an older attempt on the same chunk are ignored.
    var id: UInt64
    var waiters: [ChunkWaiter] = []
    /// Started by the background sync thread (counts against the sync queue depth).
    var background: Bool
}

/// A MAP_SEND being carried out: buffers pushed to `receiver` over the sync pool.
struct MapPush: Sendable, Hashable {
    var client: HostAddress
    var clientRequest: RequestID
    var receiver: MemberID
    var outstanding: Int
    var failed: Bool
}

struct ServerPool: Sendable {
    let name: String
    let member: MemberID
    var state: ServerPoolState = .empty
    var maintenance = false
    var mapUpdate: MapUpdateState = .disabled
    /// The last map update was ended by MAP_DISABLE (the client aborted its spread): buffers
    /// the source had already sent may still arrive, an expected race rather than a protocol
    /// error. Cleared by the next MAP_READY.
    var mapUpdateAborted = false
    var poolUUID: PoolUUID = .none
    var chunkBytes: UInt64 = 0
    /// Mapped size known for the pool (kept after `remove_store`, for `mode=replace`).
    var mappedSectors: UInt64 = 0
    var members: [MemberID]
    var mapMembers: [MemberID] = []
    var maps: [DirtyMap] = []
    var mapGeneration: [UInt64] = []
    /// Version of this node's map content: raised only by what changes maps (piggybacked IO,
    /// MAP_ADD, a map transfer), persisted with them.
    var mapVersion: MapVersion = .initial
    /// The client's own counter as last pushed with SEND_MD_BUF (the reference's client-owned
    /// pool_md header). Kept apart: a pushed number says nothing about this node's maps, and
    /// mixing the two made a current map source look stale (fuzz seed 12).
    var clientMapVersion: MapVersion = .initial
    var store: ServerStore?
    var sessions: [ServerSession] = []
    var markedCreate = false
    var markedDelete = false
    var syncPool: String?
    var syncThread: SyncThreadState = .stopped
    /// The operator wrote `sync stop`: no automatic restart until `sync start`.
    var syncHeldByOperator = false
    var syncCursor: ChunkIndex = 0
    var syncInFlight = 0
    var locks: IntKeyedTable<ChunkIndex, ChunkLock> = [:]
    /// last_io: slot -> chunk of the last write through that slot (volatile).
    var lastIO: [ChunkIndex?] = Array(repeating: nil, count: Limits.maxQueueDepth)
    /// Durable write intents (hot chunks) with a use stamp, and pins (slots + writes in flight).
    var intents: IntKeyedTable<ChunkIndex, UInt64> = [:]
    var intentPins: IntKeyedTable<ChunkIndex, Int> = [:]
    var intentStamp: UInt64 = 0
    /// Latest persist in flight touching a chunk: operations on it wait for that persist.
    var chunkPersist: IntKeyedTable<ChunkIndex, PersistTag> = [:]
    var nextCheck: Instant?
    /// Peer-map checks in flight: member -> generation when the check was sent.
    var peerChecks: [MemberID: UInt64] = [:]
    var pushes: [UInt64: MapPush] = [:]

    init(name: String, member: MemberID) {
        self.name = name
        self.member = member
        self.members = [member]
    }

    @inline(__always) var geometry: ChunkGeometry {
        ChunkGeometry(chunkBytes: chunkBytes == 0 ? Limits.defaultChunkBytes : chunkBytes,
                      mappedBytes: mappedSectors * Limits.sectorBytes)
    }
    var hasNonSyncSession: Bool { sessions.contains { !$0.isSync } }
    // Inlined (these two are asked per IO and per locked chunk after every input): a call on
    // `serverPools[s]` copies the whole pool (392 bytes) to pass it.
    @inline(__always) func mapIndex(_ m: MemberID) -> Int? { mapMembers.firstIndex(of: m) }
    var ownMap: DirtyMap? { mapIndex(member).map { maps[$0] } }
    @inline(__always) func isDirtyForSelf(_ chunk: ChunkIndex) -> Bool { isDirty(chunk, for: member) }

    /// Whether this node records `chunk` as dirty for `m` (false without a map for `m`).
    @inline(__always) func isDirty(_ chunk: ChunkIndex, for m: MemberID) -> Bool {
        guard let i = mapIndex(m) else { return false }
        return chunk < maps[i].chunkCount && maps[i].isDirty(chunk)
    }

    mutating func ensureMap(_ m: MemberID) -> Int {
        if let i = mapIndex(m) { return i }
        var insertAt = mapMembers.count
        for (i, e) in mapMembers.enumerated() where e > m { insertAt = i; break }
        mapMembers.insert(m, at: insertAt)
        maps.insert(DirtyMap(chunkCount: geometry.chunkCount), at: insertAt)
        mapGeneration.insert(0, at: insertAt)
        return insertAt
    }
    mutating func dropMap(_ m: MemberID) {
        guard let i = mapIndex(m) else { return }
        mapMembers.remove(at: i); maps.remove(at: i); mapGeneration.remove(at: i)
    }
    mutating func addMember(_ m: MemberID) {
        if !members.contains(m) { members.append(m); members.sort() }
    }

    func header() -> StoreHeader {
        StoreHeader(poolName: name, poolUUID: poolUUID, member: member, chunkBytes: chunkBytes,
                    mappedSectors: mappedSectors, storeMapped: store?.mapped ?? false,
                    mapVersion: mapVersion, members: members, markedCreate: markedCreate)
    }

    /// The durable image of this pool (used for `formatStore`).
    func durableImage(deviceSectors: UInt64) -> DurablePoolState {
        var s = DurablePoolState(poolName: name, poolUUID: poolUUID, member: member, chunkBytes: chunkBytes,
                                 mappedSectors: mappedSectors, deviceSectors: deviceSectors)
        s.storeMapped = store?.mapped ?? false
        s.mapVersion = mapVersion
        s.members = members
        s.mapMembers = mapMembers
        s.maps = maps
        s.writeIntents = intents.keys.sorted()
        s.markedCreate = markedCreate
        return s
    }
}
