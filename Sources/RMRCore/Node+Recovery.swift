// try_enable (notes §6.5) and the jobs it runs: Case 1 map spread from a NORMAL leg, Case 2
// direct enable of the last authoritative leg, Cases 3/4 last-IO reconciliation (§6.7) made
// correct for any number of legs. Plus the client's MAP_CHECK and STORE_CHECK answers (§6.6).
//
// Defined behaviour when a pool member is still down after a client restart (notes §11 item
// 12): reconciliation waits until every member recorded in pool_md has rejoined, because the
// missing member may hold the only copy of acknowledged writes (it may have been the last
// NORMAL leg). `pool_enable` then answers EAGAIN naming the members it waits for. To go on
// without a member for good, delete its leg (del_sess mode=delete) once it is reachable, or
// bring the node back; see Docs/protocol.md.

extension Node {
    /// Why try_enable cannot run now, or nil if it started (or had nothing to do).
    @discardableResult
    mutating func tryEnable(_ p: Int) -> String? {
        let pool = clientPools[p]
        guard !pool.isSync else { return nil }
        if pool.recovery != nil { return "a recovery is already running" }
        let usable = pool.legs.filter { !$0.maintenance && $0.member != 0 }
        let normal = usable.filter { $0.state == .normal }.map(\.member).sorted()
        let reconnecting = usable.filter { $0.state == .reconnecting }.map(\.member).sorted()
        if reconnecting.isEmpty { return nil }
        if let source = normal.first {
            startRecovery(p, kind: .spread, source: source, receivers: reconnecting)
            return nil
        }
        let authoritative = pool.legs.filter { $0.state == .reconnecting && $0.wasLastAuthoritative && !$0.maintenance }
        if authoritative.count == 1 {
            let a = authoritative[0].member
            startRecovery(p, kind: .enableAuthoritative, source: a, receivers: reconnecting.filter { $0 != a })
            return nil
        }
        let missing = pool.members.filter { m in
            guard let l = pool.legIndex(member: m) else { return true }
            return pool.legs[l].state != .reconnecting || pool.legs[l].maintenance
        }
        guard missing.isEmpty else {
            return "waiting for member(s) \(missing.map(String.init).joined(separator: " ")) to rejoin before reconciling the last IOs"
        }
        startRecovery(p, kind: .lastIO, source: 0, receivers: reconnecting)
        return nil
    }

    mutating func manualPoolEnable(_ name: String, token: AdminToken) {
        guard let p = clientPoolIndex(name) else { return fail(token, .ENOENT, "no client pool \(name)") }
        guard !clientPools[p].isSync else { return fail(token, .EINVAL, "pool \(name) is a sync pool") }
        if let reason = tryEnable(p) {
            if clientPools[p].recovery != nil {
                clientPools[p].enableWaiters.append(token)
                return
            }
            return fail(token, .EAGAIN, reason)
        }
        if clientPools[p].recovery != nil {
            clientPools[p].enableWaiters.append(token)
        } else {
            completeAdmin(token, .ok)
        }
    }

    private mutating func startRecovery(_ p: Int, kind: RecoveryKind, source: MemberID, receivers: [MemberID]) {
        var job = RecoveryJob(id: nextSerial(), kind: kind)
        job.source = source
        job.receivers = receivers
        job.participants = ([source] + receivers).filter { $0 != 0 }.sorted()
        job.enableOnSpread = kind != .lastIO
        clientPools[p].recovery = job
        freeze(p, for: .recovery(job: job.id))
    }

