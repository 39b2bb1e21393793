// Read-only views of a node's state: what the control tree renders and tests assert on.

public struct ServerPoolView: Sendable, Hashable {
    public var name: String
    public var member: MemberID
    public var state: ServerPoolState
    public var maintenance: Bool
    public var syncThread: SyncThreadState
    public var mapUpdate: MapUpdateState
    public var mapVersion: MapVersion
    public var poolUUID: PoolUUID
    /// Maps held by this node, own member first, then the others ascending.
    public var maps: [(member: MemberID, map: DirtyMap)]
    /// Name of the attached sync client pool, if `add_clt` ran.
    public var syncPool: String?
    public var writeIntentCount: Int

    public static func == (a: ServerPoolView, b: ServerPoolView) -> Bool {
        a.name == b.name && a.member == b.member && a.state == b.state && a.maintenance == b.maintenance
            && a.syncThread == b.syncThread && a.mapUpdate == b.mapUpdate && a.mapVersion == b.mapVersion
            && a.poolUUID == b.poolUUID && a.syncPool == b.syncPool && a.writeIntentCount == b.writeIntentCount
            && a.maps.map(\.member) == b.maps.map(\.member) && a.maps.map(\.map) == b.maps.map(\.map)
    }
    public func hash(into h: inout Hasher) { h.combine(name); h.combine(member); h.combine(state) }
}

public struct LegView: Sendable, Hashable {
    public var session: String
    public var address: HostAddress
    /// 0 until the join response named the member.
    public var member: MemberID
    public var state: LegState
    public var maintenance: Bool
    public var wasLastAuthoritative: Bool
}

public struct ClientPoolView: Sendable, Hashable {
    public var name: String
    public var isSync: Bool
    public var chunkBytes: UInt64
    public var mappedSectors: UInt64
    public var mapVersion: MapVersion
    public var poolUUID: PoolUUID
    public var legs: [LegView]
    /// Members of the pool as the client knows them (pool_md), ascending.
    public var members: [MemberID]
    public var normalCount: Int
    public var inUse: Bool
}

public struct StoreView: Sendable, Hashable {
    public var pool: String
    public var device: String
    public var open: Bool
    public var mapped: Bool
    public var mappedSectors: UInt64
    public var deviceSectors: UInt64
}

public struct DeviceView: Sendable, Hashable {
    public var name: String
    public var pool: String
    public var state: DeviceState
    public var sizeSectors: UInt64
}
