// Server IO path (notes §4.3, §5): admission, dirty-chunk locking with wait lists, on-demand and
// background chunk sync through the sync pool, write intents made durable before data is
// written, piggybacked dirty marks made durable before the write is acknowledged.

extension Node {
    mutating func serverIO(_ s: Int, _ io: IORequest, rid: RequestID, from peer: HostAddress, isSync: Bool) {
        // Read fields, never copy the whole pool: a live copy would make the mutations below
        // copy its maps and dictionaries (copy-on-write).
        let name = serverPools[s].name
        let state = serverPools[s].state
        func refuse(_ reason: String, toNoIO: Bool, race: Bool = true) {
            if race {
                // The sender could not know yet (link flap, store error, restart): a tolerated race.
                emit(.ignored(.ioRefusedNotServing(pool: name)))
            } else {
                reject(.serverPool(name), state: state.rawValue, input: "\(isSync ? "sync " : "")\(io.op) IO", reason: reason)
            }
            // Any IO the server must refuse from its client means the client thinks it is
            // serving when it is not: stop serving until a map update (notes §4.3 step 1).
            if toNoIO { serverPoolToNoIO(s) }
            respond(.failed(.EIO), rid: rid, pool: name, to: peer)
        }
        if isSync && io.op != .read { return refuse("a sync session may only read", toNoIO: false, race: false) }
        guard state == .normal, let store = serverPools[s].store else {
            return refuse("pool is \(state)\(serverPools[s].store == nil ? " without a store" : "")", toNoIO: !isSync)
        }
        if !isSync && !store.ioAllowed { return refuse("store is \(store.open ? "open" : "closed") and \(store.mapped ? "mapped" : "unmapped")", toNoIO: true) }
        let geometry = serverPools[s].geometry
        guard io.lengthBytes > 0 || io.op == .flush, io.offsetBytes + io.lengthBytes <= geometry.mappedBytes else {
            return refuse("IO [\(io.offsetBytes), +\(io.lengthBytes)) beyond mapped size \(geometry.mappedBytes)", toNoIO: false, race: false)
        }
        if io.op == .flush {
            // Our store writes are durable on completion (O_DIRECT + FUA metadata): nothing to flush.
            return respond(.ok, rid: rid, pool: name, to: peer)
        }
        let chunk = geometry.chunk(ofByte: io.offsetBytes)
        guard geometry.chunk(ofByte: io.offsetBytes + io.lengthBytes - 1) == chunk else {
            return refuse("IO crosses a chunk boundary", toNoIO: false, race: false)
        }
        if serverPools[s].isDirtyForSelf(chunk) {
            if isSync {
                // Our copy is stale: the peer must read from another node (avoids multi-hop sync).
                emit(.probe(.syncReadOfDirtyChunkRefused))
                return respond(.failed(.EIO), rid: rid, pool: name, to: peer)
            }
            return waitOnChunk(s, chunk: chunk, ChunkWaiter(peer: peer, rid: rid, request: io), background: false)
        }
        if serverPools[s].locks[chunk] != nil && !isSync {
            // Synced but waiters not yet resumed: keep arrival order.
            return waitOnChunk(s, chunk: chunk, ChunkWaiter(peer: peer, rid: rid, request: io), background: false)
        }
        switch io.op {
        case .read:
            let tag = StoreTag(nextSerial())
            storeOps.insertAbsent(tag, .clientIO(pool: name, peer: peer, rid: rid, op: io.op, offsetBytes: io.offsetBytes, slot: io.slot,
                                                 isSync: isSync, store: store.incarnation))  // (fresh tag)
            emit(.submitStore(tag, device: store.device, .read(offsetBytes: io.offsetBytes, lengthBytes: io.lengthBytes)))
        case .write:
            admitWrite(s, io, chunk: chunk, rid: rid, from: peer)
        case .flush:
            preconditionFailure("flush handled above")
        }
    }

    /// Makes the write intent and the piggybacked marks durable, then writes the data.
    mutating func admitWrite(_ s: Int, _ io: IORequest, chunk: ChunkIndex, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        var updates = markFailedMembers(s, chunk: chunk, failed: io.failedMembers)
        if adoptVersion(s, io.mapVersion) { updates.append(.header(serverPools[s].header())) }
        let intentUpdates = touchIntent(s, chunk: chunk)
        if !intentUpdates.isEmpty { updates += intentUpdates }
        serverPools[s].intentPins[chunk, default: 0] += 1
        // The action is made only where it waits (it copies the request).
        if !updates.isEmpty {
            persistAndThen(s, updates, then: [.submitWrite(pool: name, peer: peer, rid: rid, request: io)], chunk: chunk)
        } else if let t = serverPools[s].chunkPersist[chunk] {
            persistActions[t, default: []].append(.submitWrite(pool: name, peer: peer, rid: rid, request: io))
        } else {
            submitClientWrite(s, io, rid: rid, from: peer)
        }
    }

