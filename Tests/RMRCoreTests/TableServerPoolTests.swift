// Server pool (state × input) cells (style guide §4; notes §3.1, §4.3, §6). Each cell builds a
// storage node in a fixture state through real inputs (TableFixtures.swift), applies one input
// and checks the resulting state, whether the input was answered with success or failure, and
// whether a `.rejected` effect was emitted. Illegal cells expect a rejection.
//
// Expected values come from the notes. Where the core deliberately differs and says so, the
// cell follows the core and the comment says why; where the notes are silent, the comment gives
// the reasoning. Disagreements are left failing on purpose.
import Testing
@testable import RMRCore

/// The inputs of the server table.
enum TableServerInput: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// Non-sync JOIN_POOL create=1 from the client.
    case createJoin
    /// Non-sync JOIN_POOL create=0 (assemble) from the client.
    case assembleJoin
    /// REJOIN_POOL from the client.
    case rejoin
    /// JOIN_POOL from a peer's sync pool (a peer that has no session yet).
    case syncJoin
    case enable1
    case enable0
    case mapReady
    case mapBufDone
    case mapDone1
    case mapDisable
    case lastIOToMap
    /// Client IO (non-sync session).
    case ioWrite
    case ioRead
    /// IO from the peer's sync session (joined in the fixtures from REGISTERED on).
    case syncRead
    case syncWrite
    /// An IO write from a host that holds no session on the pool.
    case strangerWrite
    /// The transport loses the client.
    case linkDown
    /// LEAVE_POOL(member, disassemble) from the client.
    case leaveDisassemble
    /// brmr-server `remove_store`.
    case removeStore
    /// A whole map update: MAP_READY, MAP_BUF_DONE(newer version), MAP_DONE(enable 1); stops at
    /// the first failure.
    case mapUpdate

    var testDescription: String {
        switch self {
        case .createJoin: return "create-join"
        case .assembleJoin: return "assemble-join"
        case .rejoin: return "rejoin"
        case .syncJoin: return "sync-join"
        case .enable1: return "ENABLE_POOL(1)"
        case .enable0: return "ENABLE_POOL(0)"
        case .mapReady: return "MAP_READY"
        case .mapBufDone: return "MAP_BUF_DONE"
        case .mapDone1: return "MAP_DONE(1)"
        case .mapDisable: return "MAP_DISABLE"
        case .lastIOToMap: return "LAST_IO_TO_MAP"
        case .ioWrite: return "client IO write"
        case .ioRead: return "client IO read"
        case .syncRead: return "sync IO read"
        case .syncWrite: return "sync IO write"
        case .strangerWrite: return "IO write without a session"
        case .linkDown: return "client link down"
        case .leaveDisassemble: return "LEAVE_POOL(disassemble)"
        case .removeStore: return "remove_store"
        case .mapUpdate: return "map update (READY, BUF_DONE, DONE 1)"
        }
    }

    /// Applies the input to `bench`.
    func apply(to b: inout TableServerBench) -> TableOutcome {
        typealias B = TableServerBench
        switch self {
        case .createJoin: return b.request(B.join(create: true))
        case .assembleJoin: return b.request(B.join(create: false))
        case .rejoin: return b.request(B.join(create: false, rejoin: true))
        case .syncJoin: return b.request(B.join(create: false, sync: true), from: B.otherSyncPeer)
        case .enable1: return b.request(.enablePool(true))
        case .enable0: return b.request(.enablePool(false))
        case .mapReady: return b.request(.mapReady)
        case .mapBufDone: return b.request(.mapBufDone(MapVersion(raw: 9)))
        case .mapDone1: return b.request(.mapDone(enable: true))
        case .mapDisable: return b.request(.mapDisable)
        case .lastIOToMap: return b.request(.lastIOToMap)
        case .ioWrite: return b.request(B.io(.write))
        case .ioRead: return b.request(B.io(.read))
        case .syncRead: return b.request(B.io(.read), from: B.syncPeer)
        case .syncWrite: return b.request(B.io(.write), from: B.syncPeer)
        case .strangerWrite: return b.request(B.io(.write), from: B.stranger)
        case .linkDown: return b.event(.linkDown(peer: B.client))
        case .leaveDisassemble: return b.request(.leave(member: B.member, delete: false, fromSyncPool: false))
        case .removeStore: return b.admin(.removeStore(pool: tablePool))
        case .mapUpdate:
            var all = TableOutcome(answer: .ok, rejections: [], effects: [])
            for r in [Request.mapReady, .mapBufDone(MapVersion(raw: 9)), .mapDone(enable: true)] {
                let o = b.request(r)
                all.rejections += o.rejections
                all.effects += o.effects
                all.answer = o.answer
                if o.answer != .ok { break }
            }
            return all
        }
    }
}

