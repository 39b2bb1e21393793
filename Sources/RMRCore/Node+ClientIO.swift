// Client IO path (notes §4.1, §4.2): block requests split per chunk, IO units bounded by the
// queue depth, writes fanned out to every NORMAL leg with failed members piggybacked, MAP_ADD
// after a partial failure, reads from one NORMAL leg round-robin with retry on another leg.
// Sync pools use the same read path for chunk syncs.

extension Node {
    mutating func handleBlockIO(_ request: BlockRequest) {
        guard let d = devices.firstIndex(where: { $0.name == request.device }), devices[d].state == .ready,
              let p = clientPoolIndex(devices[d].pool) else {
            return emit(.completeBlockIO(request.tag, .failed(.ENODEV)))
        }
        let sizeBytes = devices[d].sizeSectors * Limits.sectorBytes
        guard request.offsetBytes + request.lengthBytes <= sizeBytes, request.lengthBytes > 0 || request.op == .flush else {
            return emit(.completeBlockIO(request.tag, .failed(.EINVAL)))
        }
        if request.op == .write {
            guard request.data.count == Int(request.lengthBytes) else { return emit(.completeBlockIO(request.tag, .failed(.EINVAL))) }
        }
        if request.op == .flush {
            // Every acknowledged write is already durable on each leg that took it.
            return emit(.completeBlockIO(request.tag, .ok(data: [])))
        }
        guard !blocks.contains(key: request.tag) else { return emit(.completeBlockIO(request.tag, .failed(.EEXIST))) }
        let geometry = clientPools[p].geometry
        // One piece per chunk, queued in order.
        var pieces = 0
        var offset = request.offsetBytes
        let end = request.offsetBytes + request.lengthBytes
        while offset < end {
            let chunkEnd = geometry.firstByte(of: geometry.chunk(ofByte: offset)) + geometry.chunkBytes
            let pieceEnd = min(end, chunkEnd)
            let inRequest = offset - request.offsetBytes
            let data: [UInt8]
            if request.op != .write {
                data = []
            } else if offset == request.offsetBytes && pieceEnd == end {
                data = request.data  // The whole request in one piece: share the buffer, no copy.
            } else {
                data = Array(request.data[Int(inRequest)..<Int(pieceEnd - request.offsetBytes)])
            }
            clientPools[p].queued.append(QueuedIO(owner: .block(request.tag, offsetInRequest: inRequest), op: request.op,
                                                  offsetBytes: offset, lengthBytes: pieceEnd - offset, data: data))
            pieces += 1
            offset = pieceEnd
        }
        blocks.insertAbsent(request.tag, BlockParent(remaining: pieces, error: nil, op: request.op,
                                                     data: request.op == .read ? Array(repeating: 0, count: Int(request.lengthBytes)) : []))
        pumpClientPool(p)
    }

    /// Starts queued IO while slots are free and IO is not frozen.
    mutating func pumpClientPool(_ p: Int) {
        while !clientPools[p].frozen, !clientPools[p].queued.isEmpty, let slot = clientPools[p].freeSlots.popLast() {
            // The usual queue holds the one request just added: taking the last element is the
            // same and moves nothing (`removeFirst` goes through a general range replacement).
            let q = clientPools[p].queued.count == 1 ? clientPools[p].queued.removeLast() : clientPools[p].queued.removeFirst()
            let id = nextSerial()
            let chunk = clientPools[p].geometry.chunk(ofByte: q.offsetBytes)
            switch q.op {
            case .write:
                startWrite(p, IOUnit(id: id, q, chunk: chunk, slot: slot), data: q.data)
            case .read:
                clientPools[p].units.insertAbsent(id, IOUnit(id: id, q, chunk: chunk, slot: slot))  // (fresh ids)
                sendRead(p, id)
            case .flush:
                clientPools[p].units.insertAbsent(id, IOUnit(id: id, q, chunk: chunk, slot: slot))
                finishUnit(p, id, .ok(data: []))
            }
        }
    }

