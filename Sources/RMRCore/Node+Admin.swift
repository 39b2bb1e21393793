// Control-tree commands. Local commands complete at once; commands that need a peer complete
// when it answers (a sysfs write blocks until then). A refused command changes nothing.

extension Node {
    mutating func handleAdmin(_ command: AdminCommand, token: AdminToken, probe: DeviceProbe?) {
        switch command {
        case .clientJoinPool(let pool, let chunk, let sync): clientJoinPool(pool, chunkBytes: chunk, sync: sync, token: token)
        case .addSession(let pool, let session, let address, let mode): addSession(pool, session: session, address: address, mode: mode, token: token)
        case .sessionEnable(let pool, let session, let enable): sessionEnable(pool, session: session, enable: enable, token: token)
        case .deleteSession(let pool, let session, let mode): deleteSession(pool, session: session, mode: mode, token: token)
        case .reconnectSession(let pool, let session, let address): reconnectSession(pool, session: session, address: address, token: token)
        case .poolEnable(let pool): manualPoolEnable(pool, token: token)
        case .clientLeavePool(let pool): clientLeavePool(pool, token: token)
        case .serverJoinPool(let pool, let member): serverJoinPool(pool, member: member, token: token)
        case .attachSyncPool(let pool, let syncPool): attachSyncPool(pool, syncPool: syncPool, token: token)
        case .sync(let pool, let command): syncCommand(pool, command, token: token)
        case .serverLeavePool(let pool): serverLeavePool(pool, token: token)
        case .createStore(let device, let pool, let mapped): createStore(device: device, pool: pool, mappedSectors: mapped, probe: probe, token: token)
        case .addStore(let device, let pool, let mapped, let mode): addStore(device: device, pool: pool, mappedSectors: mapped, mode: mode, probe: probe, token: token)
        case .removeStore(let pool): removeStore(pool, token: token)
        case .deleteStore(let pool): deleteStore(pool, token: token)
        case .mapDevice(let pool, let size): mapDevice(pool, sizeSectors: size, token: token)
        case .unmapDevice(let device): unmapDevice(device, token: token)
        }
    }

    // MARK: rmr-client pools

    mutating func clientJoinPool(_ name: String, chunkBytes: UInt64, sync: Bool, token: AdminToken) {
        guard clientPoolIndex(name) == nil else {
            return fail(token, .EEXIST, "client pool \(name) already exists")
        }
        guard chunkBytes.nonzeroBitCount == 1, chunkBytes >= Limits.minChunkBytes, chunkBytes <= Limits.maxChunkBytes else {
            return fail(token, .EINVAL, "chunk_size \(chunkBytes) must be a power of two between \(Limits.minChunkBytes) and \(Limits.maxChunkBytes)")
        }
        // The pool's identity is made here for IO pools; create-mode joins hand it to the servers.
        let uuid = sync ? PoolUUID.none : PoolUUID(high: rng.next(), low: rng.next())
        var pool = ClientPool(name: name, isSync: sync, chunkBytes: chunkBytes, queueDepth: options.queueDepth, poolUUID: uuid)
        pool.nextTick = now + Timing.recoverInterval
        clientPools.append(pool)
        completeAdmin(token, .ok)
    }

    mutating func clientLeavePool(_ name: String, token: AdminToken) {
        guard let p = clientPoolIndex(name) else { return fail(token, .ENOENT, "no client pool \(name)") }
        guard clientPools[p].legs.isEmpty else {
            return fail(token, .EBUSY, "client pool \(name) still has sessions (\(clientPools[p].legs.map(\.session).joined(separator: ", "))); del_sess them first")
        }
        guard !clientPools[p].inUse else {
            return fail(token, .EBUSY, "client pool \(name) is mapped as a device; unmap_device first")
        }
        for s in serverPools.indices where serverPools[s].syncPool == name { serverPools[s].syncPool = nil }
        clientPools.remove(at: p)
        completeAdmin(token, .ok)
    }

    // MARK: rmr-server pools

