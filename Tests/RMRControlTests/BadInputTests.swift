import Testing
@testable import RMRControl
import RMRCore

// Writes that must fail: each row names the errno and the words the message must contain
// (the offending key, value or path), so an operator can tell what to fix.

struct BadWrite: Sendable, CustomTestStringConvertible {
    let path: String
    let value: String
    let code: Errno
    let mentions: [String]
    init(_ path: String, _ value: String, _ code: Errno, _ mentions: String...) {
        self.path = path; self.value = value; self.code = code; self.mentions = mentions
    }
    var testDescription: String { "\(value) > \(path)" }
}

private let clientJoin = "/sys/class/rmr-client/ctl/join_pool"
private let serverJoin = "/sys/class/rmr-server/ctl/join_pool"
private let addSess = "/sys/class/rmr-client/pools/ionos_pool/add_sess"
private let session = "/sys/class/rmr-client/pools/ionos_pool/sessions/psrv0@stg-rmr0"
private let serverPool = "/sys/class/rmr-server/pools/ionos_pool"
private let createStore = "/sys/class/brmr-server/ctl/create_store"
private let addStore = "/sys/class/brmr-server/ctl/add_store"
private let store = "/sys/class/brmr-server/stores/ionos_pool"
private let mapDevice = "/sys/class/brmr-client/ctl/map_device"
private let longName = String(repeating: "a", count: Limits.maxPoolNameBytes + 1)

