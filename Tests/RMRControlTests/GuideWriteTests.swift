import Testing
@testable import RMRControl
import RMRCore

// Every `echo ... > /sys/class/...` line of the cluster-management guide, copied verbatim
// (the three with <pool_name>, <session-name>, <storage-ip> placeholders instantiated), with
// the typed command it must parse into.

struct GuideWrite: Sendable, CustomTestStringConvertible {
    let line: String
    let command: AdminCommand
    var testDescription: String { line }
}

private let pool = "ionos_pool"

let guideWrites: [GuideWrite] = [
    // Create RMR pool on compute client and storage servers
    GuideWrite(line: "echo 'poolname=ionos_pool chunk_size=131072' > /sys/class/rmr-client/ctl/join_pool",
               command: .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false)),
    GuideWrite(line: "echo 'poolname=ionos_pool member_id=42' > /sys/class/rmr-server/ctl/join_pool",
               command: .serverJoinPool(pool: pool, member: 42)),
    GuideWrite(line: "echo 'poolname=ionos_pool member_id=43' > /sys/class/rmr-server/ctl/join_pool",
               command: .serverJoinPool(pool: pool, member: 43)),
    // Create store on storage 1 and 2
    GuideWrite(line: "echo 'device=/dev/sda pool=ionos_pool mapped_size=204800' > /sys/class/brmr-server/ctl/create_store",
               command: .createStore(device: "/dev/sda", pool: pool, mappedSectors: 204800)),
    GuideWrite(line: "echo 'device=/dev/sda pool=ionos_pool mapped_size=204800' > /sys/class/brmr-server/ctl/create_store",
               command: .createStore(device: "/dev/sda", pool: pool, mappedSectors: 204800)),
    // Create and enable sessions on the client
    GuideWrite(line: "echo 'sessname=psrv0@stg-rmr0 path=ip:192.168.122.80 mode=create' > /sys/class/rmr-client/pools/ionos_pool/add_sess",
               command: .addSession(pool: pool, session: "psrv0@stg-rmr0", address: "192.168.122.80", mode: .create)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/enable",
               command: .sessionEnable(pool: pool, session: "psrv0@stg-rmr0", enable: true)),
    GuideWrite(line: "echo 'sessname=psrv0@stg-rmr1 path=ip:192.168.122.84 mode=create' > /sys/class/rmr-client/pools/ionos_pool/add_sess",
               command: .addSession(pool: pool, session: "psrv0@stg-rmr1", address: "192.168.122.84", mode: .create)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/enable",
               command: .sessionEnable(pool: pool, session: "psrv0@stg-rmr1", enable: true)),
    // Create sync pool (storage 1, then storage 2)
    GuideWrite(line: "echo 'poolname=ionos_pool chunk_size=131072 sync=y' > /sys/class/rmr-client/ctl/join_pool",
               command: .clientJoinPool(pool: pool, chunkBytes: 131072, sync: true)),
    GuideWrite(line: "echo 'sessname=stg-rmr0@stg-rmr1 path=ip:192.168.122.84' > /sys/class/rmr-client/pools/ionos_pool/add_sess",
               command: .addSession(pool: pool, session: "stg-rmr0@stg-rmr1", address: "192.168.122.84", mode: nil)),
    GuideWrite(line: "echo 'ionos_pool' > /sys/class/rmr-server/pools/ionos_pool/add_clt",
               command: .attachSyncPool(pool: pool, syncPool: pool)),
    GuideWrite(line: "echo 'poolname=ionos_pool chunk_size=131072 sync=y' > /sys/class/rmr-client/ctl/join_pool",
               command: .clientJoinPool(pool: pool, chunkBytes: 131072, sync: true)),
    GuideWrite(line: "echo 'sessname=stg-rmr1@stg-rmr0 path=ip:192.168.122.80' > /sys/class/rmr-client/pools/ionos_pool/add_sess",
               command: .addSession(pool: pool, session: "stg-rmr1@stg-rmr0", address: "192.168.122.80", mode: nil)),
    GuideWrite(line: "echo 'ionos_pool' > /sys/class/rmr-server/pools/ionos_pool/add_clt",
               command: .attachSyncPool(pool: pool, syncPool: pool)),
    // Initial sync (<pool_name> instantiated)
    GuideWrite(line: "echo \"start\" > /sys/class/rmr-server/pools/ionos_pool/sync",
               command: .sync(pool: pool, .start)),
    // Map the BRMR block device on the client
    GuideWrite(line: "echo 'pool=ionos_pool size=204800' > /sys/class/brmr-client/ctl/map_device",
               command: .mapDevice(pool: pool, sizeSectors: 204800)),
    // Common recovery steps (<storage-ip>, <session-name> instantiated)
    GuideWrite(line: "echo 'path=ip:192.168.122.84' > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/reconnect",
               command: .reconnectSession(pool: pool, session: "psrv0@stg-rmr1", address: "192.168.122.84")),
    GuideWrite(line: "echo 1 > /sys/class/rmr-client/pools/ionos_pool/pool_enable",
               command: .poolEnable(pool: pool)),
    // Recover after storage node crash
    GuideWrite(line: "echo 'poolname=ionos_pool member_id=43' > /sys/class/rmr-server/ctl/join_pool",
               command: .serverJoinPool(pool: pool, member: 43)),
    GuideWrite(line: "echo 'device=/dev/sda pool=ionos_pool mapped_size=204800 mode=add' > /sys/class/brmr-server/ctl/add_store",
               command: .addStore(device: "/dev/sda", pool: pool, mappedSectors: 204800, mode: .add)),
    GuideWrite(line: "echo 'poolname=ionos_pool chunk_size=131072 sync=y' > /sys/class/rmr-client/ctl/join_pool",
               command: .clientJoinPool(pool: pool, chunkBytes: 131072, sync: true)),
    GuideWrite(line: "echo 'sessname=stg-rmr1@stg-rmr0 path=ip:192.168.122.80' > /sys/class/rmr-client/pools/ionos_pool/add_sess",
               command: .addSession(pool: pool, session: "stg-rmr1@stg-rmr0", address: "192.168.122.80", mode: nil)),
    GuideWrite(line: "echo 'ionos_pool' > /sys/class/rmr-server/pools/ionos_pool/add_clt",
               command: .attachSyncPool(pool: pool, syncPool: pool)),
    // Recover after compute client crash
    GuideWrite(line: "echo 'poolname=ionos_pool chunk_size=131072' > /sys/class/rmr-client/ctl/join_pool",
               command: .clientJoinPool(pool: pool, chunkBytes: 131072, sync: false)),
    GuideWrite(line: "echo 'sessname=psrv0@stg-rmr0 path=ip:192.168.122.80 mode=assemble' > /sys/class/rmr-client/pools/ionos_pool/add_sess",
               command: .addSession(pool: pool, session: "psrv0@stg-rmr0", address: "192.168.122.80", mode: .assemble)),
    GuideWrite(line: "echo 'sessname=psrv0@stg-rmr1 path=ip:192.168.122.84 mode=assemble' > /sys/class/rmr-client/pools/ionos_pool/add_sess",
               command: .addSession(pool: pool, session: "psrv0@stg-rmr1", address: "192.168.122.84", mode: .assemble)),
    GuideWrite(line: "echo 'pool=ionos_pool size=204800' > /sys/class/brmr-client/ctl/map_device",
               command: .mapDevice(pool: pool, sizeSectors: 204800)),
    // Replace BRMR block device on an active pool group
    GuideWrite(line: "echo 1 > /sys/class/brmr-server/stores/ionos_pool/remove_store",
               command: .removeStore(pool: pool)),
    GuideWrite(line: "echo 'device=/dev/sda_new pool=ionos_pool mapped_size=204800 mode=replace' > /sys/class/brmr-server/ctl/add_store",
               command: .addStore(device: "/dev/sda_new", pool: pool, mappedSectors: 204800, mode: .replace)),
    GuideWrite(line: "echo 'start' > /sys/class/rmr-server/pools/ionos_pool/sync",
               command: .sync(pool: pool, .start)),
    // Disassemble a pool
    GuideWrite(line: "echo 1 > /sys/class/brmr-client/ctl/devices/brmr0/unmap_device",
               command: .unmapDevice(device: "brmr0")),
    GuideWrite(line: "echo 'mode=disassemble' > /sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/del_sess",
               command: .deleteSession(pool: pool, session: "stg-rmr0@stg-rmr1", mode: .disassemble)),
    GuideWrite(line: "echo 'mode=disassemble' > /sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr1@stg-rmr0/del_sess",
               command: .deleteSession(pool: pool, session: "stg-rmr1@stg-rmr0", mode: .disassemble)),
    GuideWrite(line: "echo 'mode=disassemble' > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0/del_sess",
               command: .deleteSession(pool: pool, session: "psrv0@stg-rmr0", mode: .disassemble)),
    GuideWrite(line: "echo 'mode=disassemble' > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/del_sess",
               command: .deleteSession(pool: pool, session: "psrv0@stg-rmr1", mode: .disassemble)),
    GuideWrite(line: "echo 1 > /sys/class/brmr-server/stores/ionos_pool/remove_store",
               command: .removeStore(pool: pool)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-client/pools/ionos_pool/leave_pool",
               command: .clientLeavePool(pool: pool)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-server/pools/ionos_pool/leave_pool",
               command: .serverLeavePool(pool: pool)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-client/pools/ionos_pool/leave_pool",
               command: .clientLeavePool(pool: pool)),
    // Delete a leg and eventually the full pool
    GuideWrite(line: "echo 1 > /sys/class/brmr-client/ctl/devices/brmr0/unmap_device",
               command: .unmapDevice(device: "brmr0")),
    GuideWrite(line: "echo 'mode=disassemble' > /sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr1@stg-rmr0/del_sess",
               command: .deleteSession(pool: pool, session: "stg-rmr1@stg-rmr0", mode: .disassemble)),
    GuideWrite(line: "echo 'mode=disassemble' > /sys/class/rmr-client/pools/ionos_pool/sessions/stg-rmr0@stg-rmr1/del_sess",
               command: .deleteSession(pool: pool, session: "stg-rmr0@stg-rmr1", mode: .disassemble)),
    GuideWrite(line: "echo 'mode=delete' > /sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr1/del_sess",
               command: .deleteSession(pool: pool, session: "psrv0@stg-rmr1", mode: .delete)),
    GuideWrite(line: "echo 1 > /sys/class/brmr-server/stores/ionos_pool/delete_store",
               command: .deleteStore(pool: pool)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-server/pools/ionos_pool/leave_pool",
               command: .serverLeavePool(pool: pool)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-client/pools/ionos_pool/leave_pool",
               command: .clientLeavePool(pool: pool)),
    GuideWrite(line: "echo 1 > /sys/class/rmr-client/pools/ionos_pool/leave_pool",
               command: .clientLeavePool(pool: pool)),
]

