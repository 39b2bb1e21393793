// The node-level vocabulary: inputs in, effects out (Docs/architecture.md).

/// Correlates a block IO from the upper layer (NBD, the simulator's workload) with its completion.
public struct BlockIOTag: Hashable, Sendable { public var raw: UInt64; public init(_ raw: UInt64) { self.raw = raw } }
/// Correlates a store data IO with its completion.
public struct StoreTag: Hashable, Sendable { public var raw: UInt64; public init(_ raw: UInt64) { self.raw = raw } }
/// Correlates a metadata persist with its completion.
public struct PersistTag: Hashable, Sendable { public var raw: UInt64; public init(_ raw: UInt64) { self.raw = raw } }

/// A block IO on a mapped device (`brmr0`).
public struct BlockRequest: Sendable, Hashable {
    public var tag: BlockIOTag
    public var device: String
    public var op: IOOperation
    public var offsetBytes: UInt64
    public var lengthBytes: UInt64
    public var data: [UInt8]
    public init(tag: BlockIOTag, device: String, op: IOOperation, offsetBytes: UInt64, lengthBytes: UInt64, data: [UInt8] = []) {
        self.tag = tag
        self.device = device
        self.op = op
        self.offsetBytes = offsetBytes
        self.lengthBytes = lengthBytes
        self.data = data
    }
}

public enum BlockIOResult: Sendable, Hashable {
    case ok(data: [UInt8])
    case failed(Errno)
}

/// Data IO on the local store device of a pool. Offsets are relative to the data region.
public enum StoreOperation: Sendable, Hashable {
    case read(offsetBytes: UInt64, lengthBytes: UInt64)
    case write(offsetBytes: UInt64, data: [UInt8])
    case flush
}

public enum StoreResult: Sendable, Hashable {
    case ok(data: [UInt8])
    case failed(Errno)
}

/// What the driver feeds into a node.
public enum Input: Sendable, Hashable {
    /// A write to the control tree, already parsed; `probe` is set for store commands.
    case admin(AdminCommand, token: AdminToken, probe: DeviceProbe?)
    case received(Message, from: HostAddress)
    /// The transport connected (or reconnected) to `peer`.
    case linkUp(peer: HostAddress)
    /// The transport lost `peer`.
    case linkDown(peer: HostAddress)
    case storeCompleted(StoreTag, StoreResult)
    case persistCompleted(PersistTag, ok: Bool)
    case blockIO(BlockRequest)
    /// The deadline returned by `nextDeadline` was reached (a spurious call is a no-op).
    case timerFired

    public var kindName: String {
        switch self {
        case .admin: return "admin"
        case .received(let m, _):
            switch m {
            case .request(_, _, let r): return "recv \(r.name)"
            case .response: return "recv response"
            }
        case .linkUp: return "link up"
        case .linkDown: return "link down"
        case .storeCompleted: return "store completed"
        case .persistCompleted: return "persist completed"
        case .blockIO: return "block IO"
        case .timerFired: return "timer"
        }
    }
}

/// What a node asks its driver to do, in order.
public enum Effect: Sendable, Hashable {
    case send(Message, to: HostAddress)
    /// Open (and keep reopening, RTRS-style) a connection to `peer`; answered by `linkUp`.
    case connect(peer: HostAddress)
    /// No pool uses `peer` any more: the connection may be closed.
    case disconnect(peer: HostAddress)
    case submitStore(StoreTag, device: String, StoreOperation)
    case persist(PersistTag, device: String, PersistRecord)
    /// Write fresh metadata for a new store (`create_store`, `add_store mode=replace`).
    indirect case formatStore(PersistTag, device: String, DurablePoolState)
    /// Wipe the metadata of a store (`delete_store`).
    case wipeStore(PersistTag, device: String)
    case completeBlockIO(BlockIOTag, BlockIOResult)
    case completeAdmin(AdminToken, AdminResult)
    case transitioned(Transition)
    case rejected(Rejection)
    case ignored(IgnoreReason)
    /// A named rare event happened (coverage probe for the fuzzer).
    case probe(CoverageProbe)
}

/// A state machine of the node, for transition records.
public enum Machine: Sendable, Hashable, CustomStringConvertible {
    case serverPool(String)
    case leg(pool: String, session: String)
    case syncThread(String)
    case mapUpdate(String)
    case store(String)
    case device(String)
    /// A control-tree command refused by the state it met (the admin answer carries the errno).
    case admin(String)
    public var description: String {
        switch self {
        case .serverPool(let p): return "server pool \(p)"
        case .leg(let p, let s): return "leg \(p)/\(s)"
        case .syncThread(let p): return "sync thread \(p)"
        case .mapUpdate(let p): return "map update \(p)"
        case .store(let p): return "store \(p)"
        case .device(let d): return "device \(d)"
        case .admin(let a): return "admin \(a)"
        }
    }
}

