// Client pool (`rmr_clt_pool`): an IO pool on a compute client or a sync pool on a storage node.
// Holds the legs, the pool's view of membership (pool_md), one dirty map per member, the map
// version, IO units in flight and the recovery job. Decisions are made by Node's entry points
// (Node+Client*.swift); this file holds the state and the small pure helpers.

/// One replication leg (`rmr_clt_pool_sess`).
struct Leg: Sendable, Hashable {
    let session: String
    var address: HostAddress
    var member: MemberID = 0
    var state: LegState = .created
    let isSync: Bool
    var maintenance = false
    var wasLastAuthoritative = false
    /// The server holds a session for us (false after a link loss until a REJOIN succeeds).
    var joinedOnServer = false
    /// A JOIN / REJOIN is in flight.
    var joinInFlight = false
    var mode: JoinMode?
    /// `enable 1` came while the node was unreachable: tell it at the next rejoin.
    var leaveMaintenanceOnRejoin = false
    /// The link to `address` is up.
    var linkUp = false
}

/// Who waits for an IO unit.
enum IOOwner: Sendable, Hashable {
    /// A piece of a block request from the upper layer, at `offsetInRequest`.
    case block(BlockIOTag, offsetInRequest: UInt64)
    /// A server pool syncing `chunk` through this sync pool.
    case chunkSync(serverPool: String, chunk: ChunkIndex, lock: UInt64)
}

/// One IO in flight in a client pool (the reference's IO unit + per-leg sub-units).
struct IOUnit: Sendable, Hashable {
    let id: UInt64
    let owner: IOOwner
    let op: IOOperation
    let offsetBytes: UInt64
    let lengthBytes: UInt64
    // (No data: a write's buffer goes from the queued request straight into its requests;
    // kept here it was retained, copied with the unit into its table and released at the end.)
    let chunk: ChunkIndex
    var slot: UInt32 = 0
    /// Legs a data request is outstanding on. (Empty lists made by `MemberList()`: the `[]`
    /// literal goes through the sequence initialiser, six times per unit.)
    var waitingOn = MemberList()
    var succeeded = MemberList()
    var failed = MemberList()
    /// Members piggybacked as failed on this write.
    var piggybacked = MemberList()
    /// MAP_ADD phase: legs still to answer, and the legs that recorded the MAP_ADD.
    var mapAddWaitingOn = MemberList()
    var mapAddRecordedBy = MemberList()
    var inMapAddPhase = false
    /// Writes: legs known to have missed another write to the same chunk while this one was in
    /// flight (it went out without them, piggybacked as failed, or it failed there). Their copy
    /// of the chunk lacks that write, so holding this write's data there does not make it
    /// acknowledgeable (fuzz seed 1828).
    var missedAnotherWrite = MemberList()
    /// Reads: legs already tried, and the first error seen.
    var tried = MemberList()
    var firstError: Errno?
}

extension IOUnit {
    /// The unit serving queued request `q` in `slot`.
    init(id: UInt64, _ q: borrowing QueuedIO, chunk: ChunkIndex, slot: UInt32) {
        self.init(id: id, owner: q.owner, op: q.op, offsetBytes: q.offsetBytes, lengthBytes: q.lengthBytes,
                  chunk: chunk, slot: slot)
    }

    /// `member` answered a data request: it is no longer waited on; a write records whether it
    /// took the data. Returns the operation, the length, and whether no leg is waited on.
    mutating func legAnswered(_ member: MemberID, ok: Bool) -> (IOOperation, UInt64, Bool) {
        waitingOn.removeAll { $0 == member }
        if op == .write {
            if ok { succeeded.append(member) } else { failed.append(member) }
        }
        return (op, lengthBytes, waitingOn.isEmpty)
    }
}

/// An operation that needs IO frozen and drained before it proceeds.
enum FreezeAction: Sendable, Hashable {
    case recovery(job: UInt64)
    case maintenance(session: String, token: AdminToken)
    case leave(session: String, mode: LeaveMode, token: AdminToken)
}

/// A request waiting for an IO slot or for the end of an IO freeze.
struct QueuedIO: Sendable, Hashable {
    let owner: IOOwner
    let op: IOOperation
    let offsetBytes: UInt64
    let lengthBytes: UInt64
    let data: [UInt8]
}