@Test(arguments: guideWrites)
func guideLineParses(_ write: GuideWrite) {
    let (path, value) = shellEcho(write.line)
    #expect(success(ControlTree.parseWrite(path: path, value: value)) == write.command)
}

@Test func guideHasFortyEightEchoLines() {
    // 48 `echo ... > /sys/class` lines in the guide; a new guide line needs a row above.
    #expect(guideWrites.count == 48)
}

// Writes beyond the guide's literal lines that the notes (Appendix B) and the brief name.

@Test func enableZeroEntersMaintenance() {
    let result = ControlTree.parseWrite(path: "/sys/class/rmr-client/pools/p/sessions/s/enable", value: "0\n")
    #expect(success(result) == .sessionEnable(pool: "p", session: "s", enable: false))
}

@Test func syncStop() {
    let result = ControlTree.parseWrite(path: "/sys/class/rmr-server/pools/p/sync", value: "stop")
    #expect(success(result) == .sync(pool: "p", .stop))
}

@Test func joinPoolDefaultsChunkSizeAndSync() {
    let result = ControlTree.parseWrite(path: "/sys/class/rmr-client/ctl/join_pool", value: "poolname=p")
    #expect(success(result) == .clientJoinPool(pool: "p", chunkBytes: Limits.defaultChunkBytes, sync: false))
}

