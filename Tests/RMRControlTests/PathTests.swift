import Testing
@testable import RMRControl
import RMRCore

// The tree's paths: every path the guide uses is one of `attributePaths`, each pattern resolves
// to exactly its own attribute, and access rules hold for reads and writes.

/// Every distinct `/sys/class/...` path in the guide (echo targets and cat sources), with the
/// guide's `<pool_name>` / `<session-name>` placeholders instantiated.
let guidePaths: [String] = [
    "/sys/class/brmr-client/ctl/devices/brmr0/block/size",
    "/sys/class/brmr-client/ctl/devices/brmr0/state",
    "/sys/class/brmr-client/ctl/devices/brmr0/unmap_device",
    "/sys/class/brmr-client/ctl/map_device",
    "/sys/class/brmr-server/ctl/add_store",
    "/sys/class/brmr-server/ctl/create_store",
    "/sys/class/brmr-server/stores/ionos_pool/bdev_name",
    "/sys/class/brmr-server/stores/ionos_pool/delete_store",
    "/sys/class/brmr-server/stores/ionos_pool/dev_size",
    "/sys/class/brmr-server/stores/ionos_pool/mapped_size",
    "/sys/class/brmr-server/stores/ionos_pool/remove_store",
    "/sys/class/brmr-server/stores/ionos_pool/state",
    "/sys/class/rmr-client/ctl/join_pool",
    "/sys/class/rmr-client/pools/ionos_pool/add_sess",
    "/sys/class/rmr-client/pools/ionos_pool/leave_pool",
    "/sys/class/rmr-client/pools/ionos_pool/pool_enable",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/reconnect",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/state",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/del_sess",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/enable",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/state",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/del_sess",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/enable",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/member_id",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/del_sess",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/state",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr1@stg-rmr0/del_sess",
    "/sys/class/rmr-server/ctl/join_pool",
    "/sys/class/rmr-server/pools/ionos_pool/map_summary",
    "/sys/class/rmr-server/pools/ionos_pool/sync",
    "/sys/class/rmr-server/pools/ionos_pool/add_clt",
    "/sys/class/rmr-server/pools/ionos_pool/leave_pool",
    "/sys/class/rmr-server/pools/ionos_pool/map",
    "/sys/class/rmr-server/pools/ionos_pool/member_id",
    "/sys/class/rmr-server/pools/ionos_pool/state",
]

/// The guide's `cat` targets: each must be readable.
let guideReads: [String] = [
    "/sys/class/rmr-server/pools/ionos_pool/map_summary", "/sys/class/rmr-server/pools/ionos_pool/state",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/state",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/state",
    "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/member_id",
    "/sys/class/rmr-server/pools/ionos_pool/member_id", "/sys/class/brmr-client/ctl/devices/brmr0/state",
    "/sys/class/brmr-client/ctl/devices/brmr0/block/size", "/sys/class/brmr-server/stores/ionos_pool/state",
    "/sys/class/brmr-server/stores/ionos_pool/mapped_size", "/sys/class/brmr-server/stores/ionos_pool/bdev_name",
    "/sys/class/brmr-server/stores/ionos_pool/dev_size", "/sys/class/rmr-server/pools/ionos_pool/map",
]

/// Replaces the guide's names by the tree's placeholders.
func pattern(of path: String) -> String {
    var components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    for (index, component) in components.enumerated() where index > 0 {
        switch components[index - 1] {
        case "pools", "stores": components[index] = "P"
        case "sessions": components[index] = "S"
        case "devices": components[index] = "DEV"
        default: _ = component  // a literal component stays as it is
        }
    }
    return components.joined(separator: "/")
}

@Test(arguments: guidePaths)
func guidePathIsInAttributePaths(_ path: String) throws {
    #expect(ControlTree.attributePaths.contains(pattern(of: path)))
    let target = try #require(AttributePath.resolve(path))
    #expect(target.attribute.pattern == pattern(of: path))
}

