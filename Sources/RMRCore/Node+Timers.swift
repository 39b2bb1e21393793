// Periodic work (notes §6.6): the client recovery tick (rejoin / store check, map check,
// metadata push, try_enable), the server's peer-map check and write-intent trimming, and the
// deadlines of admin commands waiting for a peer.

extension Node {
    mutating func handleTimers() {
        causeKind = .timer
        for p in clientPools.indices {
            if let t = clientPools[p].nextTick, t <= now {
                clientPools[p].nextTick = now + Timing.recoverInterval
                clientRecoveryTick(p)
            }
        }
        for s in serverPools.indices {
            if let t = serverPools[s].nextCheck, t <= now {
                serverPools[s].nextCheck = serverPools[s].state == .normal ? now + Timing.serverCheckMapsInterval : nil
                serverMapCheckTick(s)
                trimIntents(s)
                // A chunk sync that failed (a peer went away mid-chunk) stopped the thread, as in
                // the reference; we restart it at the next tick instead of waiting for the
                // operator, unless the operator stopped it (fuzz seed 257).
                autoStartSync(s)
            }
        }
        // Requests unanswered for the command timeout are failed like a lost link would fail
        // them, so nothing waits forever on a peer that stopped answering (in request order).
        let lost = pending.filter { now.since($0.value.sentAt) >= Timing.commandTimeout }.keys.sorted()
        for rid in lost {
            guard let p = pending[rid] else { continue }
            handleResponse(.failed(.ETIMEDOUT), rid: rid, pool: p.pool, from: p.peer)
        }
        let expired = adminDeadlines.filter { $0.deadline <= now }
        for d in expired {
            adminDeadlines.removeAll { $0.token == d.token }
            if let p = clientPoolIndex(d.pool), let l = clientPools[p].legIndex(session: d.session),
               clientPools[p].legs[l].member == 0 {
                removeLeg(p, l)
            }
            emit(.completeAdmin(d.token, .failed(RMRError(.ETIMEDOUT, "no answer from the node for session \(d.session) within \(Timing.commandTimeout.nanos / 1_000_000_000) s"))))
        }
    }

    private mutating func clientRecoveryTick(_ p: Int) {
        let name = clientPools[p].name
        for l in clientPools[p].legs.indices {
            let leg = clientPools[p].legs[l]
            guard leg.state == .failed, leg.linkUp, !leg.joinInFlight, leg.member != 0 else { continue }
            if !leg.joinedOnServer || leg.isSync {
                sendJoin(p, session: leg.session, admin: nil, rejoin: true)
            } else {
                sendRequest(.storeCheck, pool: name, to: leg.address, kind: .storeCheck(session: leg.session))
            }
        }
        if clientPools[p].isSync { return }
        // MAP_CHECK every NORMAL leg: it trims our copy of its map when the node is clean, and
        // tells us when a leg we think NORMAL has stopped serving.
        for leg in clientPools[p].legs where leg.state == .normal && !leg.maintenance && leg.member != 0 {
            let generation = clientPools[p].mapIndex(leg.member).map { clientPools[p].mapGeneration[$0] } ?? 0
            sendRequest(.mapCheck(atLeast: MapVersion(raw: 0)), pool: name, to: leg.address, kind: .mapCheck(member: leg.member, generation: generation))
        }
        if !clientPools[p].members.isEmpty {
            let md = PoolMetadata(poolName: name, poolUUID: clientPools[p].poolUUID, chunkBytes: clientPools[p].chunkBytes,
                                  mappedSectors: clientPools[p].mappedSectors, mapVersion: clientPools[p].mapVersion,
                                  members: clientPools[p].members)
            for leg in clientPools[p].legs where (leg.state == .normal || leg.state == .reconnecting) && leg.member != 0 {
                sendRequest(.sendMetadata(md), pool: name, to: leg.address, kind: .fireAndForget)
            }
        }
        tryEnable(p)
    }

    /// Drops write intents no slot or write in flight still pins, once the log is half full.
    private mutating func trimIntents(_ s: Int) {
        guard serverPools[s].intents.count > options.writeIntentCapacity / 2 else { return }
        let cold = serverPools[s].intents.keys.filter { (serverPools[s].intentPins[$0] ?? 0) == 0 }.sorted()
        guard !cold.isEmpty else { return }
        for c in cold { serverPools[s].intents[c] = nil }
        persistAndThen(s, [.removeIntents(cold)], then: [])
    }
}
