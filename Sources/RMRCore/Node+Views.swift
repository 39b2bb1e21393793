// Read-only getters (what the control tree renders and tests assert on), the state digest
// used to prove a refused command changed nothing, and the invariant checks run after inputs.

extension Node {
    public var serverPoolNames: [String] { serverPools.map(\.name) }
    public var clientPoolNames: [String] { clientPools.map(\.name) }
    public var deviceNames: [String] { devices.map(\.name) }

    public func serverPool(_ name: String) -> ServerPoolView? {
        guard let s = serverPoolIndex(name) else { return nil }
        let p = serverPools[s]
        var maps: [(member: MemberID, map: DirtyMap)] = []
        if let own = p.mapIndex(p.member) { maps.append((p.member, p.maps[own])) }
        for (i, m) in p.mapMembers.enumerated() where m != p.member { maps.append((m, p.maps[i])) }
        return ServerPoolView(name: p.name, member: p.member, state: p.state, maintenance: p.maintenance,
                              syncThread: p.syncThread, mapUpdate: p.mapUpdate, mapVersion: p.mapVersion,
                              poolUUID: p.poolUUID, maps: maps, syncPool: p.syncPool, writeIntentCount: p.intents.count)
    }

    public func clientPool(_ name: String) -> ClientPoolView? {
        guard let c = clientPoolIndex(name) else { return nil }
        let p = clientPools[c]
        return ClientPoolView(name: p.name, isSync: p.isSync, chunkBytes: p.chunkBytes, mappedSectors: p.mappedSectors,
                              mapVersion: p.mapVersion, poolUUID: p.poolUUID,
                              legs: p.legs.map { LegView(session: $0.session, address: $0.address, member: $0.member, state: $0.state,
                                                         maintenance: $0.maintenance, wasLastAuthoritative: $0.wasLastAuthoritative) },
                              members: p.members, normalCount: p.nonSyncNormalCount, inUse: p.inUse)
    }

    /// The client's own dirty map for `member` in pool `name` (tests and the fuzzer's checkers).
    public func clientMap(_ name: String, member: MemberID) -> DirtyMap? {
        guard let c = clientPoolIndex(name), let i = clientPools[c].mapIndex(member) else { return nil }
        return clientPools[c].maps[i]
    }

    public func store(forPool name: String) -> StoreView? {
        guard let s = serverPoolIndex(name), let st = serverPools[s].store else { return nil }
        return StoreView(pool: name, device: st.device, open: st.open, mapped: st.mapped,
                         mappedSectors: st.mappedSectors, deviceSectors: st.deviceSectors)
    }

    public func device(_ name: String) -> DeviceView? {
        guard let d = devices.first(where: { $0.name == name }) else { return nil }
        return DeviceView(name: d.name, pool: d.pool, state: d.state, sizeSectors: d.sizeSectors)
    }

    /// Is `chunk` locked for a sync on this node's server pool (checker c of the fuzzer)?
    public func isChunkLocked(pool name: String, chunk: ChunkIndex) -> Bool {
        guard let s = serverPoolIndex(name) else { return false }
        return serverPools[s].locks[chunk] != nil
    }

    /// A digest of everything an operator can observe plus the protocol state; equal digests
    /// before and after a refused command prove it changed nothing.
    public var stateDigest: UInt64 {
        var h = Digest()
        for p in clientPools {
            h.add(p.name); h.add(p.isSync ? 1 : 0); h.add(p.chunkBytes); h.add(p.mappedSectors); h.add(p.mapVersion.raw)
            h.add(p.poolUUID.high); h.add(p.poolUUID.low); h.add(p.inUse ? 1 : 0)
            for l in p.legs {
                h.add(l.session); h.add(l.address); h.add(UInt64(l.member)); h.add(l.state.rawValue)
                h.add(l.maintenance ? 1 : 0); h.add(l.wasLastAuthoritative ? 1 : 0)
            }
            for m in p.members { h.add(UInt64(m)) }
            for (i, m) in p.mapMembers.enumerated() { h.add(UInt64(m)); for r in p.maps[i].runs() { h.add(r.start); h.add(r.count) } }
        }
        for s in serverPools {
            h.add(s.name); h.add(UInt64(s.member)); h.add(s.state.rawValue); h.add(s.maintenance ? 1 : 0)
            h.add(s.mapUpdate.rawValue); h.add(s.mapVersion.raw); h.add(s.poolUUID.high); h.add(s.poolUUID.low)
            h.add(s.syncThread == .running ? 1 : 0); h.add(s.syncPool ?? "-"); h.add(s.markedCreate ? 1 : 0); h.add(s.markedDelete ? 1 : 0)
            if let st = s.store { h.add(st.device); h.add(st.open ? 1 : 0); h.add(st.mapped ? 1 : 0); h.add(st.mappedSectors) }
            for m in s.members { h.add(UInt64(m)) }
            for (i, m) in s.mapMembers.enumerated() { h.add(UInt64(m)); for r in s.maps[i].runs() { h.add(r.start); h.add(r.count) } }
            for c in s.intents.keys.sorted() { h.add(c) }
        }
        for d in devices { h.add(d.name); h.add(d.pool); h.add(d.sizeSectors) }
        return h.value
    }

