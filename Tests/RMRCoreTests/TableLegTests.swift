// Client leg (state × input) cells (style guide §4; notes §3.2, §6.3, §6.5, §6.8, §6.9). Each
// cell brings up a client and two storage nodes, holds the client's leg to stg1 (or stg0's sync
// leg to stg1) in a fixture state (TableFixtures.swift), applies one input, lets the cluster
// settle for a few recovery ticks, and checks the leg's state and the admin command's result.
import Testing
@testable import RMRCore

enum TableLegInput: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// The transport loses the leg's node (the link is cut and stays cut).
    case linkDown
    /// The link is restored (RTRS reconnect): a FAILED leg rejoins.
    case linkUp
    case enable1
    case enable0
    /// `del_sess mode=disassemble`.
    case delSess
    /// `reconnect path=ip:<same address>`.
    case reconnect
    /// `pool_enable` (manual try_enable).
    case poolEnable

    var testDescription: String {
        switch self {
        case .linkDown: return "link down"
        case .linkUp: return "link up"
        case .enable1: return "enable 1"
        case .enable0: return "enable 0"
        case .delSess: return "del_sess"
        case .reconnect: return "reconnect"
        case .poolEnable: return "pool_enable"
        }
    }

    var isAdmin: Bool { self != .linkDown && self != .linkUp }

    func command(_ f: TableLegFixture) -> AdminCommand? {
        switch self {
        case .linkDown, .linkUp: return nil
        case .enable1: return .sessionEnable(pool: tablePool, session: f.session, enable: true)
        case .enable0: return .sessionEnable(pool: tablePool, session: f.session, enable: false)
        case .delSess: return .deleteSession(pool: tablePool, session: f.session, mode: .disassemble)
        case .reconnect: return .reconnectSession(pool: tablePool, session: f.session, address: f.peerAddress)
        case .poolEnable: return .poolEnable(pool: tablePool)
        }
    }
}

/// What an admin write answered.
enum TableAdminAnswer: Sendable, Hashable, CustomStringConvertible {
    /// No admin command (a link event).
    case none
    case ok
    case errno(Errno)

    init(_ r: AdminResult) {
        switch r {
        case .ok: self = .ok
        case .failed(let e): self = .errno(e.code)
        }
    }

    var description: String {
        switch self {
        case .none: return "none"
        case .ok: return "ok"
        case .errno(let e): return "\(e)"
        }
    }
}

struct TableLegCell: Sendable, CustomTestStringConvertible {
    var fixture: TableLegFixture
    var input: TableLegInput
    /// The leg's state once the cluster settled; nil when the leg is gone (deleted).
    var state: LegState?
    var admin: TableAdminAnswer
    /// The maintenance flag afterwards, where the cell is about it.
    var maintenance: Bool? = nil
    /// The leg's transitions caused by the input, where the cell is about the path.
    var path: [LegState]? = nil

    var testDescription: String { "\(fixture.testDescription) × \(input.testDescription)" }
}

private func leg(_ f: TableLegFixture, _ i: TableLegInput, _ s: LegState?, _ a: TableAdminAnswer,
                 maintenance: Bool? = nil, path: [LegState]? = nil) -> TableLegCell {
    TableLegCell(fixture: f, input: i, state: s, admin: a, maintenance: maintenance, path: path)
}

