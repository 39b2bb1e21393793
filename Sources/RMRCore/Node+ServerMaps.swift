// Server side of dirty-map distribution (notes §6.4, §6.6, §6.7): MAP_ADD / MAP_CLEAR, the
// MAP_READY → SEND_MAP_BUF → MAP_BUF_DONE → MAP_DONE handshake, MAP_SEND pushes over the sync
// pool, peer map checks, and our N-leg-correct last-IO conversion.

extension Node {
    mutating func serverMapAdd(_ s: Int, chunk: ChunkIndex, failed: [MemberID], version: MapVersion, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard chunk < serverPools[s].geometry.chunkCount else {
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "MAP_ADD", reason: "chunk \(chunk) beyond the volume")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        var updates = markFailedMembers(s, chunk: chunk, failed: failed)
        if adoptVersion(s, version) { updates.append(.header(serverPools[s].header())) }
        let action = PersistAction.respond(pool: name, peer: peer, rid: rid, .ok)
        if !updates.isEmpty {
            persistAndThen(s, updates, then: [action], chunk: chunk)
        } else if let t = serverPools[s].chunkPersist[chunk] {
            persistActions[t, default: []].append(action)  // Durable once the earlier record is.
        } else {
            runPersistAction(action)
        }
    }

    /// Marks `chunk` dirty for each failed member; returns the durable updates for new bits.
    mutating func markFailedMembers(_ s: Int, chunk: ChunkIndex, failed: [MemberID]) -> [MetadataUpdate] {
        var updates: [MetadataUpdate] = []
        for m in failed where m != serverPools[s].member {
            let i = serverPools[s].ensureMap(m)
            if serverPools[s].maps[i].set(chunk) {
                serverPools[s].mapGeneration[i] &+= 1
                updates.append(.setDirty(member: m, chunks: [chunk]))
            }
        }
        return updates
    }

    /// Takes a newer map version; returns whether it changed (the caller persists the header
    /// with the marks it came with, so a restarted node never looks older than its maps).
    @discardableResult
    mutating func adoptVersion(_ s: Int, _ v: MapVersion) -> Bool {
        guard v > serverPools[s].mapVersion else { return false }
        serverPools[s].mapVersion = MapVersion(raw: v.counter).withReplace(serverPools[s].mapVersion.isReplacing)
        return true
    }

    mutating func serverMapClear(_ s: Int, chunk: ChunkIndex, member: MemberID, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        if let i = serverPools[s].mapIndex(member), chunk < serverPools[s].maps[i].chunkCount, serverPools[s].maps[i].clear(chunk) {
            serverPools[s].mapGeneration[i] &+= 1
            // Clearing late is safe (at worst a chunk is synced twice): no one waits for it.
            persistAndThen(s, [.clearDirty(member: member, chunks: [chunk])], then: [])
        }
        respond(.ok, rid: rid, pool: name, to: peer)
    }

    // MARK: Map update handshake (receiver side)

