import Testing
@testable import RMRControl
import RMRCore

// End to end through a real Node: the guide's write parsed, applied, then read back.

@Test func serverJoinPoolThenReadBack() throws {
    var node = Node(host: "stg-rmr1", address: "192.168.122.84", seed: 7)
    let (path, value) = shellEcho("echo 'poolname=ionos_pool member_id=43' > /sys/class/rmr-server/ctl/join_pool")
    let command = try #require(success(ControlTree.parseWrite(path: path, value: value)))
    _ = node.apply(.admin(command, token: AdminToken(1), probe: nil), at: .zero)

    let pool = "/sys/class/rmr-server/pools/ionos_pool"
    // The guide: "The server pool starts in EMPTY state ... until a store is registered."
    #expect(success(ControlTree.read(path: "\(pool)/state", node: node)) == "empty")
    #expect(success(ControlTree.read(path: "\(pool)/member_id", node: node)) == "43")
    #expect(success(ControlTree.read(path: "\(pool)/sync", node: node)) == "stopped")
    // No store yet: the store's attributes are absent, and so are other pools'.
    #expect(failure(ControlTree.read(path: "/sys/class/brmr-server/stores/ionos_pool/state", node: node))?.code == .ENOENT)
    #expect(failure(ControlTree.read(path: "/sys/class/rmr-server/pools/other/state", node: node))?.code == .ENOENT)
}