    /// Starts a write unit (not yet in `units`: it is stored once, with its targets).
    private mutating func startWrite(_ p: Int, _ unit: consuming IOUnit, data: [UInt8]) {
        precondition(!clientPools[p].isSync, "writes through a sync pool are refused")
        let id = unit.id
        // Static helpers on the stored arrays: a computed property of `clientPools[p]` copies the pool.
        let targets = ClientPool.writeTargets(clientPools[p].legs)
        guard !targets.isEmpty else {
            clientPools[p].units.insertAbsent(id, unit)
            return finishUnit(p, id, .failed(.EIO))
        }
        let piggyback = ClientPool.piggybackMembers(clientPools[p].members, clientPools[p].legs)
        precondition(piggyback.count <= Limits.maxLegs, "more failed members than legs")
        for m in piggyback { clientPools[p].markDirty(m, chunk: unit.chunk, at: now) }
        if !piggyback.isEmpty {
            emit(.probe(.piggybackedFailedMember))
            clientPools[p].noteMissedWrite(piggyback, chunk: unit.chunk)
        }
        unit.waitingOn = targets
        unit.piggybacked = piggyback
        let (offsetBytes, lengthBytes, slot) = (unit.offsetBytes, unit.lengthBytes, unit.slot)
        clientPools[p].units.insertAbsent(id, consume unit)
        let version = clientPools[p].mapVersion
        let name = clientPools[p].name
        let failedMembers = Array(piggyback)  // (empty: no allocation)
        for m in targets {
            let address = clientPools[p].legs[clientPools[p].legIndex(member: m)!].address
            let io = IORequest(op: .write, offsetBytes: offsetBytes, lengthBytes: lengthBytes, data: data,
                               slot: slot, mapVersion: version, failedMembers: failedMembers, target: m)
            sendRequest(.io(io), pool: name, to: address, kind: .ioLeg(unit: id, member: m))
        }
    }

    /// Sends a read to the next NORMAL leg not yet tried, round-robin. A chunk sync skips the
    /// legs that this node's own maps record as dirty for the chunk: such a peer may not know
    /// it missed writes yet (the client failed its leg on a timeout and told only the legs that
    /// stayed), so its refusal cannot be relied on.
    private mutating func sendRead(_ p: Int, _ id: UInt64) {
        let unit = clientPools[p].units[id]!
        let legs = clientPools[p].legs
        guard !legs.isEmpty else { return finishUnit(p, id, .failed(unit.firstError ?? .EIO)) }
        var syncing: Int?
        if case .chunkSync(let name, _, _) = unit.owner { syncing = serverPoolIndex(name) }
        for step in 0..<legs.count {
            let l = (clientPools[p].readCursor + step) % legs.count
            let leg = legs[l]
            guard leg.state == .normal, !leg.maintenance, leg.member != 0, leg.linkUp, !unit.tried.contains(leg.member) else { continue }
            if let s = syncing, serverPools[s].isDirty(unit.chunk, for: leg.member) {
                emit(.probe(.syncSourceKnownDirtySkipped))
                continue
            }
            clientPools[p].readCursor = (l + 1) % legs.count
            clientPools[p].units[id]!.tried.append(leg.member)
            clientPools[p].units[id]!.waitingOn = [leg.member]
            if !unit.tried.isEmpty { emit(.probe(.readRetriedOnAnotherLeg)) }
            let io = IORequest(op: .read, offsetBytes: unit.offsetBytes, lengthBytes: unit.lengthBytes, data: [], slot: unit.slot,
                               mapVersion: clientPools[p].mapVersion, failedMembers: [], target: leg.member)
            return sendRequest(.io(io), pool: clientPools[p].name, to: leg.address, kind: .ioLeg(unit: id, member: leg.member))
        }
        finishUnit(p, id, .failed(unit.firstError ?? .EIO))
    }