    mutating func serverMapReady(_ s: Int, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        let state = serverPools[s].state
        guard state == .noIO || state == .created || state == .normal, !serverPools[s].maintenance else {
            reject(.serverPool(name), state: state.rawValue, input: "MAP_READY", reason: serverPools[s].maintenance ? "in maintenance mode" : "needs no_io or created")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        if state == .normal {
            // The client failed this leg without the node noticing (a read that failed after an
            // on-demand sync failed, a refused step of an earlier spread) and now gives it a
            // map: it knows better. Stop serving first, as a rejoin would (the reference
            // refuses here, which leaves such a leg unable to recover).
            serverPoolToNoIO(s)
        }
        // Unlike the reference we accept READY/DONE here too: a client that crashed mid-spread
        // would otherwise leave this node unable to ever take a map again.
        for i in serverPools[s].maps.indices {
            serverPools[s].maps[i].clearAll()
            serverPools[s].mapGeneration[i] &+= 1
        }
        // A chunk sync still in flight (started while NORMAL) may yet write stale-or-fresh data:
        // keep such chunks dirty for ourselves so they are synced again before any IO.
        let own = serverPools[s].ensureMap(serverPools[s].member)
        serverPools[s].maps[own].set(contentsOf: serverPools[s].locks.keys.sorted())
        setMapUpdate(s, .ready)
        serverPools[s].mapUpdateAborted = false
        respond(.ok, rid: rid, pool: name, to: peer)
    }

    mutating func serverMapBuffer(_ s: Int, _ buffer: MapBuffer, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard serverPools[s].mapUpdate == .ready else {
            if serverPools[s].mapUpdateAborted { return mapBufferAfterAbort(s, rid: rid, from: peer) }
            reject(.mapUpdate(name), state: serverPools[s].mapUpdate.rawValue, input: "SEND_MAP_BUF", reason: "no MAP_READY")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        let i = serverPools[s].ensureMap(buffer.member)
        let count = serverPools[s].maps[i].chunkCount
        guard buffer.runs.allSatisfy({ $0.count > 0 && $0.end <= count }) else {
            reject(.mapUpdate(name), state: "ready", input: "SEND_MAP_BUF", reason: "run beyond \(count) chunks")
            setMapUpdate(s, .disabled)
            serverPoolToNoIO(s)
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        serverPools[s].addMember(buffer.member)
        serverPools[s].maps[i].insert(runs: buffer.runs)
        serverPools[s].mapGeneration[i] &+= 1
        respond(.ok, rid: rid, pool: name, to: peer)
    }

    mutating func serverMapBufDone(_ s: Int, version: MapVersion, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard serverPools[s].mapUpdate == .ready else {
            if serverPools[s].mapUpdateAborted { return mapBufferAfterAbort(s, rid: rid, from: peer) }
            reject(.mapUpdate(name), state: serverPools[s].mapUpdate.rawValue, input: "MAP_BUF_DONE", reason: "no MAP_READY")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        guard !(version < serverPools[s].mapVersion) else {
            reject(.mapUpdate(name), state: "ready", input: "MAP_BUF_DONE(\(version))", reason: "older than own map version \(serverPools[s].mapVersion)")
            setMapUpdate(s, .disabled)
            return respond(.failed(.ESTALE), rid: rid, pool: name, to: peer)
        }
        adoptVersion(s, version)
        if serverPools[s].store?.replacing == true {
            // A replaced disk holds nothing: whatever the map says, all of it must be synced.
            let own = serverPools[s].ensureMap(serverPools[s].member)
            serverPools[s].maps[own].setAll()
        }
        setMapUpdate(s, .done)
        let p = serverPools[s]
        var updates: [MetadataUpdate] = [.header(p.header())]
        for (i, m) in p.mapMembers.enumerated() { updates.append(.replaceMap(member: m, runs: p.maps[i].runs())) }
        persistAndThen(s, updates, then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
    }

    mutating func serverMapDone(_ s: Int, enable: Bool, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard serverPools[s].mapUpdate == .done else {
            reject(.mapUpdate(name), state: serverPools[s].mapUpdate.rawValue, input: "MAP_DONE", reason: "map transfer not complete")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        setMapUpdate(s, .disabled)
        if enable {
            guard serverPools[s].store != nil else {
                serverPoolToNoIO(s)
                return respond(.failed(.ENODEV), rid: rid, pool: name, to: peer)
            }
            switch serverPools[s].state {
            case .noIO, .created: moveServerPool(s, to: .normal)
            case .normal: break
            case .empty, .registered:
                reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "MAP_DONE(1)", reason: "no session")
                return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
            }
            if serverPools[s].store?.replacing == true { announceDiscard(s) }
        }
        respond(.ok, rid: rid, pool: name, to: peer)
    }

    /// Tells the peers (over the sync pool) that this member's data is gone: they mark its map
    /// fully dirty, so no later map transfer can forget it (the reference's SEND_DISCARD).
    mutating func announceDiscard(_ s: Int) {
        guard let syncName = serverPools[s].syncPool, let c = clientPoolIndex(syncName) else { return }
        let me = serverPools[s].member
        for leg in clientPools[c].legs where leg.state == .normal && leg.member != 0 {
            sendRequest(.discard(member: me), pool: syncName, to: leg.address, kind: .fireAndForget)
        }
    }

    /// A buffer of a spread the client has aborted, overtaken by its MAP_DISABLE: refused,
    /// counted as a tolerated race (the source's answer to the client is stale by now).
    mutating func mapBufferAfterAbort(_ s: Int, rid: RequestID, from peer: HostAddress) {
        emit(.ignored(.mapBufferAfterAbort(pool: serverPools[s].name)))
        respond(.failed(.ECANCELED), rid: rid, pool: serverPools[s].name, to: peer)
    }

    mutating func serverMapDisable(_ s: Int, rid: RequestID, from peer: HostAddress) {
        switch serverPools[s].state {
        case .empty, .registered:
            // No client session: nobody could have started a map update here.
            reject(.mapUpdate(serverPools[s].name), state: serverPools[s].state.rawValue, input: "MAP_DISABLE", reason: "no client session")
            return respond(.failed(.EINVAL), rid: rid, pool: serverPools[s].name, to: peer)
        case .created, .normal, .noIO:
            break
        }
        setMapUpdate(s, .disabled)
        serverPools[s].mapUpdateAborted = true
        serverPoolToNoIO(s)
        respond(.ok, rid: rid, pool: serverPools[s].name, to: peer)
    }

    // MARK: MAP_SEND: this node is the map source and pushes over its sync pool

    mutating func serverMapSend(_ s: Int, receiver: MemberID, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        func refuse(_ code: Errno, _ reason: String, race: Bool = false) {
            if race {
                emit(.ignored(.mapSourceCannotReachReceiver(pool: name, receiver: receiver)))
            } else {
                reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "MAP_SEND(\(receiver))", reason: reason)
            }
            respond(.failed(code), rid: rid, pool: name, to: peer)
        }
        guard serverPools[s].state == .normal || serverPools[s].state == .noIO else { return refuse(.EINVAL, "source must be normal or no_io") }
        guard let syncName = serverPools[s].syncPool, let c = clientPoolIndex(syncName) else { return refuse(.ENOTCONN, "no sync pool attached", race: true) }
        guard let l = clientPools[c].legIndex(member: receiver), clientPools[c].legs[l].state == .normal else {
            // The sync session to a rebooted receiver rejoins at our next recovery tick.
            return refuse(.ENOTCONN, "no normal sync session to member \(receiver)", race: true)
        }
        let target = clientPools[c].legs[l].address
        let pushID = nextSerial()
        var count = 0
        let p = serverPools[s]
        for (i, m) in p.mapMembers.enumerated() {
            let runs = p.maps[i].runs()
            var start = 0
            repeat {
                let end = min(runs.count, start + Limits.maxRunsPerMapBuffer)
                sendRequest(.mapBuffer(MapBuffer(member: m, runs: Array(runs[start..<end]))), pool: syncName, to: target,
                            kind: .mapPush(serverPool: name, push: pushID))
                count += 1
                start = end
            } while start < runs.count
        }
        sendRequest(.mapBufDone(p.mapVersion), pool: syncName, to: target, kind: .mapPush(serverPool: name, push: pushID))
        count += 1
        serverPools[s].pushes[pushID] = MapPush(client: peer, clientRequest: rid, receiver: receiver, outstanding: count, failed: false)
    }

    mutating func mapPushAnswered(serverPool name: String, push id: UInt64, _ response: Response) {
        guard let s = serverPoolIndex(name), var push = serverPools[s].pushes[id] else { return }
        push.outstanding -= 1
        if !response.isOK { push.failed = true }
        if push.outstanding > 0 {
            serverPools[s].pushes[id] = push
            return
        }
        serverPools[s].pushes[id] = nil
        respond(push.failed ? .failed(.EIO) : .ok, rid: push.clientRequest, pool: name, to: push.client)
    }

    // MARK: Last-IO reconciliation (server side)

    /// Converts this node's write intents into dirty marks for every other member — for every
    /// member, not only the first (the reference's ≥3-leg bug, notes §11 item 10) — skipping
    /// chunks already dirty for this node, then forgets the intents. Answers the chunks marked
    /// so the client can record them on the other legs.
    mutating func serverLastIOToMap(_ s: Int, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        guard serverPools[s].state == .noIO else {
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "LAST_IO_TO_MAP", reason: "needs no_io")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        var hot = Set(serverPools[s].intents.keys)
        for c in serverPools[s].lastIO { if let c { hot.insert(c) } }
        let chunks = hot.sorted().filter { $0 < serverPools[s].geometry.chunkCount && !serverPools[s].isDirtyForSelf($0) }
        let me = serverPools[s].member
        var updates: [MetadataUpdate] = []
        for m in serverPools[s].members where m != me {
            let i = serverPools[s].ensureMap(m)
            serverPools[s].maps[i].set(contentsOf: chunks)
            serverPools[s].mapGeneration[i] &+= 1
            if !chunks.isEmpty { updates.append(.setDirty(member: m, chunks: chunks)) }
        }
        serverPools[s].intents = [:]
        serverPools[s].intentPins = [:]
        serverPools[s].lastIO = Array(repeating: nil, count: Limits.maxQueueDepth)
        updates.append(.clearIntents)
        persistAndThen(s, updates, then: [.respond(pool: name, peer: peer, rid: rid, .chunksMarked(chunks))])
    }

    mutating func serverMarkDirty(_ s: Int, chunks: [ChunkIndex], except: MemberID, rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        let count = serverPools[s].geometry.chunkCount
        guard chunks.allSatisfy({ $0 < count }) else {
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "MARK_DIRTY", reason: "chunk beyond \(count)")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        // `except` is to be the source of these chunks. Where this node records `except` itself
        // as dirty (it missed an acknowledged write there, e.g. a leg still syncing when the
        // others failed), it cannot be: the first member clean here takes its place, and a
        // chunk no member is clean for here is left as it is. Marking it dirty for all but
        // `except` would leave it dirty for every member, with no node to sync it from (fuzz
        // seeds 2245, 3610, 4193).
        func dirtyHere(_ m: MemberID, _ c: ChunkIndex) -> Bool { serverPools[s].isDirty(c, for: m) }
        var bySource: [(source: MemberID, chunks: [ChunkIndex])] = [(except, [])]
        for c in chunks {
            if !dirtyHere(except, c) { bySource[0].chunks.append(c); continue }
            emit(.probe(.markDirtySourceReplaced))
            guard let other = serverPools[s].members.sorted().first(where: { !dirtyHere($0, c) }) else { continue }
            if let k = bySource.firstIndex(where: { $0.source == other }) { bySource[k].chunks.append(c) } else { bySource.append((other, [c])) }
        }
        var updates: [MetadataUpdate] = []
        for (source, marked) in bySource where !marked.isEmpty || source == except {
            for m in serverPools[s].members where m != source {
                let i = serverPools[s].ensureMap(m)
                serverPools[s].maps[i].set(contentsOf: marked)
                serverPools[s].mapGeneration[i] &+= 1
                updates.append(.setDirty(member: m, chunks: marked))
            }
        }
        persistAndThen(s, updates, then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
    }

    /// Last-IO reconciliation: ORs another participant's dirty records into this node's maps
    /// (this node is the map source the client spreads next). A record for a member this node
    /// does not know is skipped; so is a chunk the record would leave dirty for every member.
    mutating func serverMergeMaps(_ s: Int, _ incoming: [MemberMapRuns], rid: RequestID, from peer: HostAddress) {
        let name = serverPools[s].name
        let count = serverPools[s].geometry.chunkCount
        guard serverPools[s].state == .normal || serverPools[s].state == .noIO else {
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "MAP_MERGE", reason: "needs normal or no_io")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        guard serverPools[s].store != nil else {
            // The operator removed the store after the client chose this node as the source.
            emit(.ignored(.mapMergeRefusedNoStore(pool: name)))
            return respond(.failed(.ENODEV), rid: rid, pool: name, to: peer)
        }
        guard incoming.allSatisfy({ $0.runs.allSatisfy { $0.end <= count } }) else {
            reject(.serverPool(name), state: serverPools[s].state.rawValue, input: "MAP_MERGE", reason: "chunk beyond \(count)")
            return respond(.failed(.EINVAL), rid: rid, pool: name, to: peer)
        }
        let members = serverPools[s].members
        func dirtyHere(_ m: MemberID, _ c: ChunkIndex) -> Bool { serverPools[s].isDirty(c, for: m) }
        var changed: [MemberID] = []
        for record in incoming where members.contains(record.member) {
            let m = record.member
            var added: [ChunkIndex] = []
            for run in record.runs {
                for c in run.start..<run.end where !dirtyHere(m, c) {
                    if members.allSatisfy({ $0 == m || dirtyHere($0, c) }) {
                        emit(.probe(.mapMergeSkippedChunkDirtyForAll))
                        continue
                    }
                    added.append(c)
                }
            }
            guard !added.isEmpty else { continue }
            let i = serverPools[s].ensureMap(m)
            serverPools[s].maps[i].set(contentsOf: added)
            serverPools[s].mapGeneration[i] &+= 1
            changed.append(m)
        }
        let updates = changed.map { m in MetadataUpdate.replaceMap(member: m, runs: serverPools[s].maps[serverPools[s].mapIndex(m)!].runs()) }
        persistAndThen(s, updates, then: [.respond(pool: name, peer: peer, rid: rid, .ok)])
    }

    // MARK: Peer map check (server recovery tick, notes §6.6)

    mutating func serverMapCheckTick(_ s: Int) {
        guard serverPools[s].state == .normal, let syncName = serverPools[s].syncPool, let c = clientPoolIndex(syncName) else { return }
        let me = serverPools[s].member
        for (i, m) in serverPools[s].mapMembers.enumerated() where m != me && !serverPools[s].maps[i].isEmpty {
            guard serverPools[s].peerChecks[m] == nil else { continue }
            guard let l = clientPools[c].legIndex(member: m), clientPools[c].legs[l].state == .normal else { continue }
            serverPools[s].peerChecks[m] = serverPools[s].mapGeneration[i]
            // Our version: the peer's "clean" counts only if it has caught up with every map
            // version our copy of its map was written at (see `Request.mapCheck`).
            sendRequest(.mapCheck(atLeast: serverPools[s].mapVersion), pool: syncName, to: clientPools[c].legs[l].address,
                        kind: .peerMapCheck(serverPool: serverPools[s].name, member: m))
        }
    }

    mutating func peerMapCheckAnswered(serverPool name: String, member: MemberID, _ response: Response) {
        guard let s = serverPoolIndex(name), let generation = serverPools[s].peerChecks.removeValue(forKey: member) else { return }
        guard case .value(1) = response, let i = serverPools[s].mapIndex(member) else { return }
        // Abort if a MAP_ADD or piggyback touched the map since the question was asked.
        guard serverPools[s].mapGeneration[i] == generation else { return }
        serverPools[s].maps[i].clearAll()
        serverPools[s].mapGeneration[i] &+= 1
        persistAndThen(s, [.replaceMap(member: member, runs: [])], then: [])
    }
}