struct ClientPool: Sendable {
    let name: String
    let isSync: Bool
    var chunkBytes: UInt64
    var mappedSectors: UInt64 = 0
    var poolUUID: PoolUUID
    /// The UUID is the pool's (made by this client for a create, or learned from a node);
    /// a fresh client assembling an existing pool does not know it yet.
    var poolUUIDConfirmed = false
    var legs: [Leg] = []
    /// pool_md: the members of the pool as this client knows them, ascending.
    var members: [MemberID] = []
    /// One map per member, ascending by member id; plus the map's last-change time and a
    /// generation counter that any change bumps (guards the MAP_CHECK race, notes §6.6).
    var mapMembers: [MemberID] = []
    var maps: [DirtyMap] = []
    var mapChangedAt: [Instant] = []
    var mapGeneration: [UInt64] = []
    var mapVersion: MapVersion = .initial
    /// Chunks whose last write failed on every leg (or whose MAP_ADD reached none): the data may
    /// be on some legs and not others, and no node records it. Case 2 of try_enable marks them
    /// dirty for everyone but the authoritative leg before spreading its map (fuzz seed 206).
    var indeterminate: [ChunkIndex] = []
    /// A brmr device is mapped on this pool (IN_USE).
    var inUse = false
    let queueDepth: Int
    var freeSlots: [UInt32]
    var units: IntKeyedTable<UInt64, IOUnit> = [:]
    var queued: [QueuedIO] = []
    /// IO is frozen for a map spread, a maintenance switch or a leg removal: `freezeHolders`
    /// operations hold the freeze; those in `drainWaiters` run once in-flight IO has finished.
    var frozen = false
    var freezeHolders = 0
    var drainWaiters: [FreezeAction] = []
    var readCursor = 0
    var recovery: RecoveryJob?
    var nextTick: Instant?
    /// `pool_enable` writes waiting for the recovery they triggered.
    var enableWaiters: [AdminToken] = []

    init(name: String, isSync: Bool, chunkBytes: UInt64, queueDepth: Int, poolUUID: PoolUUID) {
        self.name = name
        self.isSync = isSync
        self.chunkBytes = chunkBytes
        self.queueDepth = queueDepth
        self.poolUUID = poolUUID
        self.freeSlots = (0..<UInt32(queueDepth)).reversed()
    }

    @inline(__always) var geometry: ChunkGeometry {
        ChunkGeometry(chunkBytes: chunkBytes, mappedBytes: mappedSectors * Limits.sectorBytes)
    }

    func legIndex(session: String) -> Int? { legs.firstIndex { $0.session == session } }
    func legIndex(member: MemberID) -> Int? { legs.firstIndex { $0.member == member && $0.member != 0 } }
    func legIndices(address: HostAddress) -> [Int] { legs.indices.filter { legs[$0].address == address } }

    var nonSyncNormalCount: Int { legs.filter { !$0.isSync && $0.state == .normal }.count }

    /// Legs a new write goes to: NORMAL and not in maintenance, in member order.
    var writeTargets: MemberList { ClientPool.writeTargets(legs) }

    static func writeTargets(_ legs: [Leg]) -> MemberList {
        var out = MemberList()
        for l in legs where l.state == .normal && !l.maintenance && l.member != 0 { out.insertSorted(l.member) }
        return out
    }

    /// Members that must be piggybacked as dirty on a write: every pool member whose leg is
    /// FAILED or RECONNECTING (incl. maintenance), or that has no leg at all (disassembled).
    var piggybackMembers: MemberList { ClientPool.piggybackMembers(members, legs) }

    static func piggybackMembers(_ members: [MemberID], _ legs: [Leg]) -> MemberList {
        var out = MemberList()
        for m in members {
            let piggybacked: Bool
            if let i = legs.firstIndex(where: { $0.member == m && $0.member != 0 }) {
                switch legs[i].state {
                case .failed, .reconnecting: piggybacked = true
                case .normal: piggybacked = legs[i].maintenance
                case .created, .removing: piggybacked = false
                }
            } else {
                piggybacked = true
            }
            if piggybacked { out.append(m) }
        }
        return out
    }

    func mapIndex(_ member: MemberID) -> Int? { mapMembers.firstIndex(of: member) }

    mutating func ensureMap(_ member: MemberID, allDirty: Bool, at now: Instant) {
        if mapIndex(member) != nil { return }
        var insertAt = mapMembers.count
        for (i, m) in mapMembers.enumerated() where m > member { insertAt = i; break }
        mapMembers.insert(member, at: insertAt)
        maps.insert(DirtyMap(chunkCount: geometry.chunkCount, allDirty: allDirty), at: insertAt)
        mapChangedAt.insert(now, at: insertAt)
        mapGeneration.insert(0, at: insertAt)
    }

    mutating func dropMap(_ member: MemberID) {
        guard let i = mapIndex(member) else { return }
        mapMembers.remove(at: i); maps.remove(at: i); mapChangedAt.remove(at: i); mapGeneration.remove(at: i)
    }

    /// `missed` did not take a write to `chunk` (it went out without them, or failed there):
    /// every write to the same chunk in flight records it.
    mutating func noteMissedWrite(_ missed: MemberList, chunk: ChunkIndex) {
        var inFlight: [UInt64] = []
        for (id, unit) in units where unit.op == .write && unit.chunk == chunk { inFlight.append(id) }
        for id in inFlight {
            units.update(id) { unit in
                for m in missed where !unit.missedAnotherWrite.contains(m) { unit.missedAnotherWrite.append(m) }
            }
        }
    }

    mutating func markDirty(_ member: MemberID, chunk: ChunkIndex, at now: Instant) {
        ensureMap(member, allDirty: false, at: now)
        let i = mapIndex(member)!
        maps[i].set(chunk)
        mapChangedAt[i] = now
        mapGeneration[i] &+= 1
    }

    mutating func addMember(_ member: MemberID) {
        guard !members.contains(member) else { return }
        members.append(member)
        members.sort()
    }
}