    mutating func ioLegAnswered(pool name: String, unit id: UInt64, member: MemberID, _ response: Response) {
        // In place (copying the unit out and back retains and releases each of its arrays).
        let ok = response.isOK
        guard let p = clientPoolIndex(name),
              let answered = clientPools[p].units.update(id, { $0.legAnswered(member, ok: ok) }) else { return }
        let (op, lengthBytes, allAnswered) = answered
        switch op {
        case .read:
            if case .data(let data) = response, data.count == Int(lengthBytes) {
                return finishUnit(p, id, .ok(data: data))
            }
            let errno: Errno
            if case .failed(let e) = response { errno = e } else { errno = .EIO }
            if clientPools[p].units[id]!.firstError == nil { clientPools[p].units[id]!.firstError = errno }
            if !clientPools[p].isSync { failLeg(p, member: member) }
            sendRead(p, id)
        case .write:
            if !ok { clientPools[p].noteMissedWrite([member], chunk: clientPools[p].units[id]!.chunk) }
            if allAnswered { writeDataFinished(p, id) }
        case .flush:
            finishUnit(p, id, .ok(data: []))
        }
    }

    private mutating func writeDataFinished(_ p: Int, _ id: UInt64) {
        // No leg failed (the common case): read in place, copying the unit retains its arrays.
        if clientPools[p].units[id]!.failed.isEmpty {
            if clientPools[p].units[id]!.succeeded.isEmpty {
                recordIndeterminate(p, chunk: clientPools[p].units[id]!.chunk)
                return finishUnit(p, id, .failed(.EIO))
            }
            return finishUnit(p, id, .ok(data: []))
        }
        let unit = clientPools[p].units[id]!
        for m in unit.failed { failLeg(p, member: m) }
        if unit.succeeded.isEmpty {
            recordIndeterminate(p, chunk: unit.chunk)
            return finishUnit(p, id, .failed(.EIO))
        }
        if unit.failed.isEmpty { return finishUnit(p, id, .ok(data: [])) }
        // Partial failure: the data is on ≥1 leg; the dirty record must reach ≥1 survivor.
        emit(.probe(.mapAddAfterPartialWrite))
        for m in unit.failed { clientPools[p].markDirty(m, chunk: unit.chunk, at: now) }
        let survivors = unit.succeeded.filter { m in
            guard let l = clientPools[p].legIndex(member: m) else { return false }
            return clientPools[p].legs[l].state != .failed && clientPools[p].legs[l].state != .removing
        }
        // A survivor that missed another write to this chunk while this one was in flight
        // (skipped by it, or failed on it) holds this write but not that one, and the legs
        // that took the other write record that it missed the chunk. A MAP_ADD there would
        // record the reverse: each copy missing an acknowledged write, so no chunk-sized
        // resync could rebuild a complete chunk. The write fails instead.
        let holders = survivors.filter { !unit.missedAnotherWrite.contains($0) }
        if holders.isEmpty && !survivors.isEmpty { emit(.probe(.ackRefusedHolderMissedAnotherWrite)) }
        guard !holders.isEmpty else {
            recordIndeterminate(p, chunk: unit.chunk)
            return finishUnit(p, id, .failed(.EIO))
        }
        clientPools[p].units[id]!.inMapAddPhase = true
        clientPools[p].units[id]!.mapAddWaitingOn = MemberList(holders)
        for m in holders {
            let leg = clientPools[p].legs[clientPools[p].legIndex(member: m)!]
            sendRequest(.mapAdd(chunk: unit.chunk, failedMembers: Array(unit.failed), mapVersion: clientPools[p].mapVersion),
                        pool: clientPools[p].name, to: leg.address, kind: .mapAddLeg(unit: id, member: m))
        }
    }

    mutating func mapAddAnswered(pool name: String, unit id: UInt64, member: MemberID, _ response: Response) {
        guard let p = clientPoolIndex(name), clientPools[p].units[id] != nil else { return }
        clientPools[p].units[id]!.mapAddWaitingOn.removeAll { $0 == member }
        if response.isOK { clientPools[p].units[id]!.mapAddRecordedBy.append(member) } else { failLeg(p, member: member) }
        let unit = clientPools[p].units[id]!
        guard unit.mapAddWaitingOn.isEmpty else { return }
        guard !unit.mapAddRecordedBy.isEmpty else {
            recordIndeterminate(p, chunk: unit.chunk)
            return finishUnit(p, id, .failed(.EIO))
        }
        dropAuthorityOfLegsWithout(p, recordedBy: unit.mapAddRecordedBy)
        finishUnit(p, id, .ok(data: []))
    }