/// How the node classifies an input (style rule 9).
enum TableVerdict: String, Sendable {
    /// Legal: no `.rejected` effect.
    case accepted
    /// A tolerated race (rule 9a): an `.ignored` effect, no `.rejected`.
    case ignored
    /// Illegal (rule 9b): a `.rejected` effect.
    case rejected
    /// Refused and flagged, as `.ignored` or `.rejected`: the sources do not settle which.
    case refused
}

/// Checks `outcome` against `verdict`.
func tableExpect(_ outcome: TableOutcome, _ verdict: TableVerdict, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    switch verdict {
    case .accepted:
        #expect(outcome.rejections.isEmpty, "\(what): unexpected rejection \(outcome.rejections)", sourceLocation: sourceLocation)
    case .ignored:
        #expect(outcome.rejections.isEmpty, "\(what): expected a tolerated race, got rejection \(outcome.rejections)", sourceLocation: sourceLocation)
        #expect(!outcome.ignored.isEmpty, "\(what): expected an .ignored effect", sourceLocation: sourceLocation)
    case .rejected:
        #expect(!outcome.rejections.isEmpty, "\(what): expected a .rejected effect (ignored: \(outcome.ignored))", sourceLocation: sourceLocation)
    case .refused:
        #expect(!outcome.rejections.isEmpty || !outcome.ignored.isEmpty, "\(what): expected .rejected or .ignored", sourceLocation: sourceLocation)
    }
}

struct TableServerCell: Sendable, CustomTestStringConvertible {
    var fixture: TableServerFixture
    var input: TableServerInput
    var state: ServerPoolState
    var answer: TableAnswer
    var verdict: TableVerdict
    /// The maintenance flag afterwards, where the cell is about it.
    var maintenance: Bool? = nil

    var testDescription: String { "\(fixture.testDescription) × \(input.testDescription)" }
}

private func cell(_ f: TableServerFixture, _ i: TableServerInput, _ s: ServerPoolState, _ a: TableAnswer,
                  _ v: TableVerdict, maintenance: Bool? = nil) -> TableServerCell {
    TableServerCell(fixture: f, input: i, state: s, answer: a, verdict: v, maintenance: maintenance)
}

enum TableServerTable {
    /// Every (fixture, input) cell. Read a row as: in this state, this input leaves the pool in
    /// that state, is answered so, and is accepted or rejected.
    static let cells: [TableServerCell] = emptyRow + registeredFreshRow + registeredAddedRow + createdRow
        + normalRow + noIORow + noIOMaintenanceRow

