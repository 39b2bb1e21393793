// The legal-transition tables of notes §3.1 (server pool) and §3.2 (client leg), written out here
// independently of the core, and checked cell by cell against `ServerPoolState.allows` and
// `LegState.allows`. A change to either table in the core fails a named cell here.
import Testing
@testable import RMRCore

struct TableServerMove: Hashable, Sendable {
    var from: ServerPoolState
    var to: ServerPoolState
}

struct TableLegMove: Hashable, Sendable, CustomTestStringConvertible {
    var from: LegState
    var to: LegState
    var isSync: Bool
    var testDescription: String { "\(isSync ? "sync" : "non-sync") \(from) -> \(to)" }
}

enum TableLegality {
    /// Notes §3.1, "Transitions with triggers". Nothing else is legal (self-moves are not
    /// transitions).
    static let serverLegal: Set<TableServerMove> = [
        .init(from: .empty, to: .registered),        // create_store / add_store
        .init(from: .registered, to: .created),      // create-mode non-sync JOIN on a marked_create store
        .init(from: .registered, to: .noIO),         // assemble JOIN / REJOIN; any failure
        .init(from: .registered, to: .empty),        // store unregistered, no sessions
        .init(from: .created, to: .normal),          // ENABLE_POOL(1)
        .init(from: .created, to: .noIO),            // any failure
        .init(from: .normal, to: .noIO),             // any failure, MAP_DISABLE, maintenance, LEAVE_POOL
        .init(from: .noIO, to: .normal),             // MAP_DONE(1), ENABLE_POOL(1) (authoritative), last-IO
        .init(from: .noIO, to: .registered),         // last session left, store attached
        .init(from: .noIO, to: .empty),              // last session left, store gone
    ]

    /// Notes §3.2, "Legal transitions" (both kinds of leg unless marked).
    static let legLegalBoth: Set<[LegState]> = [
        [.created, .normal], [.created, .reconnecting], [.created, .failed], [.created, .removing],
        [.normal, .failed], [.normal, .reconnecting], [.normal, .removing],
        [.failed, .reconnecting], [.failed, .removing],
        [.reconnecting, .normal], [.reconnecting, .failed], [.reconnecting, .removing],
        // REMOVING is terminal.
    ]
    /// FAILED → NORMAL: sync sessions only (non-sync must go through RECONNECTING and a map update).
    static let legLegalSyncOnly: Set<[LegState]> = [[.failed, .normal]]

    static func legLegal(_ m: TableLegMove) -> Bool {
        legLegalBoth.contains([m.from, m.to]) || (m.isSync && legLegalSyncOnly.contains([m.from, m.to]))
    }

    static let legMoves: [TableLegMove] = [false, true].flatMap { sync in
        LegState.allCases.flatMap { from in LegState.allCases.map { TableLegMove(from: from, to: $0, isSync: sync) } }
    }
}

@Suite("Table: legal transitions")
struct TableLegalityTests {
    @Test("server pool move", arguments: ServerPoolState.allCases, ServerPoolState.allCases)
    func serverPoolMove(from: ServerPoolState, to: ServerPoolState) {
        let legal = TableLegality.serverLegal.contains(.init(from: from, to: to))
        #expect(ServerPoolState.allows(from: from, to: to) == legal,
                "\(from) -> \(to): notes §3.1 say \(legal ? "legal" : "illegal")")
    }

    @Test("leg move", arguments: TableLegality.legMoves)
    func legMove(_ m: TableLegMove) {
        let legal = TableLegality.legLegal(m)
        #expect(LegState.allows(from: m.from, to: m.to, isSync: m.isSync) == legal,
                "\(m.testDescription): notes §3.2 say \(legal ? "legal" : "illegal")")
    }

    @Test func tablesCoverEveryPair() {
        #expect(ServerPoolState.allCases.count == 5, "a new server state needs its row in TableLegality.serverLegal")
        #expect(LegState.allCases.count == 5, "a new leg state needs its row in TableLegality.legLegalBoth")
        #expect(TableLegality.legMoves.count == 2 * LegState.allCases.count * LegState.allCases.count)
    }

    // The rules the notes state in words, checked on their own.

    @Test func failedToNormalOnlyForSyncLegs() {
        #expect(!LegState.allows(from: .failed, to: .normal, isSync: false))
        #expect(LegState.allows(from: .failed, to: .normal, isSync: true))
    }

    @Test func removingIsTerminal() {
        for to in LegState.allCases {
            #expect(!LegState.allows(from: .removing, to: to, isSync: false), "removing -> \(to)")
            #expect(!LegState.allows(from: .removing, to: to, isSync: true), "sync removing -> \(to)")
        }
    }

    @Test func emptyNeverGoesToNoIO() {
        #expect(!ServerPoolState.allows(from: .empty, to: .noIO))
    }

    @Test func createdIsEnteredOnlyFromRegistered() {
        for from in ServerPoolState.allCases {
            #expect(ServerPoolState.allows(from: from, to: .created) == (from == .registered), "\(from) -> created")
        }
    }

    @Test func normalIsEnteredOnlyFromCreatedOrNoIO() {
        for from in ServerPoolState.allCases {
            #expect(ServerPoolState.allows(from: from, to: .normal) == (from == .created || from == .noIO), "\(from) -> normal")
        }
    }

    @Test func createdAndNormalNeverDropStraightToRegisteredOrEmpty() {
        for from in [ServerPoolState.created, .normal] {
            #expect(!ServerPoolState.allows(from: from, to: .registered), "\(from) -> registered")
            #expect(!ServerPoolState.allows(from: from, to: .empty), "\(from) -> empty")
        }
    }
}