    /// A partially failed write is being acknowledged: its data and its dirty record are on the
    /// legs in `recordedBy` only. A leg marked last authoritative that is not one of them (it
    /// missed the data, or its MAP_ADD failed) no longer holds every acknowledged write and the
    /// record of who missed it, so Case 2 must not enable it as is (fuzz seed 7249: it would
    /// serve the stale chunk and refuse, as older, to spread to the leg that knows).
    private mutating func dropAuthorityOfLegsWithout(_ p: Int, recordedBy: MemberList) {
        for l in clientPools[p].legs.indices where clientPools[p].legs[l].wasLastAuthoritative
            && !recordedBy.contains(clientPools[p].legs[l].member) {
            clientPools[p].legs[l].wasLastAuthoritative = false
            emit(.probe(.authorityLostToMissedWrite))
        }
    }

    mutating func recordIndeterminate(_ p: Int, chunk: ChunkIndex) {
        if !clientPools[p].indeterminate.contains(chunk) { clientPools[p].indeterminate.append(chunk) }
    }

    /// An IO to this leg failed: the leg goes FAILED (IO pools; sync legs too).
    mutating func failLeg(_ p: Int, member: MemberID) {
        guard let l = clientPools[p].legIndex(member: member) else { return }
        switch clientPools[p].legs[l].state {
        case .created, .normal, .reconnecting:
            moveLeg(pool: p, leg: l, to: .failed)
            abortRecoveryIfInvolved(p, member: member)
        case .failed, .removing:
            break  // Already out of the IO path.
        }
    }

    mutating func finishUnit(_ p: Int, _ id: UInt64, _ result: BlockIOResult) {
        guard let unit = clientPools[p].units.removeValue(forKey: id) else { return }
        clientPools[p].freeSlots.append(unit.slot)
        switch unit.owner {
        case .block(let tag, let offsetInRequest):
            finishBlockPiece(tag, offsetInRequest: offsetInRequest, result)
        case .chunkSync(let serverPool, let chunk, let lock):
            chunkSyncRead(serverPool: serverPool, chunk: chunk, lock: lock, result: result)
        }
        if clientPools[p].frozen && clientPools[p].units.isEmpty {
            drained(p)
        }
        pumpClientPool(p)
    }

    private mutating func finishBlockPiece(_ tag: BlockIOTag, offsetInRequest: UInt64, _ result: BlockIOResult) {
        // In place, in one lookup: copying the parent out and back would copy its data buffer,
        // and each `blocks[tag]!` looked the tag up again.
        let remaining = blocks.update(tag) { parent -> Int in
            parent.remaining -= 1
            switch result {
            case .ok(let data):
                if parent.op == .read {
                    let start = Int(offsetInRequest)
                    parent.data.replaceSubrange(start..<(start + data.count), with: data)
                }
            case .failed(let e):
                if parent.error == nil { parent.error = e }
            }
            return parent.remaining
        }
        guard let remaining, remaining <= 0 else { return }
        let parent = blocks.removeValue(forKey: tag)!
        if let e = parent.error {
            emit(.completeBlockIO(tag, .failed(e)))
        } else {
            emit(.completeBlockIO(tag, .ok(data: parent.data)))
        }
    }

    /// Fails queued IO of a pool (device unmapped or pool gone).
    mutating func failQueued(_ p: Int) {
        let queued = clientPools[p].queued
        clientPools[p].queued = []
        for q in queued {
            switch q.owner {
            case .block(let tag, let off): finishBlockPiece(tag, offsetInRequest: off, .failed(.EIO))
            case .chunkSync(let sp, let chunk, let lock): chunkSyncRead(serverPool: sp, chunk: chunk, lock: lock, result: .failed(.EIO))
            }
        }
    }
}
