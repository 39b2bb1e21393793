// Client control path (notes §6.1–6.3, §6.8, §6.9, §8.5): sessions join / rejoin / leave,
// enable and maintenance, link events, IO freezes, and the brmr-client device map.

extension Node {
    // MARK: IO freeze

    mutating func freeze(_ p: Int, for action: FreezeAction) {
        clientPools[p].freezeHolders += 1
        clientPools[p].frozen = true
        if clientPools[p].units.isEmpty {
            runAfterDrain(p, action)
        } else {
            clientPools[p].drainWaiters.append(action)
        }
    }

    mutating func unfreeze(_ p: Int) {
        precondition(clientPools[p].freezeHolders > 0, "unfreeze without a freeze")
        clientPools[p].freezeHolders -= 1
        if clientPools[p].freezeHolders == 0 {
            clientPools[p].frozen = false
            pumpClientPool(p)
        }
    }

    mutating func drained(_ p: Int) {
        let waiters = clientPools[p].drainWaiters
        clientPools[p].drainWaiters = []
        for w in waiters { runAfterDrain(p, w) }
    }

    private mutating func runAfterDrain(_ p: Int, _ action: FreezeAction) {
        switch action {
        case .recovery(let job): recoveryDrained(p, job: job)
        case .maintenance(let session, let token): maintenanceDrained(p, session: session, token: token)
        case .leave(let session, let mode, let token): leaveDrained(p, session: session, mode: mode, token: token)
        }
    }

    // MARK: add_sess and joins

    mutating func addSession(_ name: String, session: String, address: HostAddress, mode: JoinMode?, token: AdminToken) {
        guard let p = clientPoolIndex(name) else { return fail(token, .ENOENT, "no client pool \(name); run join_pool first") }
        let pool = clientPools[p]
        guard pool.legIndex(session: session) == nil else { return fail(token, .EEXIST, "session \(session) already exists in pool \(name)") }
        guard !pool.legs.contains(where: { $0.address == address }) else {
            return fail(token, .EEXIST, "pool \(name) already has a session to \(address); only one session per storage node")
        }
        guard pool.legs.count < Limits.maxLegs else { return fail(token, .ENOSPC, "pool \(name) already has \(Limits.maxLegs) legs (the replication limit)") }
        if pool.isSync {
            guard mode == nil else { return fail(token, .EINVAL, "mode= is not used for a sync pool session") }
        } else {
            guard mode != nil else { return fail(token, .EINVAL, "an IO pool session needs mode=create or mode=assemble") }
            guard !(mode == .create && pool.members.isEmpty && pool.legs.contains { $0.mode == .assemble }) else {
                return fail(token, .EINVAL, "pool \(name) is being assembled; mode=create is for a new pool")
            }
        }
        var leg = Leg(session: session, address: address, isSync: pool.isSync)
        leg.mode = mode
        leg.joinInFlight = true
        leg.linkUp = isLinkUp(address)
        clientPools[p].legs.append(leg)
        emit(.transitioned(Transition(machine: .leg(pool: name, session: session), from: "-", to: LegState.created.rawValue, cause: cause, at: now)))
        adminDeadlines.append(AdminDeadline(token: token, deadline: now + Timing.commandTimeout, pool: name, session: session))
        emit(.connect(peer: address))
        if leg.linkUp { sendJoin(p, session: session, admin: token, rejoin: false) }
    }

    mutating func sendJoin(_ p: Int, session: String, admin: AdminToken?, rejoin: Bool) {
        guard let l = clientPools[p].legIndex(session: session) else { return }
        let pool = clientPools[p]
        let leg = pool.legs[l]
        let creating = leg.mode == .create && !rejoin
        let otherLegs = pool.legs.filter { $0.session != session && !$0.isSync && $0.member != 0 }
        let peers = pool.members.filter { $0 != leg.member }.map { m in
            PeerInfo(member: m, clientMapDirty: pool.mapIndex(m).map { !pool.maps[$0].isEmpty } ?? false)
        }
        let uuid = creating || pool.poolUUIDConfirmed ? pool.poolUUID : PoolUUID.none
        let request = JoinRequest(poolUUID: uuid, queueDepth: UInt32(pool.queueDepth), chunkBytes: pool.chunkBytes,
                                  create: creating, dirty: creating && !otherLegs.isEmpty, peers: creating ? peers : [],
                                  rejoin: rejoin, fromSyncPool: pool.isSync)
        clientPools[p].legs[l].joinInFlight = true
        sendRequest(.join(request), pool: pool.name, to: leg.address, kind: .join(session: session, admin: admin, rejoin: rejoin))
    }