    mutating func serverJoinPool(_ name: String, member: MemberID, token: AdminToken) {
        guard serverPoolIndex(name) == nil else { return fail(token, .EEXIST, "server pool \(name) already exists") }
        guard member != 0 else { return fail(token, .EINVAL, "member_id must be between 1 and 255") }
        guard name.utf8.count <= Limits.maxPoolNameBytes else { return fail(token, .ENAMETOOLONG, "pool name longer than \(Limits.maxPoolNameBytes) bytes") }
        var pool = ServerPool(name: name, member: member)
        pool.nextCheck = nil
        serverPools.append(pool)
        emit(.transitioned(Transition(machine: .serverPool(name), from: "-", to: ServerPoolState.empty.rawValue, cause: cause, at: now)))
        completeAdmin(token, .ok)
    }

    mutating func attachSyncPool(_ name: String, syncPool: String, token: AdminToken) {
        guard let s = serverPoolIndex(name) else { return fail(token, .ENOENT, "no server pool \(name)") }
        guard let c = clientPoolIndex(syncPool) else { return fail(token, .ENOENT, "no client pool \(syncPool) to attach; create it with join_pool ... sync=y") }
        guard clientPools[c].isSync else { return fail(token, .EINVAL, "client pool \(syncPool) is an IO pool, not a sync pool (sync=y)") }
        serverPools[s].syncPool = syncPool
        if serverPools[s].state == .normal {
            serverPools[s].nextCheck = now + Timing.serverCheckMapsInterval
            autoStartSync(s)
        }
        completeAdmin(token, .ok)
    }

    mutating func syncCommand(_ name: String, _ command: SyncCommand, token: AdminToken) {
        guard let s = serverPoolIndex(name) else { return fail(token, .ENOENT, "no server pool \(name)") }
        switch command {
        case .start:
            guard serverPools[s].state == .normal else {
                return fail(token, .EINVAL, "server pool \(name) is \(serverPools[s].state); sync runs only in normal")
            }
            guard serverPools[s].syncPool != nil else {
                return fail(token, .EINVAL, "server pool \(name) has no sync pool attached (add_clt)")
            }
            serverPools[s].syncHeldByOperator = false
            startSyncThread(s, why: "sync start")
        case .stop:
            serverPools[s].syncHeldByOperator = true
            stopSyncThread(s, reason: "sync stop")
        }
        completeAdmin(token, .ok)
    }

    mutating func serverLeavePool(_ name: String, token: AdminToken) {
        guard let s = serverPoolIndex(name) else { return fail(token, .ENOENT, "no server pool \(name)") }
        guard serverPools[s].store == nil else {
            return fail(token, .EBUSY, "server pool \(name) has a store registered; remove_store or delete_store first")
        }
        guard !serverPools[s].hasNonSyncSession else {
            return fail(token, .EBUSY, "server pool \(name) still has a client session; del_sess it on the client first")
        }
        emit(.transitioned(Transition(machine: .serverPool(name), from: serverPools[s].state.rawValue, to: "-", cause: cause, at: now)))
        serverPools.remove(at: s)
        completeAdmin(token, .ok)
    }

    // MARK: brmr-server stores

