// Server-side handling of control messages (notes §6): joins, leave, enable, POOL_INFO, the map
// update handshake, MAP_CHECK, STORE_CHECK, metadata, last-IO conversion, BRMR user commands.

extension Node {
    mutating func handleRequest(_ request: Request, rid: RequestID, pool name: String, from peer: HostAddress) {
        guard let s = serverPoolIndex(name) else {
            // A peer's retained session reaching a rebooted node before join_pool: retried later.
            emit(.ignored(.unknownPool(name)))
            return respond(.failed(.ENOENT), rid: rid, pool: name, to: peer)
        }
        let session = serverPools[s].sessions.first { $0.peer == peer }
        if session == nil {
            switch request {
            case .join:
                break  // Joins create sessions.
            case .leave, .enablePool, .leaveMaintenance, .poolInfo, .io, .mapAdd, .mapClear, .mapReady, .mapSend, .mapBuffer, .mapBufDone,
                 .mapDone, .mapDisable, .readMaps, .mapCheck, .lastIOToMap, .markDirty, .mergeMaps, .storeCheck, .sendMetadata,
                 .metadataRequest, .mapGetVersion, .mapSetVersion, .discard, .user:
                // The pool is looked up on the sender's session (notes §4.3): a peer whose
                // session died with a link or a restart must rejoin first. Nothing changes.
                emit(.ignored(.noSession(pool: name, peer: peer)))
                return respond(.failed(.ENOTCONN), rid: rid, pool: name, to: peer)
            }
        }
        let isSyncSession = session?.isSync ?? false
        switch request {
        case .join(let j): serverJoin(s, j, rid: rid, from: peer)
        case .leave(let member, let delete, let fromSync): serverLeave(s, member: member, delete: delete, fromSync: fromSync, rid: rid, from: peer)
        case .enablePool(let enable): serverEnable(s, enable: enable, rid: rid, from: peer)
        case .leaveMaintenance:
            serverPools[s].maintenance = false
            respond(.ok, rid: rid, pool: name, to: peer)
        case .poolInfo(let member, let op, let mode, let dirty): serverPoolInfo(s, member: member, op: op, mode: mode, dirty: dirty, rid: rid, from: peer)
        case .io(let io): serverIO(s, io, rid: rid, from: peer, isSync: isSyncSession)
        case .mapAdd(let chunk, let failed, let version): serverMapAdd(s, chunk: chunk, failed: failed, version: version, rid: rid, from: peer)
        case .mapClear(let chunk, let member): serverMapClear(s, chunk: chunk, member: member, rid: rid, from: peer)
        case .mapReady: serverMapReady(s, rid: rid, from: peer)
        case .mapSend(let receiver): serverMapSend(s, receiver: receiver, rid: rid, from: peer)
        case .mapBuffer(let buffer): serverMapBuffer(s, buffer, rid: rid, from: peer)
        case .mapBufDone(let version): serverMapBufDone(s, version: version, rid: rid, from: peer)
        case .mapDone(let enable): serverMapDone(s, enable: enable, rid: rid, from: peer)
        case .mapDisable: serverMapDisable(s, rid: rid, from: peer)
        case .readMaps:
            let p = serverPools[s]
            let maps = p.mapMembers.indices.map { MemberMapRuns(member: p.mapMembers[$0], runs: p.maps[$0].runs()) }
            respond(.maps(maps, p.mapVersion), rid: rid, pool: name, to: peer)
        case .mapCheck(let atLeast):
            // 1: normal, own map clean and map version not older than `atLeast`; 0: normal with
            // dirty chunks, or older (it may have missed writes the asker recorded for it);
            // 2: not serving IO (our addition: a quiet client learns that a leg it thinks
            // NORMAL stopped serving).
            let p = serverPools[s]
            let answer: UInt64 = p.state != .normal ? 2 : ((p.ownMap?.isEmpty ?? true) && !(p.mapVersion < atLeast) ? 1 : 0)
            respond(.value(answer), rid: rid, pool: name, to: peer)
        case .lastIOToMap: serverLastIOToMap(s, rid: rid, from: peer)
        case .markDirty(let chunks, let except): serverMarkDirty(s, chunks: chunks, except: except, rid: rid, from: peer)
        case .mergeMaps(let maps): serverMergeMaps(s, maps, rid: rid, from: peer)
        case .storeCheck:
            respond(.value(serverPools[s].store?.ioAllowed == true ? 1 : 0), rid: rid, pool: name, to: peer)
        case .sendMetadata(let md): serverReceiveMetadata(s, md, rid: rid, from: peer)
        case .metadataRequest:
            let p = serverPools[s]
            respond(.metadata(PoolMetadata(poolName: p.name, poolUUID: p.poolUUID, chunkBytes: p.chunkBytes,
                                           mappedSectors: p.mappedSectors, mapVersion: max(p.mapVersion, p.clientMapVersion),
                                           members: p.members)),
                    rid: rid, pool: name, to: peer)
        case .mapGetVersion:
            respond(.value(serverPools[s].mapVersion.raw), rid: rid, pool: name, to: peer)
        case .mapSetVersion(let v):
            serverPools[s].mapVersion = v
            persistAndThen(s, [.header(serverPools[s].header())], then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
        case .discard(let member):
            let i = serverPools[s].ensureMap(member)
            serverPools[s].maps[i].setAll()
            serverPools[s].mapGeneration[i] &+= 1
            persistAndThen(s, [.setAllDirty(member: member)], then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
        case .user(let command): serverUserCommand(s, command, rid: rid, from: peer)
        }
    }

    // MARK: Persist plumbing

    /// Emits one persist record for pool `s` and runs `then` when it is durable. Without a store
    /// there is nothing to persist to: the actions run at once (the node is not serving IO).
    mutating func persistAndThen(_ s: Int, _ updates: [MetadataUpdate], then actions: [PersistAction], chunk: ChunkIndex? = nil) {
        guard let store = serverPools[s].store, !updates.isEmpty else {
            for a in actions { runPersistAction(a) }
            return
        }
        let tag = PersistTag(nextSerial())
        persistActions.insertAbsent(tag, actions)  // (fresh tag)
        persistStores.insertAbsent(tag, store.incarnation)
        if let chunk {
            serverPools[s].chunkPersist[chunk] = tag
            persistBarriers.insertAbsent(tag, PersistBarrier(pool: serverPools[s].name, chunk: chunk))
        }
        emit(.persist(tag, device: store.device, PersistRecord(updates)))
    }

    mutating func handlePersistCompleted(_ tag: PersistTag, ok: Bool) {
        let actions = persistActions.removeValue(forKey: tag) ?? []
        let incarnation = persistStores.removeValue(forKey: tag)
        // Forget the chunk barrier this persist satisfied: the one chunk it was made for, if no
        // later persist took the barrier over (found through `persistBarriers`: scanning every
        // pool's barriers for this tag built a filtered table per pool and persist).
        if let barrier = persistBarriers.removeValue(forKey: tag), let s = serverPoolIndex(barrier.pool),
           serverPools[s].chunkPersist[barrier.chunk] == tag {
            serverPools[s].chunkPersist[barrier.chunk] = nil
        }
        if !ok {
            // A metadata write failed: the store can no longer promise durability.
            for s in serverPools.indices where serverPools[s].store != nil && actionsTouch(actions, pool: serverPools[s].name) {
                if let incarnation, storeIncarnation(s) != incarnation {
                    // Written to a store since removed or replaced: its successor is untouched.
                    emit(.ignored(.completionOfRemovedStore(pool: serverPools[s].name)))
                    continue
                }
                storeFailed(s)
            }
            for a in actions { failPersistAction(a) }
            return
        }
        for a in actions { runPersistAction(a) }
    }

    private func actionsTouch(_ actions: [PersistAction], pool: String) -> Bool {
        actions.contains { a in
            switch a {
            case .submitWrite(let p, _, _, _), .respond(let p, _, _, _): return p == pool
            case .createStoreDone(let p, _, _, _, _), .replaceStoreDone(let p, _, _, _, _), .deleteStoreDone(let p, _): return p == pool
            case .completeAdmin: return false
            }
        }
    }

    mutating func runPersistAction(_ action: PersistAction) {
        switch action {
        case .submitWrite(let pool, let peer, let rid, let request):
            guard let s = serverPoolIndex(pool) else { return respond(.failed(.EIO), rid: rid, pool: pool, to: peer) }
            submitClientWrite(s, request, rid: rid, from: peer)
        case .respond(let pool, let peer, let rid, let response):
            respond(response, rid: rid, pool: pool, to: peer)
        case .completeAdmin(let token):
            completeAdmin(token, .ok)
        case .createStoreDone(let pool, let device, let mapped, let size, let token):
            createStoreDone(pool: pool, device: device, mappedSectors: mapped, deviceSectors: size, token: token)
        case .replaceStoreDone(let pool, let device, let mapped, let size, let token):
            replaceStoreDone(pool: pool, device: device, mappedSectors: mapped, deviceSectors: size, token: token)
        case .deleteStoreDone(let pool, let token):
            deleteStoreDone(pool: pool, token: token)
        }
    }

    mutating func failPersistAction(_ action: PersistAction) {
        switch action {
        case .submitWrite(let pool, let peer, let rid, let request):
            if let s = serverPoolIndex(pool) { unpinIntent(s, chunk: serverPools[s].geometry.chunk(ofByte: request.offsetBytes)) }
            respond(.failed(.EIO), rid: rid, pool: pool, to: peer)
        case .respond(let pool, let peer, let rid, _):
            respond(.failed(.EIO), rid: rid, pool: pool, to: peer)
        case .completeAdmin(let token), .createStoreDone(_, _, _, _, let token), .replaceStoreDone(_, _, _, _, let token),
             .deleteStoreDone(_, let token):
            fail(token, .EIO, "metadata write failed on the store device")
        }
    }

    // MARK: Join / leave / enable

    mutating func serverJoin(_ s: Int, _ j: JoinRequest, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        let state = serverPools[s].state
        func refuse(_ code: Errno, _ reason: String) {
            reject(.serverPool(name), state: state.rawValue, input: j.rejoin ? "REJOIN_POOL" : "JOIN_POOL", reason: reason)
            respond(.failed(code), rid: rid, pool: name, to: peer)
        }
        guard state != .empty, let store = serverPools[s].store else {
            if j.rejoin {
                // A retained session rejoining before the operator re-added the store: retried later.
                emit(.ignored(.joinRefusedNoStore(pool: name)))
                return respond(.failed(.ENODEV), rid: rid, pool: name, to: peer)
            }
            return refuse(.ENODEV, "no store registered")  // add_sess before create/add_store.
        }
        if j.fromSyncPool {
            addSession(s, peer: peer, isSync: true)
            return respond(.joined(joinReply(s)), rid: rid, pool: name, to: peer)
        }
        if serverPools[s].chunkBytes != 0 && j.chunkBytes != serverPools[s].chunkBytes {
            return refuse(.EINVAL, "chunk_size \(j.chunkBytes) differs from this storage node's \(serverPools[s].chunkBytes)")
        }
        if j.create {
            guard state == .registered, serverPools[s].markedCreate else {
                return refuse(.EINVAL, "mode=create needs a store fresh from create_store; this pool already exists (use mode=assemble)")
            }
            serverPools[s].chunkBytes = j.chunkBytes
            serverPools[s].poolUUID = j.poolUUID
            serverPools[s].markedCreate = false
            var updates: [MetadataUpdate] = []
            let own = serverPools[s].ensureMap(serverPools[s].member)
            if j.dirty { serverPools[s].maps[own].setAll(); updates.append(.setAllDirty(member: serverPools[s].member)) }
            for peerInfo in j.peers where peerInfo.member != serverPools[s].member {
                serverPools[s].addMember(peerInfo.member)
                let i = serverPools[s].ensureMap(peerInfo.member)
                if peerInfo.clientMapDirty { serverPools[s].maps[i].setAll(); updates.append(.setAllDirty(member: peerInfo.member)) }
                else { updates.append(.replaceMap(member: peerInfo.member, runs: [])) }
            }
            if !j.dirty { updates.append(.replaceMap(member: serverPools[s].member, runs: [])) }
            addSession(s, peer: peer, isSync: false)
            moveServerPool(s, to: .created)
            persistAndThen(s, [.header(serverPools[s].header())] + updates,
                           then: [.respond(pool: name, peer: peer, rid: rid, .joined(joinReply(s)))])
            return
        }
        // Assemble or rejoin: the node keeps its data and map and waits for a map update.
        guard !serverPools[s].markedCreate else {
            return refuse(.EINVAL, "store was created fresh by create_store; the first client join must use mode=create")
        }
        if serverPools[s].poolUUID != .none && j.poolUUID != .none && j.poolUUID != serverPools[s].poolUUID {
            return refuse(.EINVAL, "pool UUID \(j.poolUUID) does not match this pool's \(serverPools[s].poolUUID)")
        }
        _ = store
        addSession(s, peer: peer, isSync: false)
        serverPoolToNoIO(s)
        respond(.joined(joinReply(s)), rid: rid, pool: name, to: peer)
    }

    private func joinReply(_ s: Int) -> JoinReply {
        let p = serverPools[s]
        return JoinReply(member: p.member, chunkBytes: p.chunkBytes, mappedSectors: p.mappedSectors, poolUUID: p.poolUUID)
    }

    private mutating func addSession(_ s: Int, peer: HostAddress, isSync: Bool) {
        if let i = serverPools[s].sessions.firstIndex(where: { $0.peer == peer && $0.isSync == isSync }) {
            serverPools[s].sessions[i] = ServerSession(peer: peer, isSync: isSync)
        } else {
            serverPools[s].sessions.append(ServerSession(peer: peer, isSync: isSync))
        }
    }

    mutating func serverLinkDown(_ peer: HostAddress) {
        for s in serverPools.indices {
            let lostNonSync = serverPools[s].sessions.contains { $0.peer == peer && !$0.isSync }
            serverPools[s].sessions.removeAll { $0.peer == peer }
            if lostNonSync { serverPoolToNoIO(s) }
        }
    }

    mutating func serverLeave(_ s: Int, member: MemberID, delete: Bool, fromSync: Bool, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        if fromSync {
            serverPools[s].sessions.removeAll { $0.peer == peer && $0.isSync }
            return respond(.ok, rid: rid, pool: name, to: peer)
        }
        guard member == serverPools[s].member else {
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "LEAVE_POOL", reason: "member \(member) is not this node (\(serverPools[s].member))")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        stopSyncThread(s, reason: "leave")
        serverPoolToNoIO(s)
        serverPools[s].sessions.removeAll { $0.peer == peer && !$0.isSync }
        var updates: [MetadataUpdate] = []
        if delete {
            for m in serverPools[s].mapMembers where m != member {
                serverPools[s].dropMap(m)
                updates.append(.dropMap(member: m))
            }
            serverPools[s].members = [member]
            serverPools[s].markedDelete = true
        } else {
            serverPools[s].intents = [:]
            serverPools[s].intentPins = [:]
            serverPools[s].lastIO = Array(repeating: nil, count: Limits.maxQueueDepth)
            updates.append(.clearIntents)
        }
        if !serverPools[s].hasNonSyncSession && serverPools[s].state == .noIO {
            moveServerPool(s, to: serverPools[s].store != nil ? .registered : .empty)
        }
        persistAndThen(s, [.header(serverPools[s].header())] + updates, then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
    }

    mutating func serverEnable(_ s: Int, enable: Bool, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        let state = serverPools[s].state
        if !enable {
            switch state {
            case .normal, .noIO:
                if serverPools[s].syncThread == .running { emit(.probe(.maintenanceDuringSync)) }
                serverPools[s].maintenance = true
                serverPoolToNoIO(s)
                return respond(.ok, rid: rid, pool: name, to: peer)
            case .empty, .registered, .created:
                reject(.serverPool(name), state: state.rawValue, input: "ENABLE_POOL(0)", reason: "maintenance mode needs normal or no_io")
                return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
            }
        }
        if serverPools[s].maintenance {
            // Leaving maintenance: the node still needs a map update before IO.
            serverPools[s].maintenance = false
            return respond(.ok, rid: rid, pool: name, to: peer)
        }
        switch state {
        case .created, .noIO:
            guard serverPools[s].store != nil else {
                // The operator removed the store after the client decided to enable (fuzz seed 1391).
                emit(.ignored(.enableRefusedNoStore(pool: name)))
                return respond(.failed(.ENODEV), rid: rid, pool: name, to: peer)
            }
            if state == .noIO { emit(.probe(.wasLastAuthoritativeEnable)) }
            moveServerPool(s, to: .normal)
            respond(.ok, rid: rid, pool: name, to: peer)
        case .normal:
            respond(.ok, rid: rid, pool: name, to: peer)  // Idempotent: a retried enable.
        case .empty, .registered:
            reject(.serverPool(name), state: state.rawValue, input: "ENABLE_POOL(1)", reason: "no client session joined")
            respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
    }

    mutating func serverPoolInfo(_ s: Int, member: MemberID, op: PoolInfoOperation, mode: PoolInfoMode, dirty: Bool,
                                 rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        switch (op, mode) {
        case (.add, .create):
            serverPools[s].addMember(member)
            let i = serverPools[s].ensureMap(member)
            if dirty { serverPools[s].maps[i].setAll(); serverPools[s].mapGeneration[i] &+= 1 }
            persistAndThen(s, [.header(serverPools[s].header()), dirty ? .setAllDirty(member: member) : .replaceMap(member: member, runs: [])],
                           then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
        case (.add, .assemble):
            if serverPools[s].members.contains(member) {
                respond(.ok, rid: rid, pool: name, to: peer)
            } else {
                reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "POOL_INFO(add, assemble)", reason: "member \(member) unknown here")
                respond(.failed(.ENOENT), rid: rid, pool: name, to: peer)
            }
        case (.remove, .delete):
            serverPools[s].members.removeAll { $0 == member }
            serverPools[s].dropMap(member)
            persistAndThen(s, [.header(serverPools[s].header()), .dropMap(member: member)],
                           then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
        case (.remove, .disassemble):
            respond(.ok, rid: rid, pool: name, to: peer)  // Peers keep the member and its map.
        case (.add, .delete), (.add, .disassemble), (.remove, .create), (.remove, .assemble):
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "POOL_INFO", reason: "operation \(op) with mode \(mode)")
            respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
    }

    mutating func serverReceiveMetadata(_ s: Int, _ md: PoolMetadata, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard md.poolUUID == serverPools[s].poolUUID || md.poolUUID == .none else {
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "SEND_MD_BUF", reason: "pool UUID mismatch")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        var changed = false
        if md.mapVersion > serverPools[s].clientMapVersion {
            serverPools[s].clientMapVersion = MapVersion(raw: md.mapVersion.counter)
        }
        for m in md.members where !serverPools[s].members.contains(m) { serverPools[s].addMember(m); changed = true }
        if changed {
            persistAndThen(s, [.header(serverPools[s].header())], then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
        } else {
            respond(.ok, rid: rid, pool: name, to: peer)
        }
    }

    mutating func serverUserCommand(_ s: Int, _ command: BRMRCommand, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard let store = serverPools[s].store else { return respond(.failed(.ENODEV), rid: rid, pool: name, to: peer) }
        switch command {
        case .getParams:
            respond(.deviceParams(mapped: store.mapped, mappedSectors: store.mappedSectors), rid: rid, pool: name, to: peer)
        case .map(let size):
            guard size == store.mappedSectors else { return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer) }
            serverPools[s].store!.mapped = true
            emit(.transitioned(Transition(machine: .store(name), from: "unmapped", to: "mapped", cause: cause, at: now)))
            persistAndThen(s, [.header(serverPools[s].header())], then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
        case .unmap:
            // As in the reference, unmap is not recorded on disk; the device may be re-mapped.
            respond(.ok, rid: rid, pool: name, to: peer)
        }
    }
}