enum TableLegTable {
    static let cells: [TableLegCell] = [
        // CREATED (stg0's leg NORMAL beside it).
        leg(.created, .linkDown, .failed, .none),                  // CREATED → FAILED on a link event
        leg(.created, .linkUp, .created, .none),                   // link already up: nothing happens
        leg(.created, .enable1, .normal, .ok, path: [.normal]),    // the create flow
        leg(.created, .enable0, .created, .errno(.EINVAL)),        // maintenance needs a NORMAL leg
        leg(.created, .delSess, nil, .ok),
        // Notes §3.2: CREATED → RECONNECTING is triggered by "non-sync assemble or reconnect".
        // The reconnect sends REJOIN_POOL (§6.3); with stg0 NORMAL, try_enable Case 1 then
        // spreads stg0's map and the leg ends NORMAL.
        leg(.created, .reconnect, .normal, .ok, path: [.reconnecting, .normal]),
        leg(.created, .poolEnable, .created, .ok),                 // no RECONNECTING leg: nothing to do

        leg(.normal, .linkDown, .failed, .none),
        leg(.normal, .linkUp, .normal, .none),
        // Notes silent (enable 1 is for CREATED legs and leaving maintenance); the core answers
        // a repeated enable OK.
        leg(.normal, .enable1, .normal, .ok),
        leg(.normal, .enable0, .reconnecting, .ok, maintenance: true, path: [.reconnecting]),
        leg(.normal, .delSess, nil, .ok),
        // Notes give reconnect as a trigger only from CREATED / FAILED; the core refuses it on a
        // connected leg.
        leg(.normal, .reconnect, .normal, .errno(.EALREADY)),
        leg(.normal, .poolEnable, .normal, .ok),

        // FAILED (link cut).
        leg(.failed, .linkDown, .failed, .none),
        // Non-sync FAILED → NORMAL is illegal: rejoin → RECONNECTING, map update → NORMAL.
        leg(.failed, .linkUp, .normal, .none, path: [.reconnecting, .normal]),
        // "An operator's enable on a FAILED non-sync leg" is illegal (style rule 9b).
        leg(.failed, .enable1, .failed, .errno(.EINVAL)),
        leg(.failed, .enable0, .failed, .errno(.EINVAL)),
        leg(.failed, .delSess, nil, .ok),
        // Accepted; the node is still unreachable, so the leg stays FAILED.
        leg(.failed, .reconnect, .failed, .ok),
        leg(.failed, .poolEnable, .failed, .ok),

        // RECONNECTING, waiting for the FAILED last-authoritative leg (try_enable cannot run).
        leg(.reconnecting, .linkDown, .failed, .none),
        leg(.reconnecting, .linkUp, .reconnecting, .none),
        // RECONNECTING → NORMAL only through try_enable.
        leg(.reconnecting, .enable1, .reconnecting, .errno(.EINVAL)),
        leg(.reconnecting, .enable0, .reconnecting, .errno(.EINVAL)),
        leg(.reconnecting, .delSess, nil, .ok),
        leg(.reconnecting, .reconnect, .reconnecting, .errno(.EALREADY)),
        // "Otherwise … do nothing; wait for the next call" (§6.5). The core answers EAGAIN
        // naming the missing member (documented in Node+Recovery.swift).
        leg(.reconnecting, .poolEnable, .reconnecting, .errno(.EAGAIN)),

        // RECONNECTING in maintenance.
        leg(.maintenance, .linkDown, .failed, .none, maintenance: true),
        leg(.maintenance, .linkUp, .reconnecting, .none, maintenance: true),
        // Unset: ENABLE_POOL(1), then try_enable's map update brings the leg back (§6.8).
        leg(.maintenance, .enable1, .normal, .ok, maintenance: false, path: [.normal]),
        leg(.maintenance, .enable0, .reconnecting, .errno(.EINVAL), maintenance: true),
        leg(.maintenance, .delSess, nil, .ok),
        leg(.maintenance, .reconnect, .reconnecting, .errno(.EALREADY), maintenance: true),
        // Maintenance legs are excluded from recovery: nothing to do.
        leg(.maintenance, .poolEnable, .reconnecting, .ok, maintenance: true),

        // Sync legs: NORMAL right after join, never RECONNECTING; no enable or pool_enable.
        leg(.syncNormal, .linkDown, .failed, .none),
        leg(.syncNormal, .linkUp, .normal, .none),
        leg(.syncNormal, .enable1, .normal, .errno(.EINVAL)),
        leg(.syncNormal, .enable0, .normal, .errno(.EINVAL)),
        leg(.syncNormal, .delSess, nil, .ok),
        leg(.syncNormal, .reconnect, .normal, .errno(.EALREADY)),
        leg(.syncNormal, .poolEnable, .normal, .errno(.EINVAL)),

        leg(.syncFailed, .linkDown, .failed, .none),
        // Sync FAILED → NORMAL directly on reconnect (§2.6, §3.2).
        leg(.syncFailed, .linkUp, .normal, .none, path: [.normal]),
        leg(.syncFailed, .enable1, .failed, .errno(.EINVAL)),
        leg(.syncFailed, .enable0, .failed, .errno(.EINVAL)),
        leg(.syncFailed, .delSess, nil, .ok),
        leg(.syncFailed, .reconnect, .failed, .ok),
        leg(.syncFailed, .poolEnable, .failed, .errno(.EINVAL)),
    ]
}