    mutating func joinAnswered(pool name: String, session: String, admin: AdminToken?, rejoin: Bool, _ response: Response) {
        guard let p = clientPoolIndex(name), let l = clientPools[p].legIndex(session: session) else { return }
        clientPools[p].legs[l].joinInFlight = false
        guard case .joined(let reply) = response else {
            let errno: Errno
            if case .failed(let e) = response { errno = e } else { errno = .EIO }
            if rejoin { return }  // Stays FAILED; the recovery tick retries.
            removeLeg(p, l)
            if let admin { fail(admin, errno, "join refused by the node of \(session): \(errno)\(joinHint(errno))") }
            return
        }
        let pool = clientPools[p]
        if let other = pool.legIndex(member: reply.member), other != l {
            if !rejoin { removeLeg(p, l) }
            if let admin { fail(admin, .EEXIST, "member \(reply.member) already has a leg (\(pool.legs[other].session)) in pool \(name)") }
            return
        }
        if rejoin && pool.legs[l].member != 0 && pool.legs[l].member != reply.member {
            reject(.leg(pool: name, session: session), state: pool.legs[l].state.rawValue, input: "REJOIN reply",
                   reason: "node answered as member \(reply.member), expected \(pool.legs[l].member)")
            return
        }
        if !pool.isSync && reply.chunkBytes != 0 && reply.chunkBytes != pool.chunkBytes {
            if !rejoin { removeLeg(p, l) }
            if let admin { fail(admin, .EINVAL, "chunk_size \(pool.chunkBytes) differs from the node's \(reply.chunkBytes)") }
            return
        }
        if pool.mappedSectors == 0 {
            clientPools[p].mappedSectors = reply.mappedSectors
        } else if reply.mappedSectors != pool.mappedSectors && !pool.isSync {
            if !rejoin { removeLeg(p, l) }
            if let admin { fail(admin, .EINVAL, "mapped_size \(reply.mappedSectors) of member \(reply.member) differs from the pool's \(pool.mappedSectors)") }
            return
        }
        clientPools[p].legs[l].member = reply.member
        clientPools[p].legs[l].joinedOnServer = true
        if pool.isSync {
            if clientPools[p].chunkBytes != reply.chunkBytes && reply.chunkBytes != 0 { clientPools[p].chunkBytes = reply.chunkBytes }
            clientPools[p].mappedSectors = reply.mappedSectors
            switch clientPools[p].legs[l].state {
            case .created, .failed: moveLeg(pool: p, leg: l, to: .normal)
            case .normal, .reconnecting, .removing: break  // nothing to change
            }
            if let admin { completeAdmin(admin, .ok) }
            return
        }
        if rejoin {
            if clientPools[p].legs[l].leaveMaintenanceOnRejoin {
                clientPools[p].legs[l].leaveMaintenanceOnRejoin = false
                // FIFO on the link: it arrives before any MAP_READY of the recovery below.
                sendRequest(.leaveMaintenance, pool: name, to: pool.legs[l].address, kind: .fireAndForget)
            }
            // The node stays NO_IO until it gets a map update (notes §6.3).
            switch clientPools[p].legs[l].state {
            case .failed, .created: moveLeg(pool: p, leg: l, to: .reconnecting)
            case .normal, .reconnecting, .removing: break  // A duplicate or late answer.
            }
            sendPoolInfo(p, member: reply.member, op: .add, mode: .assemble, dirty: false)
            tryEnable(p)
            return
        }
        switch clientPools[p].legs[l].mode {
        case .create:
            let dirty = pool.legs.contains { $0.session != session && $0.member != 0 }
            clientPools[p].poolUUIDConfirmed = true
            clientPools[p].addMember(reply.member)
            clientPools[p].ensureMap(reply.member, allDirty: dirty, at: now)
            sendPoolInfo(p, member: reply.member, op: .add, mode: .create, dirty: dirty, except: reply.member)
            if let admin { completeAdmin(admin, .ok) }
        case .assemble:
            if clientPools[p].members.isEmpty {
                // First assembled leg: learn the pool's membership from the node (MD_SEND).
                sendRequest(.metadataRequest(full: true), pool: name, to: pool.legs[l].address,
                            kind: .readMetadata(session: session, admin: admin))
                return
            }
            finishAssemble(p, l, admin: admin)
        case nil:
            preconditionFailure("IO leg without a join mode")
        }
    }

