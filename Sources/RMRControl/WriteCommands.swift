import RMRCore

// What a write to each attribute means: the trimmed value parsed into an `AdminCommand`.
// Names taken from the path (pool, session, device) were already checked by `parseWrite`.

extension ControlTree {
    static func command(for target: AttributePath, value text: String) throws(RMRError) -> AdminCommand {
        let file = target.attribute.fileName
        switch target.attribute {
        // rmr-client
        case .clientJoinPool: return try clientJoinPool(text, file)
        case .clientAddSession: return try addSession(text, file, pool: target.name(.pool))
        case .clientPoolEnable:
            try ValueParser.one(text, attribute: file)
            return .poolEnable(pool: target.name(.pool))
        case .clientLeavePool:
            try ValueParser.one(text, attribute: file)
            return .clientLeavePool(pool: target.name(.pool))
        case .sessionEnable:
            let enable = try ValueParser.zeroOrOne(text, attribute: file)
            return .sessionEnable(pool: target.name(.pool), session: target.name(.session), enable: enable)
        case .sessionDelete:
            let line = try KeyValueLine.parse(text, attribute: file, keys: ["mode"])
            let mode = try ValueParser.choice(try line.required("mode"), key: "mode", attribute: file, as: LeaveMode.self)
            return .deleteSession(pool: target.name(.pool), session: target.name(.session), mode: mode)
        case .sessionReconnect:
            let line = try KeyValueLine.parse(text, attribute: file, keys: ["path"])
            let address = try AddressParser.ipv4Path(try line.required("path"))
            return .reconnectSession(pool: target.name(.pool), session: target.name(.session), address: address)
        // rmr-server
        case .serverJoinPool:
            let line = try KeyValueLine.parse(text, attribute: file, keys: ["poolname", "member_id"])
            let pool = try poolName(line, key: "poolname")
            return .serverJoinPool(pool: pool, member: try ValueParser.memberID(try line.required("member_id")))
        case .serverAddClient: return .attachSyncPool(pool: target.name(.pool), syncPool: try bareSyncPool(text, file))
        case .serverSync:
            return .sync(pool: target.name(.pool), try ValueParser.choice(text, key: "command", attribute: file, as: SyncCommand.self))
        case .serverLeavePool:
            try ValueParser.one(text, attribute: file)
            return .serverLeavePool(pool: target.name(.pool))
        // brmr-server
        case .createStore:
            let line = try KeyValueLine.parse(text, attribute: file, keys: ["device", "pool", "mapped_size"])
            let (device, pool, sectors) = try storeArguments(line)
            return .createStore(device: device, pool: pool, mappedSectors: sectors)
        case .addStore:
            let line = try KeyValueLine.parse(text, attribute: file, keys: ["device", "pool", "mapped_size", "mode"])
            let (device, pool, sectors) = try storeArguments(line)
            let mode = try ValueParser.choice(try line.required("mode"), key: "mode", attribute: file, as: AddStoreMode.self)
            return .addStore(device: device, pool: pool, mappedSectors: sectors, mode: mode)
        case .removeStore:
            try ValueParser.one(text, attribute: file)
            return .removeStore(pool: target.name(.pool))
        case .deleteStore:
            try ValueParser.one(text, attribute: file)
            return .deleteStore(pool: target.name(.pool))
        // brmr-client
        case .mapDevice:
            let line = try KeyValueLine.parse(text, attribute: file, keys: ["pool", "size"])
            let pool = try poolName(line, key: "pool")
            return .mapDevice(pool: pool, sizeSectors: try ValueParser.sectors(try line.required("size"), key: "size"))
        case .unmapDevice:
            try ValueParser.one(text, attribute: file)
            return .unmapDevice(device: target.name(.device))
        // Read-only files: `parseWrite` refuses them before getting here.
        case .sessionState, .sessionMemberID, .serverState, .serverMemberID, .serverMapSummary,
             .serverMap, .storeState, .storeMappedSize, .storeBdevName, .storeDevSize,
             .deviceState, .deviceBlockSize:
            throw readOnlyError(target)
        }
    }

    /// `poolname=P [chunk_size=N] [sync=y|n]`.
    private static func clientJoinPool(_ text: String, _ file: String) throws(RMRError) -> AdminCommand {
        let line = try KeyValueLine.parse(text, attribute: file, keys: ["poolname", "chunk_size", "sync"])
        let pool = try poolName(line, key: "poolname")
        var chunkBytes = Limits.defaultChunkBytes
        if let text = line.optional("chunk_size") { chunkBytes = try ValueParser.chunkSize(text) }
        var sync = false  // an IO pool unless the storage node says sync=y
        if let text = line.optional("sync") { sync = try ValueParser.boolean(text, key: "sync") }
        return .clientJoinPool(pool: pool, chunkBytes: chunkBytes, sync: sync)
    }

    /// `sessname=S path=ip:A [mode=create|assemble]`.
    private static func addSession(_ text: String, _ file: String, pool: String) throws(RMRError) -> AdminCommand {
        let line = try KeyValueLine.parse(text, attribute: file, keys: ["sessname", "path", "mode"])
        let session = try ValueParser.name(try line.required("sessname"), noun: "session name", source: "sessname")
        let address = try AddressParser.ipv4Path(try line.required("path"))
        var mode: JoinMode? = nil  // sync-pool sessions are added without a mode
        if let text = line.optional("mode") {
            mode = try ValueParser.choice(text, key: "mode", attribute: file, as: JoinMode.self)
        }
        return .addSession(pool: pool, session: session, address: address, mode: mode)
    }

    /// `add_clt` takes a bare pool name. A `key=value` there is the usual slip, so say so.
    private static func bareSyncPool(_ text: String, _ file: String) throws(RMRError) -> String {
        if text.contains("=") {
            throw RMRError(.EINVAL, "\(file) takes a bare sync pool name, got '\(text)'")
        }
        return try ValueParser.name(text, noun: "pool name", source: file)
    }

    private static func poolName(_ line: KeyValueLine, key: String) throws(RMRError) -> String {
        try ValueParser.name(try line.required(key), noun: "pool name", source: key)
    }

    private static func storeArguments(_ line: KeyValueLine) throws(RMRError) -> (String, String, UInt64) {
        let device = try ValueParser.devicePath(try line.required("device"))
        let pool = try poolName(line, key: "pool")
        let sectors = try ValueParser.sectors(try line.required("mapped_size"), key: "mapped_size")
        return (device, pool, sectors)
    }

    static func readOnlyError(_ target: AttributePath) -> RMRError {
        RMRError(.EPERM, "'\(target.path)' is a read-only attribute (\(target.attribute.fileName) cannot be written)")
    }
}
