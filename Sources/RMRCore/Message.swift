// Every message exchanged between nodes (notes §8), as one value type. Requests carry a
// RequestID that the matching response echoes. Offsets are 64-bit (the reference is 32-bit).

public struct RequestID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: RequestID, b: RequestID) -> Bool { a.raw < b.raw }
    public var description: String { "#\(raw)" }
}

public enum IOOperation: UInt8, Sendable, Hashable { case read, write, flush }

/// A data request from a client pool (IO pool or sync pool) to a server pool.
public struct IORequest: Sendable, Hashable {
    public var op: IOOperation
    public var offsetBytes: UInt64
    public var lengthBytes: UInt64
    public var data: [UInt8]
    /// IO-unit slot (`mem_id`): kept for the trace; write intents are per chunk.
    public var slot: UInt32
    public var mapVersion: MapVersion
    /// Members that must be recorded dirty for this chunk (piggybacked failed ids, ≤ 4).
    public var failedMembers: [MemberID]
    /// The member this request targets.
    public var target: MemberID
    public init(op: IOOperation, offsetBytes: UInt64, lengthBytes: UInt64, data: [UInt8], slot: UInt32,
                mapVersion: MapVersion, failedMembers: [MemberID], target: MemberID) {
        self.op = op
        self.offsetBytes = offsetBytes
        self.lengthBytes = lengthBytes
        self.data = data
        self.slot = slot
        self.mapVersion = mapVersion
        self.failedMembers = failedMembers
        self.target = target
    }
}

/// JOIN_POOL / REJOIN_POOL body.
public struct JoinRequest: Sendable, Hashable {
    public var poolUUID: PoolUUID
    public var queueDepth: UInt32
    public var chunkBytes: UInt64
    public var create: Bool
    /// The new leg joins dirty: it is not the first leg of a new pool.
    public var dirty: Bool
    /// Members the client already has, and whether the client's map for each is non-empty.
    public var peers: [PeerInfo]
    public var rejoin: Bool
    /// The sender is a sync pool on a storage node.
    public var fromSyncPool: Bool
    public init(poolUUID: PoolUUID, queueDepth: UInt32, chunkBytes: UInt64, create: Bool, dirty: Bool,
                peers: [PeerInfo], rejoin: Bool, fromSyncPool: Bool) {
        self.poolUUID = poolUUID
        self.queueDepth = queueDepth
        self.chunkBytes = chunkBytes
        self.create = create
        self.dirty = dirty
        self.peers = peers
        self.rejoin = rejoin
        self.fromSyncPool = fromSyncPool
    }
}

public struct PeerInfo: Sendable, Hashable {
    public var member: MemberID
    public var clientMapDirty: Bool
    public init(member: MemberID, clientMapDirty: Bool) { self.member = member; self.clientMapDirty = clientMapDirty }
}

public struct JoinReply: Sendable, Hashable {
    public var member: MemberID
    public var chunkBytes: UInt64
    public var mappedSectors: UInt64
    public var poolUUID: PoolUUID
    public init(member: MemberID, chunkBytes: UInt64, mappedSectors: UInt64, poolUUID: PoolUUID) {
        self.member = member
        self.chunkBytes = chunkBytes
        self.mappedSectors = mappedSectors
        self.poolUUID = poolUUID
    }
}

public enum PoolInfoOperation: UInt8, Sendable, Hashable { case add, remove }
public enum PoolInfoMode: UInt8, Sendable, Hashable { case create, assemble, delete, disassemble }

/// One SEND_MAP_BUF: runs of one member's map. Runs, not pages: bytes ∝ dirty runs.
public struct MapBuffer: Sendable, Hashable {
    public var member: MemberID
    public var runs: [ChunkRun]
    public init(member: MemberID, runs: [ChunkRun]) { self.member = member; self.runs = runs }
}

/// A member's full map as read back by the client (READ_MAP_BUF).
public struct MemberMapRuns: Sendable, Hashable {
    public var member: MemberID
    public var runs: [ChunkRun]
    public init(member: MemberID, runs: [ChunkRun]) { self.member = member; self.runs = runs }
}

/// The pool description a server returns to MD_SEND (notes §7.4).
public struct PoolMetadata: Sendable, Hashable {
    public var poolName: String
    public var poolUUID: PoolUUID
    public var chunkBytes: UInt64
    public var mappedSectors: UInt64
    public var mapVersion: MapVersion
    public var members: [MemberID]
    public init(poolName: String, poolUUID: PoolUUID, chunkBytes: UInt64, mappedSectors: UInt64,
                mapVersion: MapVersion, members: [MemberID]) {
        self.poolName = poolName
        self.poolUUID = poolUUID
        self.chunkBytes = chunkBytes
        self.mappedSectors = mappedSectors
        self.mapVersion = mapVersion
        self.members = members
    }
}

