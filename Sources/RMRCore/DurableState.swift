// What a storage node keeps on disk for one pool, and the ordered updates the core asks the
// driver to make durable. The on-disk encoding lives in RMRFormat; the simulator's disk model
// applies the same updates, so a crash in simulation recovers through the same logic.

/// The durable part of a server pool + its store (notes §7). Value type, comparable for tests.
public struct DurablePoolState: Sendable, Hashable {
    public var poolName: String
    public var poolUUID: PoolUUID
    public var member: MemberID
    public var chunkBytes: UInt64
    public var mappedSectors: UInt64
    public var deviceSectors: UInt64
    /// The store passed the cross-node check of a BRMR map (`mapped`).
    public var storeMapped: Bool
    public var mapVersion: MapVersion
    /// Members of the pool as this node knows them, ascending.
    public var members: [MemberID]
    /// Dirty map per member (index-aligned with `mapMembers`), ascending by member id.
    public var mapMembers: [MemberID]
    public var maps: [DirtyMap]
    /// Write-intent records: chunks that may have been written recently (a superset of the
    /// reference's last_io array). Sorted ascending.
    public var writeIntents: [ChunkIndex]
    /// The store was created and no create-mode session has joined yet.
    public var markedCreate: Bool

    public init(poolName: String, poolUUID: PoolUUID, member: MemberID, chunkBytes: UInt64,
                mappedSectors: UInt64, deviceSectors: UInt64) {
        self.poolName = poolName
        self.poolUUID = poolUUID
        self.member = member
        self.chunkBytes = chunkBytes
        self.mappedSectors = mappedSectors
        self.deviceSectors = deviceSectors
        self.storeMapped = false
        self.mapVersion = .initial
        self.members = [member]
        self.mapMembers = []
        self.maps = []
        self.writeIntents = []
        self.markedCreate = true
    }

    public var geometry: ChunkGeometry {
        ChunkGeometry(chunkBytes: chunkBytes, mappedBytes: mappedSectors * Limits.sectorBytes)
    }

    public func map(for member: MemberID) -> DirtyMap? {
        guard let i = mapMembers.firstIndex(of: member) else { return nil }
        return maps[i]
    }

    /// Applies one update. Updates are idempotent so a replayed journal converges.
    public mutating func apply(_ update: MetadataUpdate) {
        switch update {
        case .header(let h):
            poolName = h.poolName
            poolUUID = h.poolUUID
            member = h.member
            chunkBytes = h.chunkBytes
            mappedSectors = h.mappedSectors
            storeMapped = h.storeMapped
            mapVersion = h.mapVersion
            members = h.members
            markedCreate = h.markedCreate
        case .setDirty(let m, let chunks):
            let i = mapIndex(m)
            maps[i].set(contentsOf: chunks)
        case .clearDirty(let m, let chunks):
            let i = mapIndex(m)
            maps[i].clear(contentsOf: chunks)
        case .setAllDirty(let m):
            let i = mapIndex(m)
            maps[i].setAll()
        case .replaceMap(let m, let runs):
            let i = mapIndex(m)
            maps[i].clearAll()
            maps[i].insert(runs: runs)
        case .dropMap(let m):
            if let i = mapMembers.firstIndex(of: m) {
                mapMembers.remove(at: i)
                maps.remove(at: i)
            }
        case .addIntents(let chunks):
            for c in chunks {
                let i = DurablePoolState.lowerBound(writeIntents, c)
                if i == writeIntents.count || writeIntents[i] != c { writeIntents.insert(c, at: i) }
            }
        case .removeIntents(let chunks):
            for c in chunks {
                let i = DurablePoolState.lowerBound(writeIntents, c)
                if i < writeIntents.count && writeIntents[i] == c { writeIntents.remove(at: i) }
            }
        case .clearIntents:
            writeIntents = []
        }
    }

    /// First index in the sorted `a` whose element is not less than `x`.
    static func lowerBound(_ a: [ChunkIndex], _ x: ChunkIndex) -> Int {
        var lo = 0, hi = a.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if a[mid] < x { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    private mutating func mapIndex(_ m: MemberID) -> Int {
        if let i = mapMembers.firstIndex(of: m) { return i }
        let count = geometry.chunkCount
        var insertAt = mapMembers.count
        for (i, existing) in mapMembers.enumerated() where existing > m { insertAt = i; break }
        mapMembers.insert(m, at: insertAt)
        maps.insert(DirtyMap(chunkCount: count), at: insertAt)
        return insertAt
    }
}

/// The small, rewrite-in-place part of the durable state.
public struct StoreHeader: Sendable, Hashable {
    public var poolName: String
    public var poolUUID: PoolUUID
    public var member: MemberID
    public var chunkBytes: UInt64
    public var mappedSectors: UInt64
    public var storeMapped: Bool
    public var mapVersion: MapVersion
    public var members: [MemberID]
    public var markedCreate: Bool
    public init(poolName: String, poolUUID: PoolUUID, member: MemberID, chunkBytes: UInt64,
                mappedSectors: UInt64, storeMapped: Bool, mapVersion: MapVersion,
                members: [MemberID], markedCreate: Bool) {
        self.poolName = poolName
        self.poolUUID = poolUUID
        self.member = member
        self.chunkBytes = chunkBytes
        self.mappedSectors = mappedSectors
        self.storeMapped = storeMapped
        self.mapVersion = mapVersion
        self.members = members
        self.markedCreate = markedCreate
    }
}

/// One durable change. A `PersistRecord` groups updates that must become durable together.
public enum MetadataUpdate: Sendable, Hashable {
    case header(StoreHeader)
    case setDirty(member: MemberID, chunks: [ChunkIndex])
    case clearDirty(member: MemberID, chunks: [ChunkIndex])
    case setAllDirty(member: MemberID)
    case replaceMap(member: MemberID, runs: [ChunkRun])
    case dropMap(member: MemberID)
    case addIntents([ChunkIndex])
    case removeIntents([ChunkIndex])
    case clearIntents
}

/// Updates that become durable atomically, in order (the store writes them as one checksummed
/// journal record). The core waits for `persistCompleted` before any acknowledgement that
/// depends on them.
public struct PersistRecord: Sendable, Hashable {
    public var updates: [MetadataUpdate]
    public init(_ updates: [MetadataUpdate]) { self.updates = updates }
}