    // EMPTY: no store. Joins are all refused (§3.1); nothing but EMPTY → REGISTERED is legal, so
    // every input that would move the pool is refused and leaves it EMPTY.
    // In EMPTY and REGISTERED the client holds no session: the core looks the pool up on the
    // sender's session (§2.2, §4.3 step 1) and answers every non-join message from a peer
    // without one with ENOTCONN as a tolerated race (`.noSession`), changing nothing — so those
    // cells are `.refused` (ignored or rejected), including a retried LEAVE_POOL.
    static let emptyRow: [TableServerCell] = [
        // A first join (rejoin=0) comes from an operator's add_sess before create_store/add_store:
        // an illegal input (rule 9b).
        cell(.empty, .createJoin, .empty, .failed, .rejected),
        cell(.empty, .assembleJoin, .empty, .failed, .rejected),
        // A retained session rejoining before the operator re-added the store is a tolerated race
        // (core: `.joinRefusedNoStore`, Node+Server.swift). Core's choice.
        cell(.empty, .rejoin, .empty, .failed, .ignored),
        cell(.empty, .syncJoin, .empty, .failed, .rejected),
        cell(.empty, .enable1, .empty, .failed, .refused),
        cell(.empty, .enable0, .empty, .failed, .refused),
        cell(.empty, .mapReady, .empty, .failed, .refused),
        cell(.empty, .mapBufDone, .empty, .failed, .refused),
        cell(.empty, .mapDone1, .empty, .failed, .refused),
        // MAP_DISABLE means "→ NO_IO", and EMPTY → NO_IO is illegal ("rejected with a warning in
        // code", §3.1): a rejection, the pool stays EMPTY.
        cell(.empty, .mapDisable, .empty, .failed, .refused),
        cell(.empty, .lastIOToMap, .empty, .failed, .refused),
        // Refused; no session can exist here (joins are refused), so every IO comes from a host
        // without a session (see REGISTERED), and EMPTY → NO_IO is illegal anyway.
        cell(.empty, .ioWrite, .empty, .failed, .refused),
        cell(.empty, .ioRead, .empty, .failed, .refused),
        cell(.empty, .syncRead, .empty, .failed, .refused),
        cell(.empty, .syncWrite, .empty, .failed, .refused),
        cell(.empty, .strangerWrite, .empty, .failed, .refused),
        cell(.empty, .linkDown, .empty, .none, .accepted),
        // Notes silent. A retried LEAVE_POOL (the del_sess handler is idempotent, §6.9) may reach a
        // node that already left and lost its store: answered OK, nothing to do.
        cell(.empty, .leaveDisassemble, .empty, .failed, .refused),
        // No store to remove: an operator's illegal command, a typed rejection (style rule 9b).
        cell(.empty, .removeStore, .empty, .failed, .rejected),
        cell(.empty, .mapUpdate, .empty, .failed, .refused),
    ]