    mutating func createStore(device: String, pool name: String, mappedSectors: UInt64, probe: DeviceProbe?, token: AdminToken) {
        guard let s = serverPoolIndex(name) else { return fail(token, .ENOENT, "no server pool \(name); run join_pool on rmr-server first") }
        guard serverPools[s].store == nil, serverPools[s].state == .empty else {
            return fail(token, .EBUSY, "server pool \(name) already has a store (\(serverPools[s].store?.device ?? "being added"))")
        }
        guard !serverPools[s].hasNonSyncSession else {
            return fail(token, .EBUSY, "server pool \(name) has client sessions; create_store is for a fresh pool, use add_store")
        }
        guard mappedSectors > 0 else { return fail(token, .EINVAL, "mapped_size must be positive") }
        guard let probe else { return fail(token, .EINVAL, "device \(device) was not probed") }
        switch probe {
        case .missing:
            return fail(token, .ENOENT, "no such device \(device)")
        case .unreadable(_, let reason):
            return fail(token, .EEXIST, "device \(device) holds metadata that is not a valid RMR store (\(reason)); refusing to overwrite it — wipe it first")
        case .present(let size, let metadata):
            if let md = metadata {
                return fail(token, .EEXIST, "device \(device) holds RMR metadata of pool \(md.poolName) (member \(md.member)); use add_store")
            }
            guard mappedSectors <= size else {
                return fail(token, .ENOSPC, "mapped_size \(mappedSectors) is larger than device \(device) (\(size) sectors)")
            }
            var fresh = serverPools[s]
            fresh.mappedSectors = mappedSectors
            fresh.markedCreate = true
            fresh.poolUUID = .none
            fresh.mapVersion = .initial
            let image = DurablePoolState(poolName: name, poolUUID: .none, member: fresh.member, chunkBytes: options.serverChunkBytes,
                                         mappedSectors: mappedSectors, deviceSectors: size)
            let tag = PersistTag(nextSerial())
            persistActions[tag] = [.createStoreDone(pool: name, device: device, mappedSectors: mappedSectors, deviceSectors: size, token: token)]
            emit(.formatStore(tag, device: device, image))
        }
    }

    mutating func createStoreDone(pool name: String, device: String, mappedSectors: UInt64, deviceSectors: UInt64, token: AdminToken) {
        guard let s = serverPoolIndex(name), serverPools[s].store == nil else {
            return fail(token, .EBUSY, "server pool \(name) changed while its store was being created")
        }
        serverPools[s].mappedSectors = mappedSectors
        serverPools[s].markedCreate = true
        serverPools[s].markedDelete = false
        serverPools[s].poolUUID = .none
        serverPools[s].chunkBytes = options.serverChunkBytes
        serverPools[s].mapVersion = .initial
        serverPools[s].members = [serverPools[s].member]
        serverPools[s].mapMembers = []; serverPools[s].maps = []; serverPools[s].mapGeneration = []
        serverPools[s].intents = [:]; serverPools[s].intentPins = [:]
        serverPools[s].store = ServerStore(device: device, open: true, mapped: false, mappedSectors: mappedSectors,
                                           deviceSectors: deviceSectors, replacing: false, incarnation: nextSerial())
        emit(.transitioned(Transition(machine: .store(name), from: "closed", to: "open", cause: cause, at: now)))
        moveServerPool(s, to: .registered)
        completeAdmin(token, .ok)
    }

    mutating func addStore(device: String, pool name: String, mappedSectors: UInt64, mode: AddStoreMode, probe: DeviceProbe?, token: AdminToken) {
        guard let s = serverPoolIndex(name) else { return fail(token, .ENOENT, "no server pool \(name); run join_pool on rmr-server first") }
        guard serverPools[s].store == nil else {
            return fail(token, .EBUSY, "server pool \(name) already has store \(serverPools[s].store!.device); remove_store first")
        }
        guard let probe else { return fail(token, .EINVAL, "device \(device) was not probed") }
        switch probe {
        case .missing:
            return fail(token, .ENOENT, "no such device \(device)")
        case .unreadable(_, let reason):
            return fail(token, .EINVAL, "device \(device) holds metadata that is not a valid RMR store: \(reason)")
        case .present(let size, let metadata):
            switch mode {
            case .add:
                guard let md = metadata else {
                    return fail(token, .EINVAL, "device \(device) has no RMR metadata; use mode=replace for an empty disk, or create_store for a new pool")
                }
                addStoreRestore(s, device: device, mappedSectors: mappedSectors, deviceSectors: size, metadata: md, token: token)
            case .replace:
                if let md = metadata {
                    return fail(token, .EEXIST, "device \(device) holds RMR metadata of pool \(md.poolName); mode=replace needs an empty disk (use mode=add for a disk of this pool)")
                }
                addStoreReplace(s, device: device, mappedSectors: mappedSectors, deviceSectors: size, token: token)
            }
        }
    }

