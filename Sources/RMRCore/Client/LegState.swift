// Client leg (`rmr_clt_pool_sess`) states and their legal transitions (notes §3.2).
//
//   CREATED ──enable──▶ NORMAL ──link down / IO error──▶ FAILED ──rejoin / store check──▶ RECONNECTING
//      │                  │  ▲                                 ▲  │ (sync legs: FAILED ─▶ NORMAL)          │
//      │ assemble         │  └──────────── try_enable after a map update ◀──────────────────────────────┘
//      └──────────────────┼──────────▶ RECONNECTING ◀── maintenance (enable=0) ── NORMAL
//   every state ──del_sess──▶ REMOVING (terminal)

public enum LegState: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Added by `add_sess mode=create`; no IO until `enable 1`. Leaves to NORMAL, RECONNECTING,
    /// FAILED or REMOVING.
    case created
    /// Receives writes and reads. Leaves on link loss or IO error (FAILED), maintenance
    /// (RECONNECTING) or `del_sess` (REMOVING).
    case normal
    /// Link down or IO error; chunks written meanwhile are piggybacked as dirty for it. Leaves to
    /// RECONNECTING after a rejoin or positive store check (sync legs go straight to NORMAL).
    case failed
    /// Reachable again but not yet given a map update. Leaves to NORMAL only through try_enable.
    case reconnecting
    /// Being deleted; terminal.
    case removing

    public var description: String { rawValue }

    /// The legal-transition table. `isSync` legs never need a map update.
    public static func allows(from: LegState, to: LegState, isSync: Bool) -> Bool {
        switch (from, to) {
        case (.created, .normal), (.created, .reconnecting), (.created, .failed), (.created, .removing):
            return true
        case (.normal, .failed), (.normal, .reconnecting), (.normal, .removing):
            return true
        case (.failed, .reconnecting), (.failed, .removing):
            return true
        case (.failed, .normal):
            return isSync
        case (.reconnecting, .normal), (.reconnecting, .failed), (.reconnecting, .removing):
            return true
        default:
            return false  // fail closed: a forgotten cell is refused (style rule 8)
        }
    }
}

/// Server pool states (notes §3.1).
public enum ServerPoolState: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Pool exists, no store registered; rejects every join. Leaves to REGISTERED on a store.
    case empty
    /// Store registered, no client session yet. Leaves to CREATED (create join), NO_IO (assemble
    /// join / rejoin) or EMPTY (store removed).
    case registered
    /// A create-mode client joined; waits for ENABLE_POOL(1). Leaves to NORMAL or NO_IO.
    case created
    /// Serves IO with an up-to-date map. Leaves to NO_IO on any failure.
    case normal
    /// Must not serve IO; waits for a map update or enable. Leaves to NORMAL, REGISTERED, EMPTY.
    case noIO = "no_io"

    public var description: String { rawValue }

    public static func allows(from: ServerPoolState, to: ServerPoolState) -> Bool {
        switch (from, to) {
        case (.empty, .registered):
            return true
        case (.registered, .created), (.registered, .noIO), (.registered, .empty):
            return true
        case (.created, .normal), (.created, .noIO):
            return true
        case (.normal, .noIO):
            return true
        case (.noIO, .normal), (.noIO, .registered), (.noIO, .empty):
            return true
        default:
            return false  // fail closed
        }
    }
}

/// Map-update sub-state of a server pool (MAP_READY → MAP_BUF_DONE → MAP_DONE).
public enum MapUpdateState: String, Sendable, Hashable, CaseIterable {
    case disabled, ready, done
}

/// Background sync thread state.
public enum SyncThreadState: String, Sendable, Hashable, CaseIterable {
    case stopped, running
}

/// brmr-client device state.
public enum DeviceState: String, Sendable, Hashable, CaseIterable {
    case ready, disconnected
}