@Test(arguments: [("y", true), ("Y", true), ("1", true), ("true", true), ("TRUE", true),
                  ("n", false), ("N", false), ("0", false), ("false", false)])
func syncBooleanSpellings(_ spelling: String, _ expected: Bool) {
    let result = ControlTree.parseWrite(path: "/sys/class/rmr-client/ctl/join_pool",
                                        value: "poolname=p sync=\(spelling)")
    #expect(success(result) == .clientJoinPool(pool: "p", chunkBytes: 131072, sync: expected))
}

@Test func keysInAnyOrderWithExtraWhitespace() {
    let result = ControlTree.parseWrite(path: "/sys/class/brmr-server/ctl/add_store",
                                        value: "  mode=add\tmapped_size=8   pool=p device=/dev/vdb \r\n")
    #expect(success(result) == .addStore(device: "/dev/vdb", pool: "p", mappedSectors: 8, mode: .add))
}

@Test func chunkSizeLimitsAccepted() {
    for bytes in [Limits.minChunkBytes, Limits.maxChunkBytes] {
        let result = ControlTree.parseWrite(path: "/sys/class/rmr-client/ctl/join_pool",
                                            value: "poolname=p chunk_size=\(bytes)")
        #expect(success(result) == .clientJoinPool(pool: "p", chunkBytes: bytes, sync: false))
    }
}

@Test func memberIDLimitsAccepted() {
    for member: MemberID in [1, 255] {
        let result = ControlTree.parseWrite(path: "/sys/class/rmr-server/ctl/join_pool",
                                            value: "poolname=p member_id=\(member)")
        #expect(success(result) == .serverJoinPool(pool: "p", member: member))
    }
}

@Test func poolNameOf255BytesAccepted() {
    let name = String(repeating: "a", count: Limits.maxPoolNameBytes)
    let result = ControlTree.parseWrite(path: "/sys/class/rmr-server/ctl/join_pool",
                                        value: "poolname=\(name) member_id=1")
    #expect(success(result) == .serverJoinPool(pool: name, member: 1))
}

@Test func addressEdgesAccepted() {
    for address in ["0.0.0.0", "255.255.255.255", "10.0.0.1"] {
        let result = ControlTree.parseWrite(path: "/sys/class/rmr-client/pools/p/sessions/s/reconnect",
                                            value: "path=ip:\(address)")
        #expect(success(result) == .reconnectSession(pool: "p", session: "s", address: address))
    }
}

@Test func doubledSlashesInPathAreIgnored() {
    let result = ControlTree.parseWrite(path: "/sys/class//rmr-client/pools/p/pool_enable", value: "1")
    #expect(success(result) == .poolEnable(pool: "p"))
}