    private mutating func addStoreRestore(_ s: Int, device: String, mappedSectors: UInt64, deviceSectors: UInt64,
                                          metadata md: DurablePoolState, token: AdminToken) {
        let pool = serverPools[s]
        guard md.poolName == pool.name else {
            return fail(token, .EINVAL, "device \(device) belongs to pool \(md.poolName), not \(pool.name)")
        }
        guard md.member == pool.member else {
            return fail(token, .EINVAL, "device \(device) belongs to member \(md.member); this server pool is member \(pool.member)")
        }
        if pool.poolUUID != .none && md.poolUUID != .none && pool.poolUUID != md.poolUUID {
            return fail(token, .EINVAL, "device \(device) carries pool UUID \(md.poolUUID), this pool is \(pool.poolUUID)")
        }
        guard md.mappedSectors == mappedSectors else {
            return fail(token, .EINVAL, "mapped_size \(mappedSectors) does not match the \(md.mappedSectors) recorded on \(device)")
        }
        guard md.mappedSectors <= deviceSectors else {
            return fail(token, .EINVAL, "device \(device) is smaller (\(deviceSectors) sectors) than its recorded mapped_size \(md.mappedSectors)")
        }
        var p = serverPools[s]
        p.poolUUID = md.poolUUID
        p.chunkBytes = md.chunkBytes
        p.mappedSectors = md.mappedSectors
        p.members = md.members.isEmpty ? [p.member] : md.members
        p.mapMembers = md.mapMembers
        p.maps = md.maps
        p.mapGeneration = Array(repeating: 0, count: md.maps.count)
        p.mapVersion = max(p.mapVersion, md.mapVersion)
        if md.mapVersion.isReplacing { p.mapVersion = p.mapVersion.withReplace(true) }
        p.markedCreate = md.markedCreate
        p.markedDelete = false
        p.intents = [:]
        for c in md.writeIntents { p.intentStamp += 1; p.intents[c] = p.intentStamp }
        p.intentPins = [:]
        p.store = ServerStore(device: device, open: true, mapped: md.storeMapped, mappedSectors: md.mappedSectors,
                              deviceSectors: deviceSectors, replacing: md.mapVersion.isReplacing, incarnation: nextSerial())
        serverPools[s] = p
        emit(.transitioned(Transition(machine: .store(p.name), from: "closed", to: "open", cause: cause, at: now)))
        if serverPools[s].state == .empty { moveServerPool(s, to: .registered) }
        persistAndThen(s, [.header(serverPools[s].header())], then: [.completeAdmin(token)])
    }

    private mutating func addStoreReplace(_ s: Int, device: String, mappedSectors: UInt64, deviceSectors: UInt64, token: AdminToken) {
        let pool = serverPools[s]
        guard pool.poolUUID != .none, pool.chunkBytes != 0 else {
            return fail(token, .EINVAL, "server pool \(pool.name) does not know the pool it replaces a disk for; mode=replace needs the old store removed with remove_store on this running node (after a reboot, rebuild the node with add_store mode=add of its old disk, or delete and re-create the leg)")
        }
        guard mappedSectors == pool.mappedSectors else {
            return fail(token, .EINVAL, "mapped_size \(mappedSectors) does not match the pool's \(pool.mappedSectors)")
        }
        guard mappedSectors <= deviceSectors else {
            return fail(token, .ENOSPC, "mapped_size \(mappedSectors) is larger than device \(device) (\(deviceSectors) sectors)")
        }
        var image = pool.durableImage(deviceSectors: deviceSectors)
        image.storeMapped = true
        image.mapVersion = pool.mapVersion.withReplace(true)
        image.markedCreate = false
        image.writeIntents = []
        let own = image.mapMembers.firstIndex(of: pool.member)
        if let own { image.maps[own].setAll() } else { image.apply(.setAllDirty(member: pool.member)) }
        let tag = PersistTag(nextSerial())
        persistActions[tag] = [.replaceStoreDone(pool: pool.name, device: device, mappedSectors: mappedSectors, deviceSectors: deviceSectors, token: token)]
        emit(.formatStore(tag, device: device, image))
    }