    private func joinHint(_ errno: Errno) -> String {
        switch errno {
        case .ENODEV: return " (no store registered on the node)"
        case .ENOENT: return " (no server pool of that name on the node)"
        case .EINVAL: return " (the node refused the mode or chunk_size)"
        default: return ""
        }
    }

    mutating func metadataAnswered(pool name: String, session: String, admin: AdminToken?, _ response: Response) {
        guard let p = clientPoolIndex(name), let l = clientPools[p].legIndex(session: session) else { return }
        guard case .metadata(let md) = response else {
            removeLeg(p, l)
            if let admin { fail(admin, .EIO, "could not read the pool metadata from \(session)") }
            return
        }
        guard md.chunkBytes == 0 || md.chunkBytes == clientPools[p].chunkBytes else {
            removeLeg(p, l)
            if let admin { fail(admin, .EINVAL, "chunk_size \(clientPools[p].chunkBytes) differs from the pool's \(md.chunkBytes)") }
            return
        }
        clientPools[p].poolUUID = md.poolUUID
        clientPools[p].poolUUIDConfirmed = true
        clientPools[p].mapVersion = max(clientPools[p].mapVersion, MapVersion(raw: md.mapVersion.counter))
        clientPools[p].mappedSectors = md.mappedSectors
        for m in md.members {
            clientPools[p].addMember(m)
            clientPools[p].ensureMap(m, allDirty: false, at: now)
        }
        finishAssemble(p, l, admin: admin)
    }

    private mutating func finishAssemble(_ p: Int, _ l: Int, admin: AdminToken?) {
        let member = clientPools[p].legs[l].member
        guard clientPools[p].members.contains(member) else {
            let session = clientPools[p].legs[l].session
            removeLeg(p, l)
            if let admin { fail(admin, .EINVAL, "member \(member) (\(session)) is not a member of pool \(clientPools[p].name) (members: \(clientPools[p].members.map(String.init).joined(separator: " ")))") }
            return
        }
        moveLeg(pool: p, leg: l, to: .reconnecting)
        sendPoolInfo(p, member: member, op: .add, mode: .assemble, dirty: false, except: member)
        if let admin { completeAdmin(admin, .ok) }
        tryEnable(p)
    }

    mutating func sendPoolInfo(_ p: Int, member: MemberID, op: PoolInfoOperation, mode: PoolInfoMode, dirty: Bool, except: MemberID? = nil) {
        for leg in clientPools[p].legs where leg.member != 0 && leg.member != (except ?? member) {
            switch leg.state {
            case .created, .normal, .reconnecting:
                sendRequest(.poolInfo(member: member, operation: op, mode: mode, dirty: dirty), pool: clientPools[p].name,
                            to: leg.address, kind: .fireAndForget)
            case .failed, .removing:
                break  // Unreachable or leaving: it learns the membership at its next map update.
            }
        }
    }

    mutating func removeLeg(_ p: Int, _ l: Int) {
        let leg = clientPools[p].legs.remove(at: l)
        adminDeadlines.removeAll { $0.pool == clientPools[p].name && $0.session == leg.session }
        emit(.transitioned(Transition(machine: .leg(pool: clientPools[p].name, session: leg.session), from: leg.state.rawValue,
                                      to: "-", cause: cause, at: now)))
        if !clientPools.contains(where: { $0.legs.contains { $0.address == leg.address } }) {
            emit(.disconnect(peer: leg.address))
        }
    }

    // MARK: Links

    mutating func clientLinkUp(_ peer: HostAddress) {
        for p in clientPools.indices {
            for l in clientPools[p].legIndices(address: peer) {
                clientPools[p].legs[l].linkUp = true
                let leg = clientPools[p].legs[l]
                if leg.joinInFlight && leg.member == 0 && !leg.joinedOnServer {
                    // First connection of a new session: send its JOIN now.
                    let admin = adminDeadlines.first { $0.pool == clientPools[p].name && $0.session == leg.session }?.token
                    sendJoin(p, session: leg.session, admin: admin, rejoin: false)
                } else if leg.state == .failed && !leg.joinInFlight {
                    sendJoin(p, session: leg.session, admin: nil, rejoin: true)
                }
            }
        }
    }