    // REGISTERED after create_store: marked_create, only the first create-mode join is accepted.
    static let registeredFreshRow: [TableServerCell] = [
        cell(.registeredFresh, .createJoin, .created, .ok, .accepted),
        // "create-registered: assemble and sync rejected" (docs); the code agrees for non-sync.
        cell(.registeredFresh, .assembleJoin, .registered, .failed, .rejected),
        cell(.registeredFresh, .rejoin, .registered, .failed, .rejected),
        // Docs reject sync joins here, the reference code accepts them (§3.1 table) and the
        // guide's bring-up needs sync pools on fresh stores; we follow the code.
        cell(.registeredFresh, .syncJoin, .registered, .ok, .accepted),
        cell(.registeredFresh, .enable1, .registered, .failed, .refused),
        cell(.registeredFresh, .enable0, .registered, .failed, .refused),
        cell(.registeredFresh, .mapReady, .registered, .failed, .refused),
        cell(.registeredFresh, .mapBufDone, .registered, .failed, .refused),
        cell(.registeredFresh, .mapDone1, .registered, .failed, .refused),
        // §3.1 lumps MAP_DISABLE into the NORMAL/CREATED/REGISTERED → NO_IO triggers, but
        // REGISTERED has no client session, so no map update can have started here; the core
        // refuses it ("no client session", Node+ServerMaps.swift), consistent with the per-session
        // lookup of §2.2. Core's choice.
        cell(.registeredFresh, .mapDisable, .registered, .failed, .refused),
        cell(.registeredFresh, .lastIOToMap, .registered, .failed, .refused),
        // §3.1 lists REGISTERED → NO_IO for refused IO, but in REGISTERED the client holds no
        // session, and the server looks the pool up "by group_id on this RTRS session" (§2.2,
        // §4.3 step 1): IO from a host without a session finds no pool and changes nothing.
        // (In the reference, REGISTERED only sees IO on sync sessions.) Whether that refusal is
        // a race or illegal the sources do not say.
        cell(.registeredFresh, .ioWrite, .registered, .failed, .refused),
        cell(.registeredFresh, .ioRead, .registered, .failed, .refused),
        // Sync IO: the core drives NO_IO only for IO refused to *its client* (Node+ServerIO.swift,
        // `toNoIO: !isSync` / `toNoIO: false`): a peer's refused sync IO is routine (§4.3 step 3
        // refuses sync reads of dirty chunks without leaving NORMAL). We follow the core, which
        // counts a sync read reaching a pool that does not serve as a tolerated race.
        cell(.registeredFresh, .syncRead, .registered, .failed, .ignored),
        // "A write arriving on a sync session" is style rule 9b's own example of an illegal
        // input, in any state.
        cell(.registeredFresh, .syncWrite, .registered, .failed, .rejected),
        cell(.registeredFresh, .strangerWrite, .registered, .failed, .refused),
        cell(.registeredFresh, .linkDown, .registered, .none, .accepted),
        // Notes: LEAVE_POOL passes through NO_IO and ends REGISTERED while the store is attached.
        cell(.registeredFresh, .leaveDisassemble, .registered, .failed, .refused),
        cell(.registeredFresh, .removeStore, .empty, .ok, .accepted),
        cell(.registeredFresh, .mapUpdate, .registered, .failed, .refused),
    ]

    // REGISTERED after add_store mode=add (a rebooted node): assemble / rejoin / sync, never create.
    static let registeredAddedRow: [TableServerCell] = [
        cell(.registeredAdded, .createJoin, .registered, .failed, .rejected),
        cell(.registeredAdded, .assembleJoin, .noIO, .ok, .accepted),
        cell(.registeredAdded, .rejoin, .noIO, .ok, .accepted),
        cell(.registeredAdded, .syncJoin, .registered, .ok, .accepted),
        cell(.registeredAdded, .enable1, .registered, .failed, .refused),
        cell(.registeredAdded, .enable0, .registered, .failed, .refused),
        cell(.registeredAdded, .mapReady, .registered, .failed, .refused),
        cell(.registeredAdded, .mapBufDone, .registered, .failed, .refused),
        cell(.registeredAdded, .mapDone1, .registered, .failed, .refused),
        cell(.registeredAdded, .mapDisable, .registered, .failed, .refused),  // core's choice, see above
        cell(.registeredAdded, .lastIOToMap, .registered, .failed, .refused),
        cell(.registeredAdded, .ioWrite, .registered, .failed, .refused),  // no session, see above
        cell(.registeredAdded, .ioRead, .registered, .failed, .refused),
        cell(.registeredAdded, .syncRead, .registered, .failed, .ignored),   // core's choice, see above
        cell(.registeredAdded, .syncWrite, .registered, .failed, .rejected),
        cell(.registeredAdded, .strangerWrite, .registered, .failed, .refused),
        cell(.registeredAdded, .linkDown, .registered, .none, .accepted),
        cell(.registeredAdded, .leaveDisassemble, .registered, .failed, .refused),
        cell(.registeredAdded, .removeStore, .empty, .ok, .accepted),
        cell(.registeredAdded, .mapUpdate, .registered, .failed, .refused),
    ]