    // MARK: Invariants (style rule 10: after every input, in release builds too; whole-map
    // scans only with `verify`)

    // Inlined into `apply` with its two helpers: calling a non-mutating method of the node from
    // a mutating one copies the whole node (336 bytes) to pass it, once per input.
    @inline(__always) func checkInvariants() {
        // Indices, not `for p in pools`: a loop variable would copy each pool (a retain and a
        // release per field) on every input; this runs after every input, in release builds.
        for pi in clientPools.indices {
            checkClientPool(pi)
        }
        for si in serverPools.indices {
            checkServerPool(si)
        }
        // Every persist whose store incarnation is kept is still waited for, and the persist
        // barriers likewise (`persistStores` / `persistBarriers` are dropped with the persist).
        if options.verify, !persistStores.isEmpty || !persistBarriers.isEmpty {
            for (tag, _) in persistStores { precondition(persistActions[tag] != nil, "persist \(tag.raw): store incarnation kept after completion") }
            for (tag, _) in persistBarriers { precondition(persistActions[tag] != nil, "persist \(tag.raw): barrier kept after completion") }
        }
    }

    @inline(__always) private func checkClientPool(_ pi: Int) {
        // The name is read only when a message is made (keeping it in a local costs a retain).
        var name: String { clientPools[pi].name }
        precondition(clientPools[pi].freeSlots.count + clientPools[pi].units.count == clientPools[pi].queueDepth, "\(name): IO slots leaked")
        precondition(clientPools[pi].frozen == (clientPools[pi].freezeHolders > 0), "\(name): frozen flag disagrees with holders")
        precondition(clientPools[pi].legs.count <= Limits.maxLegs, "\(name): more than \(Limits.maxLegs) legs")
        if !clientPools[pi].frozen { precondition(clientPools[pi].drainWaiters.isEmpty, "\(name): drain waiters without a freeze") }
        // Legs read in place by index: binding the array (or borrowing its buffer) retains and
        // releases it once per input.
        let legCount = clientPools[pi].legs.count
        var normal = false
        for i in 0..<legCount where !clientPools[pi].legs[i].isSync && clientPools[pi].legs[i].state == .normal { normal = true }
        for i in 0..<legCount {
            var leg: String { clientPools[pi].legs[i].session }
            let state = clientPools[pi].legs[i].state
            precondition(!(state == .normal && clientPools[pi].legs[i].maintenance), "\(name)/\(leg): normal in maintenance")
            precondition(!(normal && clientPools[pi].legs[i].wasLastAuthoritative), "\(name)/\(leg): authoritative flag beside a normal leg")
            let member = clientPools[pi].legs[i].member
            var j = i + 1
            while j < legCount {
                precondition(member == 0 || clientPools[pi].legs[j].member != member, "\(name): two legs with member id \(member)")
                j += 1
            }
        }
    }

    @inline(__always) private func checkServerPool(_ si: Int) {
        let state = serverPools[si].state
        let hasStore = serverPools[si].store != nil
        precondition(!(state == .normal && !hasStore), "\(serverPools[si].name): normal without a store")
        precondition(!(state == .normal && serverPools[si].maintenance), "\(serverPools[si].name): normal in maintenance")
        precondition(!(state == .empty && hasStore), "\(serverPools[si].name): empty with a store")
        precondition(serverPools[si].syncInFlight <= options.syncQueueDepth, "\(serverPools[si].name): sync queue depth exceeded")
        precondition(!(serverPools[si].syncThread == .running && state != .normal), "\(serverPools[si].name): sync thread running outside normal")
        if serverPools[si].locks.isEmpty {
            precondition(serverPools[si].syncInFlight == 0, "\(serverPools[si].name): sync in-flight count drifted")
        } else {
            var background = 0
            for (c, lock) in serverPools[si].locks {
                if lock.background { background += 1 }
                // A lock exists only while our own copy of the chunk is stale.
                precondition(serverPools[si].isDirtyForSelf(c), "\(serverPools[si].name): chunk \(c) locked but clean for self")
            }
            precondition(serverPools[si].syncInFlight == background, "\(serverPools[si].name): sync in-flight count drifted")
        }
        if options.verify, hasStore {
            let count = serverPools[si].geometry.chunkCount
            for m in serverPools[si].maps { precondition(m.chunkCount == count, "\(serverPools[si].name): map size differs from volume") }
        }
        // Every chunk barrier is found from its persist's tag (`persistBarriers`, which the
        // completion uses instead of scanning the pools).
        if options.verify, !serverPools[si].chunkPersist.isEmpty {
            for (c, tag) in serverPools[si].chunkPersist {
                precondition(persistBarriers[tag] == PersistBarrier(pool: serverPools[si].name, chunk: c),
                             "\(serverPools[si].name): chunk \(c) waits for persist \(tag.raw), which does not know it")
            }
        }
    }
}

/// FNV-1a 64, for state digests (deterministic across processes, unlike `Hasher`).
struct Digest {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ v: UInt64) {
        var x = v
        for _ in 0..<8 { value = (value ^ (x & 0xff)) &* 0x100_0000_01b3; x >>= 8 }
    }
    mutating func add(_ s: String) {
        for b in s.utf8 { value = (value ^ UInt64(b)) &* 0x100_0000_01b3 }
        add(UInt64(0xff))
    }
}