    mutating func clientLinkDown(_ peer: HostAddress) {
        for p in clientPools.indices {
            for l in clientPools[p].legIndices(address: peer) {
                clientPools[p].legs[l].linkUp = false
                clientPools[p].legs[l].joinedOnServer = false
                clientPools[p].legs[l].joinInFlight = false
                switch clientPools[p].legs[l].state {
                case .created:
                    if clientPools[p].legs[l].member != 0 { moveLeg(pool: p, leg: l, to: .failed) }
                case .normal, .reconnecting:
                    moveLeg(pool: p, leg: l, to: .failed)
                case .failed, .removing:
                    break  // Already out of the IO path.
                }
                abortRecoveryIfInvolved(p, member: clientPools[p].legs[l].member)
            }
        }
    }

    // MARK: enable / maintenance

    mutating func sessionEnable(_ name: String, session: String, enable: Bool, token: AdminToken) {
        guard let p = clientPoolIndex(name) else { return fail(token, .ENOENT, "no client pool \(name)") }
        guard let l = clientPools[p].legIndex(session: session) else { return fail(token, .ENOENT, "no session \(session) in pool \(name)") }
        let leg = clientPools[p].legs[l]
        guard !leg.isSync else { return fail(token, .EINVAL, "\(session) is a sync session; it is enabled on join") }
        guard leg.member != 0 else { return fail(token, .EAGAIN, "\(session) has not joined yet") }
        if enable {
            if leg.maintenance && !leg.linkUp {
                // The node is unreachable: leave maintenance here; the node is told when it
                // rejoins, and it still gets a map update before any IO.
                clientPools[p].legs[l].maintenance = false
                clientPools[p].legs[l].leaveMaintenanceOnRejoin = true
                return completeAdmin(token, .ok)
            }
            if leg.maintenance {
                return sendRequest(.leaveMaintenance, pool: name, to: leg.address, kind: .enable(session: session, enable: true, admin: token))
            }
            if leg.state == .created {
                guard leg.linkUp else { return fail(token, .ENOTCONN, "\(session) is not connected") }
                if leg.state == .created && clientPools[p].inUse {
                    // Extending a pool whose device is mapped: the new store must pass the BRMR
                    // map (MAPPED) before it may serve IO, or its first IO would be refused.
                    return sendRequest(.user(.map(mappedSectors: clientPools[p].mappedSectors)), pool: name, to: leg.address,
                                       kind: .extendMap(session: session, admin: token))
                }
                return sendRequest(.enablePool(true), pool: name, to: leg.address, kind: .enable(session: session, enable: true, admin: token))
            }
            switch leg.state {
            case .normal: return completeAdmin(token, .ok)
            case .failed, .reconnecting:
                return fail(token, .EINVAL, "\(session) is \(leg.state); it returns to normal by itself after reconnect and a map update (pool_enable)")
            case .created, .removing:
                return fail(token, .EINVAL, "\(session) is \(leg.state)")
            }
        }
        guard leg.state == .normal, !leg.maintenance else {
            return fail(token, .EINVAL, "maintenance mode needs a normal leg; \(session) is \(leg.state)\(leg.maintenance ? " (already in maintenance)" : "")")
        }
        // Set maintenance: everyone must agree which IOs the leg got, so freeze and drain first.
        // A map spread this leg takes part in stops first (it is retried without it).
        abortRecoveryIfInvolved(p, member: leg.member)
        clientPools[p].mapVersion = clientPools[p].mapVersion.incremented()
        clientPools[p].legs[l].maintenance = true
        moveLeg(pool: p, leg: l, to: .reconnecting)
        freeze(p, for: .maintenance(session: session, token: token))
    }

    private mutating func maintenanceDrained(_ p: Int, session: String, token: AdminToken) {
        guard let l = clientPools[p].legIndex(session: session), clientPools[p].legs[l].linkUp else {
            unfreeze(p)
            return completeAdmin(token, .ok)  // The node is gone anyway; it rejoins in maintenance.
        }
        sendRequest(.enablePool(false), pool: clientPools[p].name, to: clientPools[p].legs[l].address,
                    kind: .enable(session: session, enable: false, admin: token))
    }