@Test func everyAttributeIsUsedByTheGuideOrNotes() {
    // Every pattern is one the guide uses, except `sessions/S/enable` with 0 and `sync` reads,
    // which share a guide path, so the sets are equal.
    #expect(Set(guidePaths.map(pattern(of:))) == Set(ControlTree.attributePaths))
    #expect(ControlTree.attributePaths.count == 29)
    #expect(Set(ControlTree.attributePaths).count == ControlTree.attributePaths.count)
}

@Test(arguments: Attribute.allCases)
func patternResolvesToItsOwnAttribute(_ attribute: Attribute) throws {
    let concrete = attribute.pattern.replacing("/P/", with: "/ionos_pool/")
        .replacing("/S/", with: "/psrv0@stg-rmr0/").replacing("/DEV/", with: "/brmr0/")
    let target = try #require(AttributePath.resolve(concrete))
    #expect(target.attribute == attribute)
    #expect(Attribute.allCases.filter { AttributePath.resolve(concrete)?.attribute == $0 }.count == 1)
}

@Test(arguments: guideReads)
func guideReadTargetsAreReadable(_ path: String) throws {
    #expect(try #require(AttributePath.resolve(path)).attribute.access.isReadable)
}

@Test(arguments: guideWrites)
func guideWriteTargetsAreWritable(_ write: GuideWrite) throws {
    #expect(try #require(AttributePath.resolve(shellEcho(write.line).path)).attribute.access.isWritable)
}

@Test func capturedNamesFromPath() throws {
    let target = try #require(AttributePath.resolve(
        "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/del_sess"))
    #expect(target.name(.pool) == "ionos_pool")
    #expect(target.name(.session) == "psrv0@stg-rmr0")
    #expect(target.captured.map(\.0) == [.pool, .session])
}

// Reads through `ControlTree.read` on a node with nothing configured.

@Test(arguments: guideReads)
func readOfMissingObjectIsENOENTNamingIt(_ path: String) throws {
    let node = Node(host: "stg-rmr0", address: "192.168.122.80", seed: 1)
    let error = try #require(failure(ControlTree.read(path: path, node: node)))
    #expect(error.code == .ENOENT)
    let named = path.contains("/devices/") ? "brmr0" : "ionos_pool"
    #expect(error.message.contains(named), "\(error)")
}

@Test func readOfWriteOnlyAttributeIsEPERM() throws {
    let node = Node(host: "stg-rmr0", address: "192.168.122.80", seed: 1)
    for path in ["/sys/class/rmr-client/ctl/join_pool", "/sys/class/rmr-server/pools/ionos_pool/add_clt",
                 "/sys/class/brmr-client/ctl/devices/brmr0/unmap_device"] {
        let error = try #require(failure(ControlTree.read(path: path, node: node)))
        #expect(error.code == .EPERM)
        #expect(error.message.contains(path))
        #expect(error.message.contains("write-only"))
    }
}

@Test func readOfUnknownPathIsENOENTNamingIt() throws {
    let node = Node(host: "stg-rmr0", address: "192.168.122.80", seed: 1)
    let error = try #require(failure(ControlTree.read(path: "/sys/class/rmr-server/pools/p/dirty", node: node)))
    #expect(error.code == .ENOENT)
    #expect(error.message.contains("/sys/class/rmr-server/pools/p/dirty"))
}

@Test func unknownPathNamesWhereAWriteOnlyNamesakeLives() throws {
    let error = try #require(failure(ControlTree.parseWrite(path: "/sys/class/rmr-client/pools/p/sessions/s/leave_pool",
                                                            value: "1")))
    #expect(error.code == .ENOENT)
    #expect(error.message.contains("write-only attribute"))
    #expect(error.message.contains("/sys/class/rmr-client/pools/P/leave_pool"))
    #expect(error.message.contains("/sys/class/rmr-server/pools/P/leave_pool"))
}