    // CREATED: waits for ENABLE_POOL(1); serves no IO.
    static let createdRow: [TableServerCell] = [
        // marked_create is spent by the first create join.
        cell(.created, .createJoin, .created, .failed, .rejected),
        // "assemble/rejoin → NO_IO" (§6.2, §6.3); CREATED → NO_IO is legal.
        cell(.created, .assembleJoin, .noIO, .ok, .accepted),
        cell(.created, .rejoin, .noIO, .ok, .accepted),
        cell(.created, .syncJoin, .created, .ok, .accepted),
        cell(.created, .enable1, .normal, .ok, .accepted),
        // Maintenance needs NORMAL or NO_IO (§6.8).
        cell(.created, .enable0, .created, .failed, .rejected),
        // MAP_READY accepts NO_IO or CREATED (§6.4; CREATED "for extend").
        cell(.created, .mapReady, .created, .ok, .accepted),
        cell(.created, .mapBufDone, .created, .failed, .rejected),
        cell(.created, .mapDone1, .created, .failed, .rejected),
        cell(.created, .mapDisable, .noIO, .ok, .accepted),
        cell(.created, .lastIOToMap, .created, .failed, .rejected),
        // The client's IO reaching a pool that does not serve: refused, NO_IO (§4.3); the core
        // counts it a tolerated race ("the sender could not know yet"), rule 9a.
        cell(.created, .ioWrite, .noIO, .failed, .ignored),
        cell(.created, .ioRead, .noIO, .failed, .ignored),
        cell(.created, .syncRead, .created, .failed, .ignored),   // core's choice, see REGISTERED
        cell(.created, .syncWrite, .created, .failed, .rejected),
        // No session: no pool found, nothing changes (see REGISTERED).
        cell(.created, .strangerWrite, .created, .failed, .refused),
        cell(.created, .linkDown, .noIO, .none, .accepted),
        cell(.created, .leaveDisassemble, .registered, .ok, .accepted),
        // The client's session remains: NO_IO (CREATED → EMPTY directly is illegal).
        cell(.created, .removeStore, .noIO, .ok, .accepted),
        // The extend path: a map transfer into a CREATED node ends NORMAL.
        cell(.created, .mapUpdate, .normal, .ok, .accepted),
    ]

    static let normalRow: [TableServerCell] = [
        cell(.normal, .createJoin, .normal, .failed, .rejected),
        // A rejoin (or assemble) forces NO_IO until a map update (§6.3).
        cell(.normal, .assembleJoin, .noIO, .ok, .accepted),
        cell(.normal, .rejoin, .noIO, .ok, .accepted),
        cell(.normal, .syncJoin, .normal, .ok, .accepted),
        // Notes silent; the core answers a repeated enable OK ("Idempotent: a retried enable").
        cell(.normal, .enable1, .normal, .ok, .accepted),
        cell(.normal, .enable0, .noIO, .ok, .accepted, maintenance: true),
        // The reference refuses MAP_READY in NORMAL; the core accepts it and stops serving first
        // (a client that failed the leg without the node noticing gives it a map; fuzz seed 37,
        // Node+ServerMaps.swift). Core's choice.
        cell(.normal, .mapReady, .noIO, .ok, .accepted),
        cell(.normal, .mapBufDone, .normal, .failed, .rejected),
        cell(.normal, .mapDone1, .normal, .failed, .rejected),
        cell(.normal, .mapDisable, .noIO, .ok, .accepted),
        cell(.normal, .lastIOToMap, .normal, .failed, .rejected),
        cell(.normal, .ioWrite, .normal, .ok, .accepted),
        cell(.normal, .ioRead, .normal, .ok, .accepted),
        cell(.normal, .syncRead, .normal, .ok, .accepted),
        // Notes §3.1 name "write from sync peer" among the refusals that drive NO_IO; the core
        // refuses it with `toNoIO: false` (see REGISTERED). We follow the core on the state.
        cell(.normal, .syncWrite, .normal, .failed, .rejected),
        // A host that never joined must not write to the store (§4.3 step 1: per-session lookup).
        cell(.normal, .strangerWrite, .normal, .failed, .refused),
        cell(.normal, .linkDown, .noIO, .none, .accepted),
        cell(.normal, .leaveDisassemble, .registered, .ok, .accepted),
        cell(.normal, .removeStore, .noIO, .ok, .accepted),
        cell(.normal, .mapUpdate, .normal, .ok, .accepted),
    ]