    mutating func enableAnswered(pool name: String, session: String, enable: Bool, admin: AdminToken?, _ response: Response) {
        guard let p = clientPoolIndex(name) else { return }
        guard let l = clientPools[p].legIndex(session: session) else {
            if !enable { unfreeze(p) }
            if let admin { fail(admin, .ENOENT, "session \(session) went away") }
            return
        }
        if !enable {
            unfreeze(p)
            if let admin { completeAdmin(admin, .ok) }  // Maintenance holds on the client either way.
            return
        }
        guard response.isOK else {
            if let admin { fail(admin, .EIO, "\(session) refused to enable") }
            return
        }
        if clientPools[p].legs[l].maintenance {
            clientPools[p].legs[l].maintenance = false
            if let admin { completeAdmin(admin, .ok) }
            tryEnable(p)
            return
        }
        if clientPools[p].legs[l].state == .created { moveLeg(pool: p, leg: l, to: .normal) }
        if let admin { completeAdmin(admin, .ok) }
    }

    mutating func extendMapAnswered(pool name: String, session: String, admin: AdminToken?, _ response: Response) {
        guard let p = clientPoolIndex(name), let l = clientPools[p].legIndex(session: session) else {
            if let admin { completeAdmin(admin, .failed(RMRError(.ENOENT, "session \(session) went away"))) }
            return
        }
        guard response.isOK else {
            if let admin { completeAdmin(admin, .failed(RMRError(.EIO, "\(session) refused the device map (mapped_size \(clientPools[p].mappedSectors))"))) }
            return
        }
        sendRequest(.enablePool(true), pool: name, to: clientPools[p].legs[l].address, kind: .enable(session: session, enable: true, admin: admin))
    }

    // MARK: del_sess / reconnect / leave

    mutating func deleteSession(_ name: String, session: String, mode: LeaveMode, token: AdminToken) {
        guard let p = clientPoolIndex(name) else { return fail(token, .ENOENT, "no client pool \(name)") }
        guard let l = clientPools[p].legIndex(session: session) else { return fail(token, .ENOENT, "no session \(session) in pool \(name)") }
        if clientPools[p].legs[l].state != .removing { moveLeg(pool: p, leg: l, to: .removing) }
        abortRecoveryIfInvolved(p, member: clientPools[p].legs[l].member)
        if clientPools[p].isSync {
            leaveDrained(p, session: session, mode: mode, token: token, frozen: false)
        } else {
            freeze(p, for: .leave(session: session, mode: mode, token: token))
        }
    }

    private mutating func leaveDrained(_ p: Int, session: String, mode: LeaveMode, token: AdminToken) {
        leaveDrained(p, session: session, mode: mode, token: token, frozen: true)
    }

    private mutating func leaveDrained(_ p: Int, session: String, mode: LeaveMode, token: AdminToken, frozen: Bool) {
        guard let l = clientPools[p].legIndex(session: session) else {
            if frozen { unfreeze(p) }
            return completeAdmin(token, .ok)
        }
        let leg = clientPools[p].legs[l]
        if leg.linkUp && leg.member != 0 && leg.joinedOnServer {
            sendRequest(.leave(member: leg.member, delete: mode == .delete, fromSyncPool: leg.isSync), pool: clientPools[p].name,
                        to: leg.address, kind: .leave(session: session, mode: mode, admin: token))
        } else {
            // The node is unreachable: finish locally; it finds no session when it returns.
            finishLeave(p, session: session, mode: mode, token: token)
        }
    }

    mutating func leaveAnswered(pool name: String, session: String, mode: LeaveMode, admin: AdminToken?, _ response: Response) {
        guard let p = clientPoolIndex(name), let admin else { return }
        finishLeave(p, session: session, mode: mode, token: admin)
    }