/// BRMR commands carried as RMR USER commands (notes §8.5).
public enum BRMRCommand: Sendable, Hashable {
    case getParams
    case map(mappedSectors: UInt64)
    case unmap
}

public enum Request: Sendable, Hashable {
    case join(JoinRequest)
    case leave(member: MemberID, delete: Bool, fromSyncPool: Bool)
    case enablePool(Bool)
    /// Clear maintenance mode on the node; never admits it to IO (ours: the reference overloads
    /// ENABLE_POOL(1), which would enable a rebooted node that lost its maintenance flag
    /// without a map update).
    case leaveMaintenance
    case poolInfo(member: MemberID, operation: PoolInfoOperation, mode: PoolInfoMode, dirty: Bool)
    case io(IORequest)
    case mapAdd(chunk: ChunkIndex, failedMembers: [MemberID], mapVersion: MapVersion)
    case mapClear(chunk: ChunkIndex, member: MemberID)
    case mapReady
    case mapSend(receiver: MemberID)
    case mapBuffer(MapBuffer)
    case mapBufDone(MapVersion)
    case mapDone(enable: Bool)
    case mapDisable
    case readMaps
    /// "Is your own map clean?" `atLeast`: a peer storage node asks with its own map version,
    /// and the answer is "clean" (1) only if the answerer's version is not older: a node that
    /// has not been through a map update since the client failed it (and bumped the version)
    /// may be NORMAL with a clean map of its own and still have missed writes that only the
    /// asker's copy records (found by fuzz seed 1163). The client asks with version 0: it
    /// only asks legs it has itself made NORMAL.
    case mapCheck(atLeast: MapVersion)
    case lastIOToMap
    /// Our addition to last-IO reconciliation: record these chunks dirty for all members but
    /// `except` (the node whose write intents produced them). Fixes notes §11 item 10.
    case markDirty(chunks: [ChunkIndex], except: MemberID)
    /// Our addition to last-IO reconciliation: OR these dirty records (another participant's
    /// maps) into the receiver's, which is then spread as the map source. Picking one node's
    /// maps would drop records only another node holds (fuzz seed 1828). A chunk a record
    /// would leave dirty for every member is left as it is (no node could sync it).
    case mergeMaps([MemberMapRuns])
    case storeCheck
    case sendMetadata(PoolMetadata)
    case metadataRequest(full: Bool)
    case mapGetVersion
    case mapSetVersion(MapVersion)
    case discard(member: MemberID)
    case user(BRMRCommand)

    /// The reference's message name, for traces.
    public var name: String {
        switch self {
        case .join(let j): return j.rejoin ? "REJOIN_POOL" : "JOIN_POOL"
        case .leave: return "LEAVE_POOL"
        case .enablePool: return "ENABLE_POOL"
        case .leaveMaintenance: return "LEAVE_MAINTENANCE"
        case .poolInfo: return "POOL_INFO"
        case .io(let r): return r.op == .read ? "IO_READ" : (r.op == .write ? "IO_WRITE" : "IO_FLUSH")
        case .mapAdd: return "MAP_ADD"
        case .mapClear: return "MAP_CLEAR"
        case .mapReady: return "MAP_READY"
        case .mapSend: return "MAP_SEND"
        case .mapBuffer: return "SEND_MAP_BUF"
        case .mapBufDone: return "MAP_BUF_DONE"
        case .mapDone: return "MAP_DONE"
        case .mapDisable: return "MAP_DISABLE"
        case .readMaps: return "READ_MAP_BUF"
        case .mapCheck: return "MAP_CHECK"
        case .lastIOToMap: return "LAST_IO_TO_MAP"
        case .markDirty: return "MARK_DIRTY"
        case .mergeMaps: return "MAP_MERGE"
        case .storeCheck: return "STORE_CHECK"
        case .sendMetadata: return "SEND_MD_BUF"
        case .metadataRequest: return "MD_SEND"
        case .mapGetVersion: return "MAP_GET_VER"
        case .mapSetVersion: return "MAP_SET_VER"
        case .discard: return "SEND_DISCARD"
        case .user: return "USER"
        }
    }
}

public enum Response: Sendable, Hashable {
    case ok
    case failed(Errno)
    case joined(JoinReply)
    case value(UInt64)
    case data([UInt8])
    case maps([MemberMapRuns], MapVersion)
    case metadata(PoolMetadata)
    case chunksMarked([ChunkIndex])
    case deviceParams(mapped: Bool, mappedSectors: UInt64)

    public var isOK: Bool {
        switch self {
        case .failed: return false
        case .ok, .joined, .value, .data, .maps, .metadata, .chunksMarked, .deviceParams: return true
        }
    }
}

/// A message on the wire between two hosts.
public enum Message: Sendable, Hashable {
    case request(RequestID, pool: String, Request)
    case response(RequestID, pool: String, Response)
}