    static let noIORow: [TableServerCell] = [
        cell(.noIO, .createJoin, .noIO, .failed, .rejected),
        cell(.noIO, .assembleJoin, .noIO, .ok, .accepted),
        cell(.noIO, .rejoin, .noIO, .ok, .accepted),
        cell(.noIO, .syncJoin, .noIO, .ok, .accepted),
        // The was_last_authoritative case (§6.5 Case 2): direct enable without a map transfer.
        cell(.noIO, .enable1, .normal, .ok, .accepted),
        cell(.noIO, .enable0, .noIO, .ok, .accepted, maintenance: true),
        cell(.noIO, .mapReady, .noIO, .ok, .accepted),
        cell(.noIO, .mapBufDone, .noIO, .failed, .rejected),
        cell(.noIO, .mapDone1, .noIO, .failed, .rejected),
        cell(.noIO, .mapDisable, .noIO, .ok, .accepted),
        cell(.noIO, .lastIOToMap, .noIO, .ok, .accepted),
        cell(.noIO, .ioWrite, .noIO, .failed, .ignored),
        cell(.noIO, .ioRead, .noIO, .failed, .ignored),
        cell(.noIO, .syncRead, .noIO, .failed, .ignored),
        cell(.noIO, .syncWrite, .noIO, .failed, .rejected),
        cell(.noIO, .strangerWrite, .noIO, .failed, .refused),
        cell(.noIO, .linkDown, .noIO, .none, .accepted),
        cell(.noIO, .leaveDisassemble, .registered, .ok, .accepted),
        cell(.noIO, .removeStore, .noIO, .ok, .accepted),
        cell(.noIO, .mapUpdate, .normal, .ok, .accepted),
    ]

    // NO_IO in maintenance: management messages allowed, map updates not (§6.8).
    static let noIOMaintenanceRow: [TableServerCell] = [
        cell(.noIOMaintenance, .createJoin, .noIO, .failed, .rejected),
        cell(.noIOMaintenance, .assembleJoin, .noIO, .ok, .accepted, maintenance: true),
        cell(.noIOMaintenance, .rejoin, .noIO, .ok, .accepted, maintenance: true),
        cell(.noIOMaintenance, .syncJoin, .noIO, .ok, .accepted),
        // Unset: the server clears the flag and stays NO_IO until a map update (§6.8).
        cell(.noIOMaintenance, .enable1, .noIO, .ok, .accepted, maintenance: false),
        cell(.noIOMaintenance, .enable0, .noIO, .ok, .accepted, maintenance: true),
        cell(.noIOMaintenance, .mapReady, .noIO, .failed, .rejected, maintenance: true),
        cell(.noIOMaintenance, .mapBufDone, .noIO, .failed, .rejected),
        cell(.noIOMaintenance, .mapDone1, .noIO, .failed, .rejected),
        cell(.noIOMaintenance, .mapDisable, .noIO, .ok, .accepted),
        // Notes forbid map *updates* (the MAP_READY handshake) in maintenance; the client never
        // sends LAST_IO_TO_MAP to a maintenance leg, and the server does not refuse it. Core's choice.
        cell(.noIOMaintenance, .lastIOToMap, .noIO, .ok, .accepted),
        cell(.noIOMaintenance, .ioWrite, .noIO, .failed, .ignored),
        cell(.noIOMaintenance, .ioRead, .noIO, .failed, .ignored),
        cell(.noIOMaintenance, .syncRead, .noIO, .failed, .ignored),
        cell(.noIOMaintenance, .syncWrite, .noIO, .failed, .rejected),
        cell(.noIOMaintenance, .strangerWrite, .noIO, .failed, .refused),
        cell(.noIOMaintenance, .linkDown, .noIO, .none, .accepted, maintenance: true),
        cell(.noIOMaintenance, .leaveDisassemble, .registered, .ok, .accepted),
        cell(.noIOMaintenance, .removeStore, .noIO, .ok, .accepted),
        cell(.noIOMaintenance, .mapUpdate, .noIO, .failed, .rejected),
    ]
}