    private mutating func finishLeave(_ p: Int, session: String, mode: LeaveMode, token: AdminToken) {
        guard let l = clientPools[p].legIndex(session: session) else { return completeAdmin(token, .ok) }
        let leg = clientPools[p].legs[l]
        removeLeg(p, l)
        if !clientPools[p].isSync {
            if mode == .delete && leg.member != 0 {
                clientPools[p].members.removeAll { $0 == leg.member }
                clientPools[p].dropMap(leg.member)
                sendPoolInfo(p, member: leg.member, op: .remove, mode: .delete, dirty: false)
            } else if leg.member != 0 {
                sendPoolInfo(p, member: leg.member, op: .remove, mode: .disassemble, dirty: false)
            }
            if !clientPools[p].legs.contains(where: { !$0.isSync }) {
                // The last leg: maps and membership are rebuilt from the nodes at the next assemble.
                clientPools[p].members = []
                for m in clientPools[p].mapMembers { clientPools[p].dropMap(m) }
                clientPools[p].mappedSectors = 0
            }
            unfreeze(p)
        }
        completeAdmin(token, .ok)
    }

    mutating func reconnectSession(_ name: String, session: String, address: HostAddress, token: AdminToken) {
        guard let p = clientPoolIndex(name) else { return fail(token, .ENOENT, "no client pool \(name)") }
        guard let l = clientPools[p].legIndex(session: session) else { return fail(token, .ENOENT, "no session \(session) in pool \(name)") }
        let state = clientPools[p].legs[l].state
        guard state == .failed || (state == .created && !clientPools[p].legs[l].joinInFlight && clientPools[p].legs[l].member != 0) else {
            return fail(token, .EALREADY, "\(session) is \(state); reconnect is for a failed session")
        }
        if clientPools[p].legs[l].address != address {
            clientPools[p].legs[l].address = address
            clientPools[p].legs[l].linkUp = isLinkUp(address)
        }
        emit(.connect(peer: address))
        if clientPools[p].legs[l].linkUp && !clientPools[p].legs[l].joinInFlight {
            sendJoin(p, session: session, admin: nil, rejoin: true)
        }
        completeAdmin(token, .ok)
    }

    // MARK: brmr-client map_device / unmap_device (notes §8.5)

    mutating func mapDevice(_ name: String, sizeSectors: UInt64, token: AdminToken) {
        guard let p = clientPoolIndex(name) else { return fail(token, .ENOENT, "no client pool \(name)") }
        guard !clientPools[p].isSync else { return fail(token, .EINVAL, "pool \(name) is a sync pool; map the device on the compute client") }
        if let d = devices.first(where: { $0.pool == name }) { return fail(token, .EBUSY, "pool \(name) is already mapped as \(d.name)") }
        guard sizeSectors > 0 else { return fail(token, .EINVAL, "size must be positive") }
        guard clientPools[p].nonSyncNormalCount > 0 else {
            return fail(token, .EAGAIN, "pool \(name) has no normal leg (\(clientPools[p].legs.map { "\($0.session): \($0.state)" }.joined(separator: ", ")))")
        }
        let asked = clientPools[p].legs.filter { $0.state != .failed && $0.state != .removing && $0.member != 0 && $0.linkUp }
        let job = nextSerial()
        deviceJobs[job] = DeviceMapJob(pool: name, sizeSectors: sizeSectors, token: token, waitingOn: asked.map(\.member))
        for leg in asked {
            sendRequest(.user(.getParams), pool: name, to: leg.address, kind: .deviceParams(job: job, member: leg.member))
        }
    }