    mutating func recoveryDrained(_ p: Int, job id: UInt64) {
        guard var job = clientPools[p].recovery, job.id == id else { return unfreeze(p) }
        switch job.kind {
        case .spread:
            clientPools[p].recovery = job
            nextSpread(p)
        case .enableAuthoritative:
            guard let l = clientPools[p].legIndex(member: job.source), clientPools[p].legs[l].wasLastAuthoritative else {
                // A write acknowledged during the drain showed that the leg missed it.
                emit(.probe(.authoritativeRecoveryRechosen))
                // Choose again before releasing the freeze, so that no IO slips in between.
                clientPools[p].recovery = nil
                let reason = tryEnable(p)
                unfreeze(p)
                if let reason, clientPools[p].recovery == nil {
                    let waiters = clientPools[p].enableWaiters
                    clientPools[p].enableWaiters = []
                    for t in waiters { fail(t, .EAGAIN, reason) }
                }
                return
            }
            job.phase = .enablingAuthoritative(job.source)
            clientPools[p].recovery = job
            sendRecovery(p, .enablePool(true), to: job.source)
        case .lastIO:
            emit(.probe(.lastIOReconciliation))
            if job.participants.count >= 3 { emit(.probe(.lastIOReconciliationThreeOrMoreLegs)) }
            job.phase = .gettingVersions(waitingOn: job.participants)
            clientPools[p].recovery = job
            for m in job.participants { sendRecovery(p, .mapGetVersion, to: m) }
        }
    }

    private mutating func sendRecovery(_ p: Int, _ request: Request, to member: MemberID) {
        guard let job = clientPools[p].recovery, let l = clientPools[p].legIndex(member: member) else { return }
        sendRequest(request, pool: clientPools[p].name, to: clientPools[p].legs[l].address, kind: .recovery(job: job.id, member: member))
    }

    /// Last-IO: reads the next participant's maps to merge them into the source, or starts the
    /// spread. The source has the highest map version, but another participant may hold records
    /// it lacks (each saw a different part of the failures: fuzz seed 1828); spreading the
    /// source's maps alone would erase them.
    private mutating func nextMerge(_ p: Int) {
        guard var job = clientPools[p].recovery else { return }
        guard !job.mergeOrder.isEmpty else { return nextSpread(p) }
        let r = job.mergeOrder.removeFirst()
        job.phase = .readingPeerMaps(r)
        clientPools[p].recovery = job
        sendRecovery(p, .readMaps, to: r)
    }

    /// Starts the spread to the next receiver, or finishes the spread stage.
    private mutating func nextSpread(_ p: Int) {
        guard var job = clientPools[p].recovery else { return }
        guard !job.receivers.isEmpty else { return spreadStageFinished(p) }
        let r = job.receivers.removeFirst()
        job.phase = .spreadReady(receiver: r)
        clientPools[p].recovery = job
        sendRecovery(p, .mapReady, to: r)
    }

    private mutating func spreadStageFinished(_ p: Int) {
        guard var job = clientPools[p].recovery else { return }
        switch job.kind {
        case .spread, .enableAuthoritative:
            finishRecovery(p, ok: true)
        case .lastIO:
            job.convertOrder = job.participants
            clientPools[p].recovery = job
            nextConversion(p)
        }
    }

    private mutating func nextConversion(_ p: Int) {
        guard var job = clientPools[p].recovery else { return }
        guard !job.convertOrder.isEmpty else {
            job.phase = .readingMaps(job.source)
            clientPools[p].recovery = job
            return sendRecovery(p, .readMaps, to: job.source)
        }
        let l = job.convertOrder.removeFirst()
        job.phase = .lastIOConvert(l)
        clientPools[p].recovery = job
        sendRecovery(p, .lastIOToMap, to: l)
    }