    mutating func submitClientWrite(_ s: Int, _ io: IORequest, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard serverPools[s].state == .normal, let store = serverPools[s].store, store.ioAllowed else {
            unpinIntent(s, chunk: serverPools[s].geometry.chunk(ofByte: io.offsetBytes))
            return respond(.failed(.EIO), rid: rid, pool: name, to: peer)
        }
        let tag = StoreTag(nextSerial())
        storeOps.insertAbsent(tag, .clientIO(pool: name, peer: peer, rid: rid, op: io.op, offsetBytes: io.offsetBytes, slot: io.slot,
                                             isSync: false, store: store.incarnation))  // (fresh tag)
        emit(.submitStore(tag, device: store.device, .write(offsetBytes: io.offsetBytes, data: io.data)))
    }

    /// Returns the durable update needed so that `chunk` is a recorded write intent; evicts the
    /// least recently used unpinned intent when the log is full.
    mutating func touchIntent(_ s: Int, chunk: ChunkIndex) -> [MetadataUpdate] {
        serverPools[s].intentStamp += 1
        let stamp = serverPools[s].intentStamp
        if serverPools[s].intents[chunk] != nil {
            serverPools[s].intents[chunk] = stamp
            return []
        }
        var updates: [MetadataUpdate] = []
        if serverPools[s].intents.count >= options.writeIntentCapacity {
            // Minimum stamp is unique, so the choice does not depend on dictionary order.
            var victim: (ChunkIndex, UInt64)?
            for (c, t) in serverPools[s].intents where (serverPools[s].intentPins[c] ?? 0) == 0 {
                if victim == nil || t < victim!.1 { victim = (c, t) }
            }
            if let (c, _) = victim {
                serverPools[s].intents[c] = nil
                updates.append(.removeIntents([c]))
                emit(.probe(.writeIntentEvicted))
            }
        }
        serverPools[s].intents[chunk] = stamp
        updates.append(.addIntents([chunk]))
        return updates
    }

    mutating func unpinIntent(_ s: Int, chunk: ChunkIndex) {
        guard let n = serverPools[s].intentPins[chunk] else { return }
        serverPools[s].intentPins[chunk] = n > 1 ? n - 1 : nil
    }

    /// Records a completed write in last_io: the slot's previous chunk loses its pin.
    mutating func recordLastIO(_ s: Int, slot: UInt32, chunk: ChunkIndex) {
        let i = Int(slot) % Limits.maxQueueDepth
        if let old = serverPools[s].lastIO[i] { unpinIntent(s, chunk: old) }
        serverPools[s].lastIO[i] = chunk
        // The write's own pin (taken at admission) now stands for the slot.
    }

    mutating func handleStoreCompleted(_ tag: StoreTag, _ result: StoreResult) {
        guard let context = storeOps.removeValue(forKey: tag) else { return }
        // Consumed: the cases' fields move into the bindings (a copy retained each and then
        // destroyed the whole context through its value witness).
        switch consume context {
        case .clientIO(let pool, let peer, let rid, let op, let offsetBytes, let slot, let isSync, let store):
            guard let s = serverPoolIndex(pool) else { return respond(.failed(.EIO), rid: rid, pool: pool, to: peer) }
            let chunk = serverPools[s].geometry.chunk(ofByte: offsetBytes)
            guard storeIncarnation(s) == store else {
                // Submitted to a store since removed or replaced: whatever the old device did,
                // the current store does not hold it, and its error is not the current store's.
                if op == .write { unpinIntent(s, chunk: chunk) }
                emit(.ignored(.completionOfRemovedStore(pool: pool)))
                return respond(.failed(.EIO), rid: rid, pool: pool, to: peer)
            }
            switch result {
            case .ok(let data):
                if op == .write {
                    recordLastIO(s, slot: slot, chunk: chunk)
                    respond(.ok, rid: rid, pool: pool, to: peer)
                } else {
                    respond(.data(data), rid: rid, pool: pool, to: peer)
                }
            case .failed(let errno):
                if op == .write { unpinIntent(s, chunk: chunk) }
                if !isSync { storeFailed(s) }
                respond(.failed(errno), rid: rid, pool: pool, to: peer)
            }
        case .syncWrite(let pool, let chunk, let lock, let store):
            guard let s = serverPoolIndex(pool) else { return }
            guard storeIncarnation(s) == store else {
                emit(.ignored(.completionOfRemovedStore(pool: pool)))
                return chunkSyncFailed(s, chunk: chunk, lock: lock)
            }
            switch result {
            case .ok: chunkSyncDurable(s, chunk: chunk, lock: lock)
            case .failed:
                storeFailed(s)
                chunkSyncFailed(s, chunk: chunk, lock: lock)
            }
        }
    }

