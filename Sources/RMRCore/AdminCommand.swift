// Typed admin commands: what a write to the control tree means (RMRControl parses the guide's
// `echo ... > /sys/class/...` strings into these). The core validates them against its state.

/// How a client leg joins a server pool (`add_sess ... mode=`).
public enum JoinMode: String, Sendable, Hashable, CaseIterable {
    /// A fresh pool: the storage node was freshly formatted with `create_store`.
    case create
    /// An existing pool reassembled after a client crash or replacement.
    case assemble
}

/// How a leg leaves (`del_sess mode=`).
public enum LeaveMode: String, Sendable, Hashable, CaseIterable {
    /// Permanent: peers forget the member, `delete_store` may wipe the disk.
    case delete
    /// Temporary: metadata is kept, dirty entries keep accumulating for the member.
    case disassemble
}

/// `add_store mode=`.
public enum AddStoreMode: String, Sendable, Hashable, CaseIterable {
    /// The disk carries this pool's metadata: restore maps and write-intent records.
    case add
    /// An empty disk takes the place of a lost one: fully dirty, resynced from peers.
    case replace
}

/// What the driver found on a device named in `create_store` / `add_store`.
/// Reading the device is IO, so the driver does it and the core decides.
public indirect enum DeviceProbe: Sendable, Hashable {
    /// No such device.
    case missing
    /// The device exists: its size, and the RMR metadata on it if any was recognised.
    case present(sizeSectors: UInt64, metadata: DurablePoolState?)
    /// The device has metadata the store does not recognise as RMR (foreign or corrupt).
    case unreadable(sizeSectors: UInt64, reason: String)
}

public enum SyncCommand: String, Sendable, Hashable, CaseIterable { case start, stop }

public enum AdminCommand: Sendable, Hashable {
    // /sys/class/rmr-client
    case clientJoinPool(pool: String, chunkBytes: UInt64, sync: Bool)
    case addSession(pool: String, session: String, address: HostAddress, mode: JoinMode?)
    case sessionEnable(pool: String, session: String, enable: Bool)
    case deleteSession(pool: String, session: String, mode: LeaveMode)
    case reconnectSession(pool: String, session: String, address: HostAddress)
    case poolEnable(pool: String)
    case clientLeavePool(pool: String)
    // /sys/class/rmr-server
    case serverJoinPool(pool: String, member: MemberID)
    case attachSyncPool(pool: String, syncPool: String)
    case sync(pool: String, SyncCommand)
    case serverLeavePool(pool: String)
    // /sys/class/brmr-server
    case createStore(device: String, pool: String, mappedSectors: UInt64)
    case addStore(device: String, pool: String, mappedSectors: UInt64, mode: AddStoreMode)
    case removeStore(pool: String)
    case deleteStore(pool: String)
    // /sys/class/brmr-client
    case mapDevice(pool: String, sizeSectors: UInt64)
    case unmapDevice(device: String)

    /// Store commands name a device the driver must probe before the core sees the command.
    public var deviceToProbe: String? {
        switch self {
        case .createStore(let device, _, _), .addStore(let device, _, _, _): return device
        default: return nil
        }
    }
}

/// Correlates an admin write with its completion (a sysfs write blocks until it is answered).
public struct AdminToken: Hashable, Sendable { public var raw: UInt64; public init(_ raw: UInt64) { self.raw = raw } }

public enum AdminResult: Sendable, Hashable {
    case ok
    case failed(RMRError)
}