    mutating func recoveryAnswered(pool name: String, job id: UInt64, member: MemberID, _ response: Response) {
        guard let p = clientPoolIndex(name), var job = clientPools[p].recovery, job.id == id else { return }
        guard response.isOK else {
            emit(.probe(.mapSpreadAborted))
            // A source that could not push (its sync session to the receiver is down, or the
            // receiver refused a buffer) is not to blame: the spread is simply retried. Any
            // other refused step fails the leg that refused it. A lost link already failed it.
            if case .spreadSend = job.phase { return abortRecovery(p, blame: nil) }
            return abortRecovery(p, blame: member)
        }
        switch job.phase {
        case .draining:
            preconditionFailure("recovery answer while draining")
        case .enablingAuthoritative(let a):
            if let l = clientPools[p].legIndex(member: a), clientPools[p].legs[l].state == .reconnecting {
                moveLeg(pool: p, leg: l, to: .normal)
            }
            let chunks = clientPools[p].indeterminate.sorted()
            if !chunks.isEmpty {
                job.phase = .markingIndeterminate(a, chunks: chunks)
                clientPools[p].recovery = job
                return sendRecovery(p, .markDirty(chunks: chunks, except: a), to: a)
            }
            job.phase = .draining
            clientPools[p].recovery = job
            nextSpread(p)
        case .markingIndeterminate(_, let chunks):
            clientPools[p].indeterminate.removeAll { chunks.contains($0) }
            job.phase = .draining
            clientPools[p].recovery = job
            nextSpread(p)
        case .gettingVersions(var waitingOn):
            waitingOn.removeAll { $0 == member }
            if case .value(let raw) = response {
                let v = MapVersion(raw: raw)
                // Highest version wins; ties go to the lowest member id, whatever order the
                // answers arrive in.
                if let best = job.bestVersion {
                    if best < v || (!(v < best) && member < job.source) { job.bestVersion = v; job.source = member }
                } else {
                    job.bestVersion = v
                    job.source = member
                }
            }
            job.phase = .gettingVersions(waitingOn: waitingOn)
            if waitingOn.isEmpty {
                job.source = job.source == 0 ? job.participants[0] : job.source
                job.receivers = job.participants.filter { $0 != job.source }
                clientPools[p].mapVersion = max(clientPools[p].mapVersion, MapVersion(raw: job.bestVersion?.counter ?? 1))
                job.mergeOrder = job.receivers
                clientPools[p].recovery = job
                nextMerge(p)
            } else {
                clientPools[p].recovery = job
            }
        case .readingPeerMaps(let r):
            guard case .maps(let maps, _) = response else { return abortRecovery(p, blame: r) }
            job.phase = .mergingPeerMaps(from: r)
            clientPools[p].recovery = job
            sendRecovery(p, .mergeMaps(maps), to: job.source)
        case .mergingPeerMaps:
            emit(.probe(.lastIOMapsMerged))
            nextMerge(p)
        case .spreadReady(let r):
            job.phase = .spreadSend(receiver: r)
            clientPools[p].recovery = job
            sendRecovery(p, .mapSend(receiver: r), to: job.source)
        case .spreadSend(let r):
            job.phase = .spreadDone(receiver: r)
            clientPools[p].recovery = job
            sendRecovery(p, .mapDone(enable: job.enableOnSpread), to: r)
        case .spreadDone(let r):
            if job.enableOnSpread, let l = clientPools[p].legIndex(member: r), clientPools[p].legs[l].state == .reconnecting {
                moveLeg(pool: p, leg: l, to: .normal)
            }
            nextSpread(p)
        case .lastIOConvert(let l):
            guard case .chunksMarked(let chunks) = response, !chunks.isEmpty else { return nextConversion(p) }
            let others = job.participants.filter { $0 != l }
            if others.isEmpty { return nextConversion(p) }
            job.phase = .lastIOMark(waitingOn: others)
            clientPools[p].recovery = job
            for m in others { sendRecovery(p, .markDirty(chunks: chunks, except: l), to: m) }
        case .lastIOMark(var waitingOn):
            waitingOn.removeAll { $0 == member }
            job.phase = .lastIOMark(waitingOn: waitingOn)
            clientPools[p].recovery = job
            if waitingOn.isEmpty { nextConversion(p) }
        case .readingMaps:
            if case .maps(let maps, let version) = response {
                for m in clientPools[p].mapMembers { clientPools[p].dropMap(m) }
                for mm in maps {
                    clientPools[p].ensureMap(mm.member, allDirty: false, at: now)
                    let i = clientPools[p].mapIndex(mm.member)!
                    clientPools[p].maps[i].insert(runs: mm.runs)
                }
                clientPools[p].mapVersion = max(clientPools[p].mapVersion, MapVersion(raw: version.counter))
            }
            job.phase = .enablingAll(waitingOn: job.participants)
            clientPools[p].recovery = job
            for m in job.participants { sendRecovery(p, .enablePool(true), to: m) }
        case .enablingAll(var waitingOn):
            waitingOn.removeAll { $0 == member }
            if let l = clientPools[p].legIndex(member: member), clientPools[p].legs[l].state == .reconnecting {
                moveLeg(pool: p, leg: l, to: .normal)
            }
            job.phase = .enablingAll(waitingOn: waitingOn)
            clientPools[p].recovery = job
            if waitingOn.isEmpty { finishRecovery(p, ok: true) }
        }
    }

