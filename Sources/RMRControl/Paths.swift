import RMRCore

// The attribute files of the control tree and how a path finds one (guide, notes Appendix B).
//
// Each attribute is one sysfs-style file. Its pattern is the path with the names an operator
// chooses replaced by placeholders (P = pool, S = session, DEV = brmr-client device). The
// patterns are the single source of truth: `ControlTree.attributePaths` lists them and
// `AttributePath.resolve` matches against them, so the list and the router cannot drift apart.

/// A component of a pattern that an operator's name fills in.
public enum Placeholder: String, CaseIterable, Sendable {
    case pool = "P"
    case session = "S"
    case device = "DEV"

    /// How error messages call the name.
    var noun: String {
        switch self {
        case .pool: return "pool name"
        case .session: return "session name"
        case .device: return "device name"
        }
    }
}

/// What the file's mode bits allow.
enum Access: Sendable {
    case readOnly, writeOnly, readWrite

    var isReadable: Bool {
        switch self {
        case .readOnly, .readWrite: return true
        case .writeOnly: return false
        }
    }
    var isWritable: Bool {
        switch self {
        case .writeOnly, .readWrite: return true
        case .readOnly: return false
        }
    }
    var adjective: String {
        switch self {
        case .readOnly: return "read-only"
        case .writeOnly: return "write-only"
        case .readWrite: return "read-write"
        }
    }
}

/// Every attribute file of the tree. Adding one means giving it a pattern, an access, a write
/// parser and a renderer; the switches in this module refuse to compile until all are written.
enum Attribute: CaseIterable, Sendable {
    // rmr-client
    case clientJoinPool, clientAddSession, clientPoolEnable, clientLeavePool
    case sessionEnable, sessionDelete, sessionReconnect, sessionState, sessionMemberID
    // rmr-server
    case serverJoinPool, serverAddClient, serverSync, serverLeavePool
    case serverState, serverMemberID, serverMapSummary, serverMap
    // brmr-server
    case createStore, addStore, removeStore, deleteStore
    case storeState, storeMappedSize, storeBdevName, storeDevSize
    // brmr-client
    case mapDevice, unmapDevice, deviceState, deviceBlockSize

    var pattern: String {
        switch self {
        case .clientJoinPool: return "/sys/class/rmr-client/ctl/join_pool"
        case .clientAddSession: return "/sys/class/rmr-client/pools/P/add_sess"
        case .clientPoolEnable: return "/sys/class/rmr-client/pools/P/pool_enable"
        case .clientLeavePool: return "/sys/class/rmr-client/pools/P/leave_pool"
        case .sessionEnable: return "/sys/class/rmr-client/pools/P/sessions/S/enable"
        case .sessionDelete: return "/sys/class/rmr-client/pools/P/sessions/S/del_sess"
        case .sessionReconnect: return "/sys/class/rmr-client/pools/P/sessions/S/reconnect"
        case .sessionState: return "/sys/class/rmr-client/pools/P/sessions/S/state"
        case .sessionMemberID: return "/sys/class/rmr-client/pools/P/sessions/S/member_id"
        case .serverJoinPool: return "/sys/class/rmr-server/ctl/join_pool"
        case .serverAddClient: return "/sys/class/rmr-server/pools/P/add_clt"
        case .serverSync: return "/sys/class/rmr-server/pools/P/sync"
        case .serverLeavePool: return "/sys/class/rmr-server/pools/P/leave_pool"
        case .serverState: return "/sys/class/rmr-server/pools/P/state"
        case .serverMemberID: return "/sys/class/rmr-server/pools/P/member_id"
        case .serverMapSummary: return "/sys/class/rmr-server/pools/P/map_summary"
        case .serverMap: return "/sys/class/rmr-server/pools/P/map"
        case .createStore: return "/sys/class/brmr-server/ctl/create_store"
        case .addStore: return "/sys/class/brmr-server/ctl/add_store"
        case .removeStore: return "/sys/class/brmr-server/stores/P/remove_store"
        case .deleteStore: return "/sys/class/brmr-server/stores/P/delete_store"
        case .storeState: return "/sys/class/brmr-server/stores/P/state"
        case .storeMappedSize: return "/sys/class/brmr-server/stores/P/mapped_size"
        case .storeBdevName: return "/sys/class/brmr-server/stores/P/bdev_name"
        case .storeDevSize: return "/sys/class/brmr-server/stores/P/dev_size"
        case .mapDevice: return "/sys/class/brmr-client/ctl/map_device"
        case .unmapDevice: return "/sys/class/brmr-client/ctl/devices/DEV/unmap_device"
        case .deviceState: return "/sys/class/brmr-client/ctl/devices/DEV/state"
        case .deviceBlockSize: return "/sys/class/brmr-client/ctl/devices/DEV/block/size"
        }
    }