/// A named state transition and the event that caused it.
public struct Transition: Sendable, Hashable, CustomStringConvertible {
    public var machine: Machine
    public var from: String
    public var to: String
    public var cause: String
    public var at: Instant
    public init(machine: Machine, from: String, to: String, cause: String, at: Instant) {
        self.machine = machine
        self.from = from
        self.to = to
        self.cause = cause
        self.at = at
    }
    public var description: String { "\(machine): \(from) -> \(to) (\(cause))" }
}

/// An input the current state forbids. The state is unchanged (or moved to a safe fallback).
public struct Rejection: Sendable, Hashable, CustomStringConvertible {
    public var machine: Machine
    public var state: String
    public var input: String
    public var reason: String
    public init(machine: Machine, state: String, input: String, reason: String) {
        self.machine = machine
        self.state = state
        self.input = input
        self.reason = reason
    }
    public var description: String { "\(machine) in \(state) rejected \(input): \(reason)" }
}

/// A tolerated race: counted, not an error.
public enum IgnoreReason: Sendable, Hashable {
    case staleResponse(RequestID)
    case unknownPool(String)
    case duplicateLinkEvent(HostAddress)
    case staleTimer
    /// Client IO reached a pool that stopped serving before the client learned it.
    case ioRefusedNotServing(pool: String)
    /// A rejoin reached a pool that has no store yet (the operator has not re-added it).
    case joinRefusedNoStore(pool: String)
    /// ENABLE_POOL(1) reached a pool whose store the operator removed after the client chose to
    /// enable it: refused with ENODEV; the client fails the leg and retries after a store check.
    case enableRefusedNoStore(pool: String)
    /// MAP_MERGE reached a map source whose store the operator removed meanwhile: ENODEV; the
    /// client aborts the reconciliation and retries it.
    case mapMergeRefusedNoStore(pool: String)
    /// A request from a peer that holds no session (its session died with a link or a restart).
    case noSession(pool: String, peer: HostAddress)
    /// A map source whose sync session to the receiver is not (yet) back: the spread is retried.
    case mapSourceCannotReachReceiver(pool: String, receiver: MemberID)
    /// A store IO completed after its store was removed or replaced: the IO fails, the
    /// current store is untouched.
    case completionOfRemovedStore(pool: String)
    /// A map buffer (SEND_MAP_BUF / MAP_BUF_DONE) the source sent before the client aborted
    /// the spread (MAP_DISABLE overtook it): refused with ECANCELED, nothing changes.
    case mapBufferAfterAbort(pool: String)
}

/// Rare events the fuzzer counts (issue 4, coverage probes).
public enum CoverageProbe: String, Sendable, Hashable, CaseIterable {
    case writeToLockedChunk
    case readToLockedChunk
    case syncSourceFailedMidChunk
    case syncReadOfDirtyChunkRefused
    /// A chunk sync passed over a peer that this node records as dirty for the chunk.
    case syncSourceKnownDirtySkipped
    case lastIOReconciliationThreeOrMoreLegs
    case lastIOReconciliation
    case mapSpreadAborted
    case maintenanceDuringSync
    case mapAddAfterPartialWrite
    /// A partially failed write whose only surviving copies are on legs that missed another
    /// write to the same chunk while it was in flight failed with EIO instead of being
    /// acknowledged there.
    case ackRefusedHolderMissedAnotherWrite
    case piggybackedFailedMember
    case readRetriedOnAnotherLeg
    case wasLastAuthoritativeEnable
    /// A write was acknowledged without a leg marked last authoritative (it missed the data
    /// or the MAP_ADD): the leg lost the mark, so Case 2 will not enable it as is.
    case authorityLostToMissedWrite
    /// A Case 2 recovery chose its leg before draining IO, and a write acknowledged in the
    /// drain took the leg's authority: try_enable chose again.
    case authoritativeRecoveryRechosen
    case mapCheckClearedClientMap
    case mapCheckSkippedYoungMap
    /// MARK_DIRTY named a source this node records as dirty for the chunk: another member
    /// clean here became its source.
    case markDirtySourceReplaced
    /// Last-IO reconciliation merged a participant's dirty records into the map source.
    case lastIOMapsMerged
    /// A merged record would have left a chunk dirty for every member: left as it was.
    case mapMergeSkippedChunkDirtyForAll
    case backgroundSyncCompleted
    case storeReplaced
    case writeIntentEvicted
}