@Suite("Table: leg cells")
struct TableLegTests {
    /// Applies the cell's input and lets the cluster settle; returns the admin answer and the
    /// leg transitions and rejections it caused.
    static func run(_ c: TestCluster, _ f: TableLegFixture, _ input: TableLegInput)
        -> (admin: TableAdminAnswer, path: [LegState], rejections: [Rejection]) {
        let transitionsBefore = c.transitions.count
        let rejectionsBefore = c.rejections.count
        var answer = TableAdminAnswer.none
        switch input {
        case .linkDown: c.cutLink(f.host, f.peer)
        case .linkUp: c.restoreLink(f.host, f.peer)
        case .enable1, .enable0, .delSess, .reconnect, .poolEnable:
            answer = TableAdminAnswer(c.admin(f.host, input.command(f)!))
        }
        c.advance(TableLeg.settle)
        let machine = Machine.leg(pool: tablePool, session: f.session)
        let path = c.transitions[transitionsBefore...].filter { $0.machine == machine }.compactMap { LegState(rawValue: $0.to) }
        return (answer, path, Array(c.rejections[rejectionsBefore...]))
    }

    @Test("fixture reaches its state", arguments: TableLegFixture.allCases)
    func fixture(_ f: TableLegFixture) throws {
        let c = try TableLeg.cluster(f)
        #expect(TableLeg.leg(c, f)?.state == f.state)
    }

    @Test("cell", arguments: TableLegTable.cells)
    func legCell(_ cell: TableLegCell) throws {
        let c = try TableLeg.cluster(cell.fixture)
        let (answer, path, _) = Self.run(c, cell.fixture, cell.input)
        let what = cell.testDescription
        let after = TableLeg.leg(c, cell.fixture)
        #expect(after?.state == cell.state, "\(what): leg state")
        #expect(answer == cell.admin, "\(what): admin answer")
        if let mm = cell.maintenance { #expect(after?.maintenance == mm, "\(what): maintenance flag") }
        if let p = cell.path { #expect(path == p, "\(what): leg path") }
    }

    @Test("table covers every fixture × input exactly once")
    func coverage() {
        let keys = TableLegTable.cells.map { "\($0.fixture.rawValue)/\($0.input.rawValue)" }
        #expect(Set(keys).count == keys.count, "a cell is listed twice")
        #expect(keys.count == TableLegFixture.allCases.count * TableLegInput.allCases.count)
        // Every leg state but the terminal, transient REMOVING has a fixture (del_sess completes
        // as soon as the node answers LEAVE_POOL, so REMOVING cannot be held).
        let held = Set(TableLegFixture.allCases.map(\.state))
        #expect(held == Set(LegState.allCases).subtracting([.removing]))
    }

    /// Style rule 9(b): an illegal input — including "an operator's `enable` on a FAILED
    /// non-sync leg" — produces a typed `.rejected` effect, not only an errno. Checked once per
    /// refused admin cell of the table, except `pool_enable` answering EAGAIN: recovery waiting
    /// for a member is not an illegal input (notes §6.5: "do nothing; wait for the next call").
    @Test("refused operator command emits .rejected (style rule 9b)",
          arguments: TableLegTable.cells.filter { $0.admin != .errno(.EAGAIN) && $0.admin != .ok && $0.admin != .none })
    func refusalIsTypedRejection(_ cell: TableLegCell) throws {
        let c = try TableLeg.cluster(cell.fixture)
        let (answer, _, rejections) = Self.run(c, cell.fixture, cell.input)
        try #require(answer == cell.admin)
        #expect(!rejections.isEmpty, "\(cell.testDescription): refused with \(answer) but no .rejected effect")
    }
}
