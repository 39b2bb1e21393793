import RMRCore

// What a read of each attribute shows: find the object the path names on the node, then hand
// its view to the matching renderer. A missing object is ENOENT naming it.

extension ControlTree {
    static func render(_ target: AttributePath, node: Node) throws(RMRError) -> String {
        switch target.attribute {
        case .sessionState:
            return renderSessionState(try leg(target, node))
        case .sessionMemberID:
            return renderMemberID(try leg(target, node).member)
        case .serverState:
            return renderServerState(try serverPool(target, node))
        case .serverMemberID:
            return renderMemberID(try serverPool(target, node).member)
        case .serverSync:
            return renderSyncThread(try serverPool(target, node))
        case .serverMapSummary:
            return renderMapSummary(try serverPool(target, node))
        case .serverMap:
            return renderMap(try serverPool(target, node))
        case .storeState:
            return renderStoreState(try store(target, node))
        case .storeMappedSize:
            return renderStoreMappedSize(try store(target, node))
        case .storeBdevName:
            return renderStoreBdevName(try store(target, node))
        case .storeDevSize:
            return renderStoreDevSize(try store(target, node))
        case .deviceState:
            return renderDeviceState(try device(target, node))
        case .deviceBlockSize:
            return renderDeviceSize(try device(target, node))
        // Write-only files: `read` refuses them before getting here.
        case .clientJoinPool, .clientAddSession, .clientPoolEnable, .clientLeavePool,
             .sessionEnable, .sessionDelete, .sessionReconnect,
             .serverJoinPool, .serverAddClient, .serverLeavePool,
             .createStore, .addStore, .removeStore, .deleteStore,
             .mapDevice, .unmapDevice:
            throw writeOnlyError(target)
        }
    }

    static func writeOnlyError(_ target: AttributePath) -> RMRError {
        RMRError(.EPERM, "'\(target.path)' is a write-only attribute (\(target.attribute.fileName) cannot be read)")
    }

    private static func serverPool(_ target: AttributePath, _ node: Node) throws(RMRError) -> ServerPoolView {
        let name = target.name(.pool)
        guard let view = node.serverPool(name) else {
            throw RMRError(.ENOENT, "no server pool '\(name)' (\(target.path))")
        }
        return view
    }

    private static func leg(_ target: AttributePath, _ node: Node) throws(RMRError) -> LegView {
        let poolName = target.name(.pool), session = target.name(.session)
        guard let pool = node.clientPool(poolName) else {
            throw RMRError(.ENOENT, "no client pool '\(poolName)' (\(target.path))")
        }
        guard let leg = pool.legs.first(where: { $0.session == session }) else {
            throw RMRError(.ENOENT, "no session '\(session)' in client pool '\(poolName)' (\(target.path))")
        }
        return leg
    }

    private static func store(_ target: AttributePath, _ node: Node) throws(RMRError) -> StoreView {
        let name = target.name(.pool)
        guard let view = node.store(forPool: name) else {
            throw RMRError(.ENOENT, "no store for pool '\(name)' (\(target.path))")
        }
        return view
    }

    private static func device(_ target: AttributePath, _ node: Node) throws(RMRError) -> DeviceView {
        let name = target.name(.device)
        guard let view = node.device(name) else {
            throw RMRError(.ENOENT, "no brmr device '\(name)' (\(target.path))")
        }
        return view
    }
}