let badWrites: [BadWrite] = [
    // Paths
    BadWrite("/sys/class/rmr-client/ctl/join_poo", "poolname=p", .ENOENT, "/sys/class/rmr-client/ctl/join_poo"),
    BadWrite("sys/class/rmr-client/ctl/join_pool", "poolname=p", .ENOENT, "sys/class/rmr-client/ctl/join_pool"),
    BadWrite("/sys/class/rmr-client/pools/ionos_pool/state", "1", .ENOENT,
             "/sys/class/rmr-client/pools/ionos_pool/state", "read-only attribute",
             "/sys/class/rmr-client/pools/P/sessions/S/state"),
    BadWrite("/sys/class/rmr-client/pools/ionos_pool/sessions/s/extra/enable", "1", .ENOENT, "extra/enable"),
    BadWrite("\(serverPool)/state", "normal", .EPERM, "\(serverPool)/state", "read-only"),
    BadWrite("\(serverPool)/map_summary", "", .EPERM, "map_summary", "read-only"),
    BadWrite("\(session)/member_id", "42", .EPERM, "member_id", "read-only"),
    BadWrite("\(store)/mapped_size", "204800", .EPERM, "mapped_size", "read-only"),
    BadWrite("/sys/class/brmr-client/ctl/devices/brmr0/block/size", "8", .EPERM, "block/size", "read-only"),
    // Names in the path
    BadWrite("/sys/class/rmr-client/pools/bad pool/pool_enable", "1", .EINVAL, "bad pool", "whitespace"),
    BadWrite("/sys/class/rmr-client/pools/p\u{E9}/pool_enable", "1", .EINVAL, "p\u{E9}", "ASCII"),
    BadWrite("/sys/class/rmr-client/pools/../pool_enable", "1", .EINVAL, "'..'"),
    BadWrite("/sys/class/rmr-server/pools/\(longName)/leave_pool", "1", .ENAMETOOLONG, "256", "255"),
    // Keys
    BadWrite(clientJoin, "poolname=p chunk_size=4096 foo=1", .EINVAL,
             "unknown key 'foo' in join_pool; expected poolname, chunk_size, sync"),
    BadWrite(serverJoin, "poolname=p member_id=1 chunk_size=4096", .EINVAL, "'chunk_size'", "poolname, member_id"),
    BadWrite(clientJoin, "chunk_size=131072", .EINVAL, "missing key 'poolname'"),
    BadWrite(clientJoin, "", .EINVAL, "missing key 'poolname'"),
    BadWrite(serverJoin, "poolname=p", .EINVAL, "missing key 'member_id'"),
    BadWrite(clientJoin, "poolname=a poolname=b", .EINVAL, "duplicate key 'poolname'"),
    BadWrite(serverJoin, "member_id=1 poolname=p member_id=2", .EINVAL, "duplicate key 'member_id'"),
    BadWrite(clientJoin, "poolname=p 131072", .EINVAL, "key=value", "'131072'"),
    BadWrite(clientJoin, "=p", .EINVAL, "key=value", "'=p'"),
    BadWrite(addSess, "sessname=s", .EINVAL, "missing key 'path'"),
    BadWrite(addSess, "path=ip:1.2.3.4", .EINVAL, "missing key 'sessname'"),
    BadWrite("\(session)/reconnect", "path=ip:1.2.3.4 mode=create", .EINVAL, "unknown key 'mode' in reconnect"),
    BadWrite("\(session)/reconnect", "", .EINVAL, "missing key 'path'"),
    BadWrite("\(session)/del_sess", "", .EINVAL, "missing key 'mode' in del_sess"),
    BadWrite("\(session)/del_sess", "delete", .EINVAL, "'delete'", "key=value"),
    BadWrite(addStore, "device=/dev/sda pool=p mapped_size=8", .EINVAL, "missing key 'mode' in add_store"),
    BadWrite(createStore, "device=/dev/sda pool=p mapped_size=8 mode=add", .EINVAL, "unknown key 'mode' in create_store"),
    BadWrite(createStore, "device=/dev/sda mapped_size=8", .EINVAL, "missing key 'pool'"),
    BadWrite(mapDevice, "pool=p", .EINVAL, "missing key 'size'"),
    BadWrite(mapDevice, "poolname=p size=8", .EINVAL, "unknown key 'poolname' in map_device; expected pool, size"),
    // Numbers
    BadWrite(clientJoin, "poolname=p chunk_size=128k", .EINVAL, "chunk_size", "'128k'", "not a decimal number"),
    BadWrite(clientJoin, "poolname=p chunk_size=0x1000", .EINVAL, "chunk_size", "'0x1000'"),
    BadWrite(clientJoin, "poolname=p chunk_size=", .EINVAL, "chunk_size", "not a decimal number"),
    BadWrite(clientJoin, "poolname=p chunk_size=2048", .ERANGE, "chunk_size", "2048", "4096", "1048576"),
    BadWrite(clientJoin, "poolname=p chunk_size=2097152", .ERANGE, "chunk_size", "2097152", "1048576"),
    BadWrite(clientJoin, "poolname=p chunk_size=99999999999999999999999", .ERANGE, "chunk_size", "99999999999999999999999"),
    BadWrite(clientJoin, "poolname=p chunk_size=12288", .EINVAL, "chunk_size", "12288", "power of two"),
    BadWrite(serverJoin, "poolname=p member_id=0", .ERANGE, "member_id", "0", "between 1 and 255"),
    BadWrite(serverJoin, "poolname=p member_id=256", .ERANGE, "member_id", "256", "between 1 and 255"),
    BadWrite(serverJoin, "poolname=p member_id=-1", .EINVAL, "member_id", "'-1'"),
    BadWrite(serverJoin, "poolname=p member_id=forty", .EINVAL, "member_id", "'forty'"),
    BadWrite(createStore, "device=/dev/sda pool=p mapped_size=0", .ERANGE, "mapped_size", "0"),
    BadWrite(createStore, "device=/dev/sda pool=p mapped_size=1e6", .EINVAL, "mapped_size", "'1e6'"),
    BadWrite(createStore, "device=/dev/sda pool=p mapped_size=36028797018963968", .ERANGE,
             "mapped_size", "36028797018963968", "36028797018963967"),
    BadWrite(mapDevice, "pool=p size=0", .ERANGE, "size", "0"),
    BadWrite(mapDevice, "pool=p size=100M", .EINVAL, "size", "'100M'"),
    // Booleans and modes
    BadWrite(clientJoin, "poolname=p sync=maybe", .EINVAL, "sync", "'maybe'", "boolean"),
    BadWrite(clientJoin, "poolname=p sync=", .EINVAL, "sync", "''"),
    BadWrite(addSess, "sessname=s path=ip:1.2.3.4 mode=bogus", .EINVAL, "mode", "'bogus'", "create or assemble"),
    BadWrite(addSess, "sessname=s path=ip:1.2.3.4 mode=Create", .EINVAL, "mode", "'Create'"),
    BadWrite("\(session)/del_sess", "mode=remove", .EINVAL, "mode", "'remove'", "delete or disassemble"),
    BadWrite(addStore, "device=/dev/sda pool=p mapped_size=8 mode=create", .EINVAL, "mode", "'create'", "add or replace"),
    BadWrite("\(serverPool)/sync", "begin", .EINVAL, "'begin'", "start or stop"),
    BadWrite("\(serverPool)/sync", "", .EINVAL, "''", "start or stop"),
    BadWrite("\(session)/enable", "2", .EINVAL, "enable", "'2'"),
    BadWrite("\(session)/enable", "yes", .EINVAL, "enable", "'yes'"),
    BadWrite("\(session)/enable", "", .EINVAL, "enable", "''"),
    // 1-only attributes
    BadWrite("/sys/class/rmr-client/pools/ionos_pool/pool_enable", "0", .EINVAL, "pool_enable", "only '1'", "'0'"),
    BadWrite("/sys/class/rmr-client/pools/ionos_pool/leave_pool", "yes", .EINVAL, "leave_pool", "'yes'"),
    BadWrite("\(serverPool)/leave_pool", "0", .EINVAL, "leave_pool", "'0'"),
    BadWrite("\(store)/remove_store", "2", .EINVAL, "remove_store", "'2'"),
    BadWrite("\(store)/delete_store", "", .EINVAL, "delete_store", "''"),
    BadWrite("/sys/class/brmr-client/ctl/devices/brmr0/unmap_device", "true", .EINVAL, "unmap_device", "'true'"),
    // Addresses
    BadWrite(addSess, "sessname=s path=ip:fe80::1", .EINVAL, "ip:fe80::1", "IPv6", "not supported"),
    BadWrite(addSess, "sessname=s path=ip:[::1]", .EINVAL, "IPv6", "not supported"),
    BadWrite(addSess, "sessname=s path=ip:192.168.122.80:1234", .EINVAL, "port", "not supported"),
    BadWrite(addSess, "sessname=s path=ip:admin@192.168.122.80", .EINVAL, "user", "not supported"),
    BadWrite(addSess, "sessname=s path=gid:fe80::2", .EINVAL, "gid:fe80::2", "not supported"),
    BadWrite(addSess, "sessname=s path=192.168.122.80", .EINVAL, "'192.168.122.80'", "ip:"),
    BadWrite(addSess, "sessname=s path=ip:300.1.1.1", .EINVAL, "300.1.1.1", "IPv4"),
    BadWrite(addSess, "sessname=s path=ip:1.2.3", .EINVAL, "1.2.3", "IPv4"),
    BadWrite(addSess, "sessname=s path=ip:1.2.3.4.5", .EINVAL, "1.2.3.4.5", "IPv4"),
    BadWrite(addSess, "sessname=s path=ip:01.2.3.4", .EINVAL, "01.2.3.4", "IPv4"),
    BadWrite(addSess, "sessname=s path=ip:", .EINVAL, "ip:", "IPv4"),
    BadWrite(addSess, "sessname=s path=ip:storage1", .EINVAL, "storage1", "IPv4"),
    BadWrite("\(session)/reconnect", "path=ip:::1", .EINVAL, "IPv6"),
    // Names in values
    BadWrite(clientJoin, "poolname=", .EINVAL, "empty pool name", "poolname"),
    BadWrite(clientJoin, "poolname=\(longName)", .ENAMETOOLONG, "poolname", "256", "255"),
    BadWrite(clientJoin, "poolname=p\u{F6}ol", .EINVAL, "p\u{F6}ol", "ASCII"),
    BadWrite(clientJoin, "poolname=a\u{A0}b", .EINVAL, "poolname", "ASCII"),
    BadWrite(clientJoin, "poolname=a/b", .EINVAL, "'a/b'", "'/'"),
    BadWrite(clientJoin, "poolname=a=b", .EINVAL, "'a=b'", "'='"),
    BadWrite(serverJoin, "poolname=. member_id=1", .EINVAL, "'.'"),
    BadWrite(addSess, "sessname= path=ip:1.2.3.4", .EINVAL, "empty session name", "sessname"),
    BadWrite(addSess, "sessname=c/s path=ip:1.2.3.4", .EINVAL, "session name", "'c/s'"),
    BadWrite(addSess, "sessname=\(longName) path=ip:1.2.3.4", .ENAMETOOLONG, "session name", "sessname"),
    BadWrite(mapDevice, "pool=a/b size=8", .EINVAL, "'a/b'", "pool"),
    BadWrite(createStore, "device=/dev/sda pool= mapped_size=8", .EINVAL, "empty pool name", "pool"),
    BadWrite("\(serverPool)/add_clt", "ionos pool", .EINVAL, "'ionos pool'", "whitespace"),
    BadWrite("\(serverPool)/add_clt", "", .EINVAL, "empty pool name", "add_clt"),
    BadWrite("\(serverPool)/add_clt", "poolname=ionos_pool", .EINVAL, "bare", "'poolname=ionos_pool'"),
    BadWrite("\(serverPool)/add_clt", "\(longName)", .ENAMETOOLONG, "add_clt", "256"),
    // Devices
    BadWrite(createStore, "device=sda pool=p mapped_size=8", .EINVAL, "'sda'", "absolute"),
    BadWrite(createStore, "device= pool=p mapped_size=8", .EINVAL, "empty device"),
    BadWrite(addStore, "device=/dev/ pool=p mapped_size=8 mode=add", .EINVAL, "'/dev/'", "directory"),
    BadWrite(addStore, "device=/dev/sd\u{E4} pool=p mapped_size=8 mode=add", .EINVAL, "/dev/sd\u{E4}", "ASCII"),
]