// MARK: - Map-update sub-state (DISABLED → READY → DONE → DISABLED, notes §3.1, §6.4)

enum TableMapFixture: String, CaseIterable, Sendable {
    case disabled, ready, done
    var subState: MapUpdateState {
        switch self {
        case .disabled: return .disabled
        case .ready: return .ready
        case .done: return .done
        }
    }
}

enum TableMapInput: String, CaseIterable, Sendable {
    case mapReady
    /// MAP_BUF_DONE with a version above the node's.
    case bufDoneNewer
    /// MAP_BUF_DONE with a version below the node's: "R rejects if version < its own map_ver".
    case bufDoneOlder
    case mapDone1
    case mapDone0
    case mapDisable

    var request: Request {
        switch self {
        case .mapReady: return .mapReady
        case .bufDoneNewer: return .mapBufDone(MapVersion(raw: 50))
        case .bufDoneOlder: return .mapBufDone(MapVersion(raw: 0))
        case .mapDone1: return .mapDone(enable: true)
        case .mapDone0: return .mapDone(enable: false)
        case .mapDisable: return .mapDisable
        }
    }
}

struct TableMapCell: Sendable, CustomTestStringConvertible {
    var fixture: TableMapFixture
    var input: TableMapInput
    var state: ServerPoolState
    var subState: MapUpdateState
    var answer: TableAnswer
    var verdict: TableVerdict
    var testDescription: String { "NO_IO/\(fixture.rawValue.uppercased()) × \(input.rawValue)" }
}

enum TableMapTable {
    private static func m(_ f: TableMapFixture, _ i: TableMapInput, _ s: ServerPoolState, _ u: MapUpdateState,
                          _ a: TableAnswer, _ v: TableVerdict) -> TableMapCell {
        TableMapCell(fixture: f, input: i, state: s, subState: u, answer: a, verdict: v)
    }

    static let cells: [TableMapCell] = [
        m(.disabled, .mapReady, .noIO, .ready, .ok, .accepted),
        m(.disabled, .bufDoneNewer, .noIO, .disabled, .failed, .rejected),
        m(.disabled, .bufDoneOlder, .noIO, .disabled, .failed, .rejected),
        m(.disabled, .mapDone1, .noIO, .disabled, .failed, .rejected),
        m(.disabled, .mapDone0, .noIO, .disabled, .failed, .rejected),
        m(.disabled, .mapDisable, .noIO, .disabled, .ok, .accepted),
        // The reference wants DISABLED for MAP_READY; the core accepts READY/DONE too so a node
        // whose client crashed mid-spread can take a map again (Node+ServerMaps.swift). Core's choice.
        m(.ready, .mapReady, .noIO, .ready, .ok, .accepted),
        m(.ready, .bufDoneNewer, .noIO, .done, .ok, .accepted),
        // Notes silent on the sub-state after a stale MAP_BUF_DONE; the client then aborts with
        // MAP_DISABLE, which ends in DISABLED, and the core resets at once.
        m(.ready, .bufDoneOlder, .noIO, .disabled, .failed, .rejected),
        m(.ready, .mapDone1, .noIO, .ready, .failed, .rejected),
        m(.ready, .mapDone0, .noIO, .ready, .failed, .rejected),
        m(.ready, .mapDisable, .noIO, .disabled, .ok, .accepted),
        m(.done, .mapReady, .noIO, .ready, .ok, .accepted),  // core's choice, as above
        m(.done, .bufDoneNewer, .noIO, .done, .failed, .rejected),
        m(.done, .bufDoneOlder, .noIO, .done, .failed, .rejected),
        m(.done, .mapDone1, .normal, .disabled, .ok, .accepted),
        // enable=0 distributes a map without admitting the node (last-IO baseline, §6.4).
        m(.done, .mapDone0, .noIO, .disabled, .ok, .accepted),
        m(.done, .mapDisable, .noIO, .disabled, .ok, .accepted),
    ]
}