    private mutating func finishRecovery(_ p: Int, ok: Bool) {
        clientPools[p].recovery = nil
        unfreeze(p)
        let waiters = clientPools[p].enableWaiters
        clientPools[p].enableWaiters = []
        for t in waiters {
            if ok { completeAdmin(t, .ok) } else { fail(t, .EIO, "pool enable failed; it is retried at the next recovery tick") }
        }
        // Legs that became RECONNECTING meanwhile get their turn now.
        if ok { tryEnable(p) }
    }

    /// A step failed: the leg to blame goes FAILED, the others are told to stop waiting for a
    /// map (MAP_DISABLE), IO resumes. The next recovery tick tries again.
    private mutating func abortRecovery(_ p: Int, blame: MemberID?) {
        guard let job = clientPools[p].recovery else { return }
        if let blame { failLegForRecovery(p, member: blame) }
        for m in job.participants where m != blame {
            guard let l = clientPools[p].legIndex(member: m) else { continue }
            let leg = clientPools[p].legs[l]
            if leg.state == .reconnecting && leg.linkUp {
                sendRequest(.mapDisable, pool: clientPools[p].name, to: leg.address, kind: .fireAndForget)
            }
        }
        finishRecovery(p, ok: false)
    }

    private mutating func failLegForRecovery(_ p: Int, member: MemberID) {
        guard let l = clientPools[p].legIndex(member: member) else { return }
        switch clientPools[p].legs[l].state {
        case .normal, .reconnecting, .created: moveLeg(pool: p, leg: l, to: .failed)
        case .failed, .removing: break
        }
    }

    /// A leg of a running job failed (link down, IO error, removal): abandon the job.
    mutating func abortRecoveryIfInvolved(_ p: Int, member: MemberID) {
        guard let job = clientPools[p].recovery, job.participants.contains(member) || job.source == member else { return }
        if case .draining = job.phase {
            // Not started on the wire yet: drop the job; the freeze is released when drained.
            clientPools[p].recovery = nil
            clientPools[p].drainWaiters.removeAll { $0 == .recovery(job: job.id) }
            unfreeze(p)
            return
        }
        emit(.probe(.mapSpreadAborted))
        abortRecovery(p, blame: member)
    }

    // MARK: MAP_CHECK / STORE_CHECK answers

    mutating func mapCheckAnswered(pool name: String, member: MemberID, generation: UInt64, _ response: Response) {
        guard let p = clientPoolIndex(name) else { return }
        if case .value(2) = response {
            // The node stopped serving (store removed, IO error, restart) while we were idle.
            return failLeg(p, member: member)
        }
        guard let i = clientPools[p].mapIndex(member), case .value(1) = response else { return }
        // The 5 s guard of the reference plus our generation check: a map touched after the
        // question was asked is never cleared by the answer (closes the race of notes §9).
        guard clientPools[p].mapGeneration[i] == generation,
              now.since(clientPools[p].mapChangedAt[i]) >= Timing.mapCleanDelay else {
            emit(.probe(.mapCheckSkippedYoungMap))
            return
        }
        clientPools[p].maps[i].clearAll()
        clientPools[p].mapGeneration[i] &+= 1
        emit(.probe(.mapCheckClearedClientMap))
    }

    mutating func storeCheckAnswered(pool name: String, session: String, _ response: Response) {
        guard let p = clientPoolIndex(name), let l = clientPools[p].legIndex(session: session) else { return }
        guard case .value(1) = response, clientPools[p].legs[l].state == .failed else { return }
        moveLeg(pool: p, leg: l, to: .reconnecting)
        if !clientPools[p].legs[l].maintenance { tryEnable(p) }
    }
}