    var access: Access {
        switch self {
        case .clientJoinPool, .clientAddSession, .clientPoolEnable, .clientLeavePool,
             .sessionEnable, .sessionDelete, .sessionReconnect,
             .serverJoinPool, .serverAddClient, .serverLeavePool,
             .createStore, .addStore, .removeStore, .deleteStore,
             .mapDevice, .unmapDevice:
            return .writeOnly
        case .sessionState, .sessionMemberID, .serverState, .serverMemberID, .serverMapSummary,
             .serverMap, .storeState, .storeMappedSize, .storeBdevName, .storeDevSize,
             .deviceState, .deviceBlockSize:
            return .readOnly
        case .serverSync:
            // Written with start|stop, read back as running|stopped.
            return .readWrite
        }
    }

    /// The file name, as error messages call the attribute ("unknown key ... in join_pool").
    var fileName: String { String(patternComponents.last ?? "") }

    var patternComponents: [Substring] { pattern.split(separator: "/") }
}

/// A concrete path resolved to its attribute, with the names it carries.
struct AttributePath: Sendable {
    let path: String
    let attribute: Attribute
    /// Lookups only (never iterated): which name fills which placeholder.
    private let names: [Placeholder: String]

    /// The name in the path for `placeholder`. The attribute's pattern decides which
    /// placeholders exist, so asking for one it lacks is a bug in this module.
    func name(_ placeholder: Placeholder) -> String {
        guard let name = names[placeholder] else {
            preconditionFailure("\(attribute.pattern) has no \(placeholder.rawValue) component")
        }
        return name
    }

    /// The placeholders of the pattern, in path order, with their names.
    var captured: [(Placeholder, String)] {
        attribute.patternComponents.compactMap { component in
            Placeholder(rawValue: String(component)).map { ($0, name($0)) }
        }
    }

    /// Matches `path` against every pattern. Empty components (`//`, a trailing `/`) are
    /// skipped as the kernel's path walk does; the path must be absolute.
    static func resolve(_ path: String) -> AttributePath? {
        guard path.hasPrefix("/") else { return nil }
        let components = path.split(separator: "/")
        for attribute in Attribute.allCases {
            if let names = match(components, attribute.patternComponents) {
                return AttributePath(path: path, attribute: attribute, names: names)
            }
        }
        return nil
    }

    private static func match(_ components: [Substring], _ pattern: [Substring]) -> [Placeholder: String]? {
        guard components.count == pattern.count else { return nil }
        var names: [Placeholder: String] = [:]
        for (component, expected) in zip(components, pattern) {
            if let placeholder = Placeholder(rawValue: String(expected)) {
                names[placeholder] = String(component)
            } else if component != expected {
                return nil
            }
        }
        return names
    }

    /// ENOENT for a path no pattern matches. If its last component is the name of a known
    /// attribute, say where that attribute lives and whether it can be read or written, since
    /// the usual mistake is the right file in the wrong directory.
    static func unknownPathError(_ path: String) -> RMRError {
        let last = path.split(separator: "/").last.map(String.init) ?? ""
        var message = "no such attribute '\(path)'"
        let namesakes = Attribute.allCases.filter { $0.fileName == last }
        for access in [Access.readOnly, .writeOnly, .readWrite] {
            let places = namesakes.filter { $0.access == access }.map(\.pattern)
            if !places.isEmpty {
                message += "; '\(last)' is a \(access.adjective) attribute at "
                    + places.joined(separator: ", ")
            }
        }
        return RMRError(.ENOENT, message)
    }
}