// MARK: - Tests

@Suite("Table: server pool cells")
struct TableServerPoolTests {
    @Test("fixture reaches its state", arguments: TableServerFixture.allCases)
    func fixture(_ f: TableServerFixture) throws {
        let b = try tableServerBench(f)
        #expect(b.state == f.state)
        #expect(try serverNode(in: f.state).serverPool(tablePool)?.state == f.state)
    }

    @Test("cell", arguments: TableServerTable.cells)
    func serverCell(_ c: TableServerCell) throws {
        var b = try tableServerBench(c.fixture)
        let outcome = c.input.apply(to: &b)
        let what = c.testDescription
        #expect(b.state == c.state, "\(what): state")
        #expect(outcome.answer == c.answer, "\(what): answer")
        tableExpect(outcome, c.verdict, what)
        if let mm = c.maintenance {
            #expect(b.view?.maintenance == mm, "\(what): maintenance flag")
        }
    }

    @Test("table covers every state × input exactly once")
    func coverage() {
        // Every state has a fixture, and every fixture a full row.
        for s in ServerPoolState.allCases {
            #expect(TableServerFixture.allCases.contains { $0.state == s }, "no fixture for \(s)")
            #expect(TableServerFixture.canonical(s).state == s)
        }
        let keys = TableServerTable.cells.map { "\($0.fixture.rawValue)/\($0.input.rawValue)" }
        #expect(Set(keys).count == keys.count, "a cell is listed twice")
        for f in TableServerFixture.allCases {
            for i in TableServerInput.allCases {
                #expect(keys.contains("\(f.rawValue)/\(i.rawValue)"), "missing cell \(f) × \(i)")
            }
        }
        #expect(TableServerTable.cells.count == TableServerFixture.allCases.count * TableServerInput.allCases.count)
        #expect(Set(TableServerFixture.allCases.map(\.state)) == Set(ServerPoolState.allCases))
    }

    @Test("map-update sub-state cell", arguments: TableMapTable.cells)
    func mapCell(_ c: TableMapCell) throws {
        var b = try tableServerBench(.noIO)
        switch c.fixture {
        case .disabled:
            break
        case .ready:
            try #require(b.request(.mapReady).answer == .ok)
        case .done:
            try #require(b.request(.mapReady).answer == .ok)
            try #require(b.request(.mapBufDone(MapVersion(raw: 5))).answer == .ok)
        }
        try #require(b.view?.mapUpdate == c.fixture.subState)
        let outcome = b.request(c.input.request)
        let what = c.testDescription
        #expect(b.state == c.state, "\(what): state")
        #expect(b.view?.mapUpdate == c.subState, "\(what): map update sub-state")
        #expect(outcome.answer == c.answer, "\(what): answer")
        tableExpect(outcome, c.verdict, what)
    }

    @Test("map-update table covers every sub-state × input")
    func mapCoverage() {
        let keys = Set(TableMapTable.cells.map { "\($0.fixture.rawValue)/\($0.input.rawValue)" })
        #expect(keys.count == TableMapTable.cells.count)
        #expect(keys.count == TableMapFixture.allCases.count * TableMapInput.allCases.count)
        #expect(Set(TableMapFixture.allCases.map(\.subState)) == Set(MapUpdateState.allCases))
    }
}