@Test(arguments: badWrites)
func badWriteIsRefused(_ bad: BadWrite) throws {
    let error = try #require(failure(ControlTree.parseWrite(path: bad.path, value: bad.value)))
    #expect(error.code == bad.code, "\(error)")
    for word in bad.mentions {
        #expect(error.message.contains(word), "'\(word)' missing from: \(error.message)")
    }
}

@Test func unknownKeyMessageIsExact() throws {
    let error = try #require(failure(ControlTree.parseWrite(path: clientJoin, value: "poolname=p foo=1")))
    #expect(error == RMRError(.EINVAL, "unknown key 'foo' in join_pool; expected poolname, chunk_size, sync"))
}

@Test func unsupportedAddressFormsAreNamedAsTheGuideSays() throws {
    // Guide: "username, password, portnum, and IPv6 addressing are not supported".
    for (value, what) in [("ip:fe80::1", "IPv6"), ("ip:1.2.3.4:5", "port"), ("ip:u@1.2.3.4", "user")] {
        let error = try #require(failure(ControlTree.parseWrite(path: "\(session)/reconnect", value: "path=\(value)")))
        #expect(error.code == .EINVAL)
        #expect(error.message.contains("\(what)"))
        #expect(error.message.contains("not supported"))
        #expect(error.message.contains(value))
    }
}
