// The only places where a leg or a server pool changes state. Each move is checked against the
// legal-transition table (an illegal move we chose ourselves is a bug: precondition) and
// recorded as a `.transitioned` effect naming the input that caused it.

extension Node {
    mutating func moveLeg(pool p: Int, leg l: Int, to next: LegState) {
        let leg = clientPools[p].legs[l]
        let from = leg.state
        if from == next { return }
        precondition(LegState.allows(from: from, to: next, isSync: leg.isSync),
                     "illegal leg move \(clientPools[p].name)/\(leg.session): \(from) -> \(next)")
        precondition(!(next == .normal && leg.maintenance), "a leg in maintenance cannot become normal")
        let wasNormalCount = clientPools[p].nonSyncNormalCount
        clientPools[p].legs[l].state = next
        if !leg.isSync {
            // Side effects of the reference's pool_sess_change_state (notes §3.2).
            if next == .failed {
                clientPools[p].mapVersion = clientPools[p].mapVersion.incremented()
            }
            if from == .normal && wasNormalCount == 1
                && (next == .failed || (next == .reconnecting && clientPools[p].legs[l].maintenance)) {
                // It held the last complete map.
                clientPools[p].legs[l].wasLastAuthoritative = true
            }
            if next == .normal {
                // A NORMAL leg now holds the complete map: no leg is "last authoritative" any
                // more (the flag never coexists with a NORMAL leg; fuzz seed 160).
                for i in clientPools[p].legs.indices { clientPools[p].legs[i].wasLastAuthoritative = false }
            }
        }
        emit(.transitioned(Transition(machine: .leg(pool: clientPools[p].name, session: leg.session),
                                      from: from.rawValue, to: next.rawValue, cause: cause, at: now)))
    }

    mutating func moveServerPool(_ s: Int, to next: ServerPoolState) {
        let from = serverPools[s].state
        if from == next { return }
        precondition(ServerPoolState.allows(from: from, to: next),
                     "illegal server pool move \(serverPools[s].name): \(from) -> \(next)")
        serverPools[s].state = next
        emit(.transitioned(Transition(machine: .serverPool(serverPools[s].name), from: from.rawValue,
                                      to: next.rawValue, cause: cause, at: now)))
        if from == .normal {
            stopSyncThread(s, reason: "pool left normal")
            // Chunk syncs in flight finish, but their waiters get EIO: the pool no longer serves IO.
        }
        if next == .normal {
            serverPools[s].nextCheck = now + Timing.serverCheckMapsInterval
            autoStartSync(s)
        }
    }

    /// Moves a server pool to NO_IO from wherever that is legal (the failure fallback).
    mutating func serverPoolToNoIO(_ s: Int) {
        switch serverPools[s].state {
        case .normal, .created, .registered: moveServerPool(s, to: .noIO)
        case .noIO, .empty: break  // already not serving, or nothing to stop
        }
    }

    mutating func setMapUpdate(_ s: Int, _ next: MapUpdateState) {
        let from = serverPools[s].mapUpdate
        if from == next { return }
        serverPools[s].mapUpdate = next
        emit(.transitioned(Transition(machine: .mapUpdate(serverPools[s].name), from: from.rawValue,
                                      to: next.rawValue, cause: cause, at: now)))
    }

    mutating func setSyncThread(_ s: Int, _ next: SyncThreadState, why: String) {
        let from = serverPools[s].syncThread
        if from == next { return }
        serverPools[s].syncThread = next
        emit(.transitioned(Transition(machine: .syncThread(serverPools[s].name), from: from.rawValue,
                                      to: next.rawValue, cause: "\(cause): \(why)", at: now)))
    }
}