    mutating func replaceStoreDone(pool name: String, device: String, mappedSectors: UInt64, deviceSectors: UInt64, token: AdminToken) {
        guard let s = serverPoolIndex(name), serverPools[s].store == nil else {
            return fail(token, .EBUSY, "server pool \(name) changed while its disk was being replaced")
        }
        let own = serverPools[s].ensureMap(serverPools[s].member)
        serverPools[s].maps[own].setAll()
        serverPools[s].mapGeneration[own] &+= 1
        serverPools[s].mapVersion = serverPools[s].mapVersion.withReplace(true)
        serverPools[s].markedCreate = false
        serverPools[s].intents = [:]; serverPools[s].intentPins = [:]
        serverPools[s].lastIO = Array(repeating: nil, count: Limits.maxQueueDepth)
        serverPools[s].store = ServerStore(device: device, open: true, mapped: true, mappedSectors: mappedSectors,
                                           deviceSectors: deviceSectors, replacing: true, incarnation: nextSerial())
        emit(.probe(.storeReplaced))
        emit(.transitioned(Transition(machine: .store(name), from: "closed", to: "open", cause: cause, at: now)))
        if serverPools[s].state == .empty { moveServerPool(s, to: .registered) }
        completeAdmin(token, .ok)
    }

    mutating func removeStore(_ name: String, token: AdminToken) {
        guard let s = serverPoolIndex(name) else { return fail(token, .ENOENT, "no server pool \(name)") }
        guard serverPools[s].store != nil else { return fail(token, .ENODEV, "server pool \(name) has no store") }
        detachStore(s)
        completeAdmin(token, .ok)
    }

    /// Unregisters the store; metadata stays on the disk.
    mutating func detachStore(_ s: Int) {
        stopSyncThread(s, reason: "store removed")
        failAllChunkWaiters(s)
        serverPools[s].store = nil
        emit(.transitioned(Transition(machine: .store(serverPools[s].name), from: "open", to: "closed", cause: cause, at: now)))
        if serverPools[s].hasNonSyncSession {
            serverPoolToNoIO(s)
        } else {
            switch serverPools[s].state {
            case .registered, .noIO: moveServerPool(s, to: .empty)
            case .created, .normal: moveServerPool(s, to: .noIO); moveServerPool(s, to: .empty)
            case .empty: break
            }
        }
    }

    mutating func deleteStore(_ name: String, token: AdminToken) {
        guard let s = serverPoolIndex(name) else { return fail(token, .ENOENT, "no server pool \(name)") }
        guard let store = serverPools[s].store else { return fail(token, .ENODEV, "server pool \(name) has no store") }
        let neverJoined = serverPools[s].markedCreate
        guard serverPools[s].markedDelete || neverJoined else {
            return fail(token, .EBUSY, "member \(serverPools[s].member) was not deleted from pool \(name) (del_sess mode=delete on the client); refusing to wipe its metadata — use remove_store to detach it")
        }
        detachStore(s)
        let tag = PersistTag(nextSerial())
        persistActions[tag] = [.deleteStoreDone(pool: name, token: token)]
        emit(.wipeStore(tag, device: store.device))
    }

    mutating func deleteStoreDone(pool name: String, token: AdminToken) {
        if let s = serverPoolIndex(name) {
            // The pool's identity is gone with the metadata.
            serverPools[s].poolUUID = .none
            serverPools[s].chunkBytes = 0
            serverPools[s].mappedSectors = 0
            serverPools[s].members = [serverPools[s].member]
            serverPools[s].mapMembers = []; serverPools[s].maps = []; serverPools[s].mapGeneration = []
            serverPools[s].intents = [:]; serverPools[s].intentPins = [:]
            serverPools[s].markedDelete = false
            serverPools[s].markedCreate = false
        }
        completeAdmin(token, .ok)
    }
}