    /// The incarnation of pool `s`'s store, nil without one. Binds the stored optional:
    /// chaining through it (`serverPools[s].store?.incarnation`) copies the whole pool.
    func storeIncarnation(_ s: Int) -> UInt64? {
        guard let store = serverPools[s].store else { return nil }
        return store.incarnation
    }

    /// A backend error: the store is no longer OPEN and the pool stops serving (notes §3.4).
    mutating func storeFailed(_ s: Int) {
        if let store = serverPools[s].store, store.open {
            serverPools[s].store!.open = false
            emit(.transitioned(Transition(machine: .store(serverPools[s].name), from: "open", to: "closed", cause: "\(cause): IO error", at: now)))
        }
        serverPoolToNoIO(s)
    }

    // MARK: Chunk locks and sync

    mutating func waitOnChunk(_ s: Int, chunk: ChunkIndex, _ waiter: ChunkWaiter, background: Bool) {
        if serverPools[s].locks.contains(key: chunk) {
            guard serverPools[s].locks[chunk]!.waiters.count < Limits.maxWaitersPerChunk else {
                return respond(.failed(.EAGAIN), rid: waiter.rid, pool: serverPools[s].name, to: waiter.peer)
            }
            emit(.probe(waiter.request.op == .write ? .writeToLockedChunk : .readToLockedChunk))
            serverPools[s].locks[chunk]!.waiters.append(waiter)
            return
        }
        let id = nextSerial()
        serverPools[s].locks[chunk] = ChunkLock(id: id, waiters: [waiter], background: background)
        startChunkSync(s, chunk: chunk, lock: id)
    }

    /// Reads the whole chunk from a peer through the sync pool (IO owner `.chunkSync`).
    mutating func startChunkSync(_ s: Int, chunk: ChunkIndex, lock: UInt64) {
        let geometry = serverPools[s].geometry
        guard let syncName = serverPools[s].syncPool, let c = clientPoolIndex(syncName) else {
            return chunkSyncFailed(s, chunk: chunk, lock: lock)
        }
        let io = QueuedIO(owner: .chunkSync(serverPool: serverPools[s].name, chunk: chunk, lock: lock), op: .read,
                          offsetBytes: geometry.firstByte(of: chunk), lengthBytes: geometry.length(of: chunk), data: [])
        clientPools[c].queued.append(io)
        pumpClientPool(c)
    }

    mutating func chunkSyncRead(serverPool name: String, chunk: ChunkIndex, lock: UInt64, result: BlockIOResult) {
        // A completion for an abandoned attempt (the pool was deleted or re-created) is dropped.
        guard let s = serverPoolIndex(name), serverPools[s].locks[chunk]?.id == lock else { return }
        switch result {
        case .ok(let data):
            guard let store = serverPools[s].store, store.open else { return chunkSyncFailed(s, chunk: chunk, lock: lock) }
            let tag = StoreTag(nextSerial())
            storeOps.insertAbsent(tag, .syncWrite(pool: name, chunk: chunk, lock: lock, store: store.incarnation))
            emit(.submitStore(tag, device: store.device, .write(offsetBytes: serverPools[s].geometry.firstByte(of: chunk), data: data)))
        case .failed:
            emit(.probe(.syncSourceFailedMidChunk))
            chunkSyncFailed(s, chunk: chunk, lock: lock)
        }
    }