    mutating func deviceParamsAnswered(job id: UInt64, member: MemberID, _ response: Response) {
        guard var job = deviceJobs[id] else { return }
        job.waitingOn.removeAll { $0 == member }
        switch response {
        case .deviceParams(let mapped, let size):
            if size != job.sizeSectors { job.sizeMismatch = (member, size) }
            if mapped { job.mappedAnswers.append(member) } else { job.unmappedAnswers.append(member) }
        case .ok, .failed, .joined, .value, .data, .maps, .metadata, .chunksMarked:
            job.failures.append(member)
        }
        deviceJobs[id] = job
        guard job.waitingOn.isEmpty else { return }
        guard let p = clientPoolIndex(job.pool) else { deviceJobs[id] = nil; return fail(job.token, .ENOENT, "pool \(job.pool) went away") }
        if let (m, size) = job.sizeMismatch {
            deviceJobs[id] = nil
            return fail(job.token, .EINVAL, "size \(job.sizeSectors) does not match mapped_size \(size) of member \(m)")
        }
        if !job.mappedAnswers.isEmpty && !job.unmappedAnswers.isEmpty {
            // Mixed. The reference refuses because an unmapped leg may have missed IO. A leg that
            // is NORMAL here cannot have: it became NORMAL through a create-mode enable (fully
            // dirty) or a map update, so its dirty map covers everything it missed (a leg added
            // while the device was unmapped). Such legs are mapped now; any other is refused.
            let notNormal = job.unmappedAnswers.filter { m in
                guard let l = clientPools[p].legIndex(member: m) else { return true }
                return clientPools[p].legs[l].state != .normal
            }
            guard notNormal.isEmpty else {
                deviceJobs[id] = nil
                return fail(job.token, .EINVAL, "members \(job.mappedAnswers.map(String.init).joined(separator: " ")) are mapped but \(notNormal.map(String.init).joined(separator: " ")) are not and not normal; they may have missed IO")
            }
        }
        if !job.mappedAnswers.isEmpty && job.unmappedAnswers.isEmpty {
            // Re-map after a client restart: the mapped legs suffice.
            deviceJobs[id] = nil
            return createDevice(p, sizeSectors: job.sizeSectors, token: job.token)
        }
        if !job.mappedAnswers.isEmpty {
            job.sendingMap = true
            job.waitingOn = job.unmappedAnswers
            deviceJobs[id] = job
            for m in job.unmappedAnswers {
                let leg = clientPools[p].legs[clientPools[p].legIndex(member: m)!]
                sendRequest(.user(.map(mappedSectors: job.sizeSectors)), pool: job.pool, to: leg.address, kind: .deviceMap(job: id, member: m))
            }
            return
        }
        // First-time map: every leg must answer, then each records MAPPED.
        let missing = clientPools[p].legs.filter { !$0.isSync && ($0.member == 0 || !job.unmappedAnswers.contains($0.member)) }
        guard job.failures.isEmpty, missing.isEmpty else {
            deviceJobs[id] = nil
            return fail(job.token, .EIO, "first map needs every leg to answer; no answer from \((missing.map(\.session)).joined(separator: ", "))")
        }
        job.sendingMap = true
        job.waitingOn = job.unmappedAnswers
        deviceJobs[id] = job
        for m in job.unmappedAnswers {
            let leg = clientPools[p].legs[clientPools[p].legIndex(member: m)!]
            sendRequest(.user(.map(mappedSectors: job.sizeSectors)), pool: job.pool, to: leg.address, kind: .deviceMap(job: id, member: m))
        }
    }

    mutating func deviceMapAnswered(job id: UInt64, member: MemberID, _ response: Response) {
        guard var job = deviceJobs[id] else { return }
        job.waitingOn.removeAll { $0 == member }
        if !response.isOK { job.failures.append(member) }
        deviceJobs[id] = job
        guard job.waitingOn.isEmpty else { return }
        deviceJobs[id] = nil
        guard job.failures.isEmpty, let p = clientPoolIndex(job.pool) else {
            return fail(job.token, .EIO, "member(s) \(job.failures.map(String.init).joined(separator: " ")) refused the map")
        }
        createDevice(p, sizeSectors: job.sizeSectors, token: job.token)
    }

    private mutating func createDevice(_ p: Int, sizeSectors: UInt64, token: AdminToken) {
        var index = 0
        while devices.contains(where: { $0.name == "brmr\(index)" }) { index += 1 }
        let name = "brmr\(index)"
        devices.append(BlockDevice(name: name, pool: clientPools[p].name, state: .ready, sizeSectors: sizeSectors))
        clientPools[p].inUse = true
        emit(.transitioned(Transition(machine: .device(name), from: "-", to: DeviceState.ready.rawValue, cause: cause, at: now)))
        completeAdmin(token, .ok)
    }

    mutating func unmapDevice(_ name: String, token: AdminToken) {
        guard let d = devices.firstIndex(where: { $0.name == name }) else { return fail(token, .ENOENT, "no device \(name)") }
        let device = devices.remove(at: d)
        if let p = clientPoolIndex(device.pool) {
            clientPools[p].inUse = false
            failQueued(p)
            for leg in clientPools[p].legs where leg.state == .normal {
                sendRequest(.user(.unmap), pool: device.pool, to: leg.address, kind: .fireAndForget)
            }
        }
        emit(.transitioned(Transition(machine: .device(name), from: device.state.rawValue, to: "-", cause: cause, at: now)))
        completeAdmin(token, .ok)
    }
}