    /// The synced data is durable: clear our bit, tell the peers, resume the waiters.
    mutating func chunkSyncDurable(_ s: Int, chunk: ChunkIndex, lock: UInt64) {
        guard serverPools[s].locks[chunk]?.id == lock else { return }
        let me = serverPools[s].member
        if let i = serverPools[s].mapIndex(me), serverPools[s].maps[i].clear(chunk) {
            serverPools[s].mapGeneration[i] &+= 1
            persistAndThen(s, [.clearDirty(member: me, chunks: [chunk])], then: [])
        }
        if let syncName = serverPools[s].syncPool, let c = clientPoolIndex(syncName) {
            for leg in clientPools[c].legs where leg.state == .normal && leg.member != 0 {
                sendRequest(.mapClear(chunk: chunk, member: me), pool: syncName, to: leg.address, kind: .fireAndForget)
            }
        }
        let lock = serverPools[s].locks.removeValue(forKey: chunk)!
        if lock.background { serverPools[s].syncInFlight -= 1 }
        for w in lock.waiters where w.rid.raw != 0 {
            serverIO(s, w.request, rid: w.rid, from: w.peer, isSync: false)
        }
        finishReplaceIfSynced(s)
        continueBackgroundSync(s)
    }

    mutating func chunkSyncFailed(_ s: Int, chunk: ChunkIndex, lock id: UInt64) {
        guard serverPools[s].locks[chunk]?.id == id, let lock = serverPools[s].locks.removeValue(forKey: chunk) else { return }
        if lock.background { serverPools[s].syncInFlight -= 1 }
        for w in lock.waiters where w.rid.raw != 0 {
            respond(.failed(.EIO), rid: w.rid, pool: serverPools[s].name, to: w.peer)
        }
        stopSyncThread(s, reason: "chunk \(chunk) sync failed")
    }

    mutating func failAllChunkWaiters(_ s: Int) {
        for chunk in serverPools[s].locks.keys.sorted() {
            guard var lock = serverPools[s].locks[chunk] else { continue }
            for w in lock.waiters where w.rid.raw != 0 {
                respond(.failed(.EIO), rid: w.rid, pool: serverPools[s].name, to: w.peer)
            }
            lock.waiters = []
            serverPools[s].locks[chunk] = lock
        }
    }

    /// After a disk replacement, the replace flag is cleared once our own map is clean.
    mutating func finishReplaceIfSynced(_ s: Int) {
        guard serverPools[s].store?.replacing == true, serverPools[s].ownMap?.isEmpty ?? false else { return }
        serverPools[s].store!.replacing = false
        serverPools[s].mapVersion = serverPools[s].mapVersion.withReplace(false)
        persistAndThen(s, [.header(serverPools[s].header())], then: [])
    }

    // MARK: Background sync thread (notes §5.2)

    mutating func autoStartSync(_ s: Int) {
        guard !serverPools[s].syncHeldByOperator, serverPools[s].state == .normal, serverPools[s].syncPool != nil,
              let own = serverPools[s].ownMap, !own.isEmpty else { return }
        startSyncThread(s, why: "normal with \(own.dirtyCount) dirty chunks")
    }

    mutating func startSyncThread(_ s: Int, why: String) {
        guard serverPools[s].syncThread == .stopped else { return }
        serverPools[s].syncCursor = 0
        setSyncThread(s, .running, why: why)
        continueBackgroundSync(s)
    }

    mutating func stopSyncThread(_ s: Int, reason: String) {
        setSyncThread(s, .stopped, why: reason)
    }

    mutating func continueBackgroundSync(_ s: Int) {
        guard serverPools[s].syncThread == .running else { return }
        guard serverPools[s].state == .normal, let own = serverPools[s].ownMap else {
            return stopSyncThread(s, reason: "pool not normal")
        }
        let limit = options.syncQueueDepth
        var cursor = serverPools[s].syncCursor
        var wrapped = cursor == 0
        // Each turn advances the cursor or wraps once: at most two passes over the map.
        while serverPools[s].syncInFlight < limit {
            guard let next = own.nextDirty(from: cursor) else {
                if wrapped { break }
                wrapped = true
                cursor = 0
                continue
            }
            cursor = next + 1
            if serverPools[s].locks[next] != nil { continue }  // Already being synced on demand.
            serverPools[s].syncInFlight += 1
            let id = nextSerial()
            serverPools[s].locks[next] = ChunkLock(id: id, waiters: [], background: true)
            serverPools[s].syncCursor = cursor
            startChunkSync(s, chunk: next, lock: id)
            if serverPools[s].syncThread != .running { return }  // The start failed and stopped us.
        }
        serverPools[s].syncCursor = cursor
        if serverPools[s].syncInFlight == 0 && (serverPools[s].ownMap?.isEmpty ?? true) {
            emit(.probe(.backgroundSyncCompleted))
            stopSyncThread(s, reason: "all chunks synced")
        }
    }
}
