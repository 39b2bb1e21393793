#if canImport(Glibc)
import Glibc
#endif
import Testing
import RMRCore
import RMRFormat
import RMRStore

/// The core's durability effects carried out by the real libaio store: the chain the daemon
/// will use. A storage node is created on a file, takes a create-mode join and a write with a
/// piggybacked failed member; the process "dies"; a new node re-adds the disk with
/// `add_store mode=add` and finds the dirty mark and the write intent on disk.
@Suite struct CoreIntegrationTests {
    let pool = "ionos_pool"
    let client: HostAddress = "10.0.0.1"

    /// Performs a node's effects against the store until nothing is outstanding; returns the
    /// responses sent to the client and the admin results.
    final class Driver {
        var node: Node
        var store: BlockStore?
        let path: String
        var now = Instant(nanos: 1)
        var responses: [Response] = []
        var admin: [AdminResult] = []
        var rejections: [Rejection] = []
        var storeErrors: [String] = []
        init(node: Node, path: String) { self.node = node; self.path = path }

        func apply(_ input: Input) {
            var queue = [input]
            while true {
                if queue.isEmpty, let store {
                    // Persists are batched per event-loop turn: issue them, then wait.
                    store.flushMetadata()
                    if store.outstanding == 0 { break }
                    queue = store.poll(minEvents: 1, timeoutNanos: 1_000_000_000).map(\.input)
                    continue
                }
                if queue.isEmpty { break }
                now = Instant(nanos: now.nanos + 1000)
                for e in node.apply(queue.removeFirst(), at: now) {
                    switch e {
                    case .send(.response(_, _, let r), _): responses.append(r)
                    case .send: break
                    case .persist(let tag, _, let record): store!.persist(tag: tag, record: record)
                    case .submitStore(let tag, _, let op): store!.submit(tag: tag, op: op)
                    case .formatStore(let tag, _, let state):
                        do {
                            try BlockStore.format(path: path, state: state, nonce: 7)
                            store = try BlockStore(path: path)
                            queue.append(.persistCompleted(tag, ok: true))
                        } catch {
                            storeErrors.append("\(error)")
                            queue.append(.persistCompleted(tag, ok: false))
                        }
                    case .wipeStore(let tag, _): queue.append(.persistCompleted(tag, ok: true))
                    case .completeAdmin(_, let r): admin.append(r)
                    case .rejected(let r): rejections.append(r)
                    case .connect, .disconnect, .completeBlockIO, .transitioned, .ignored, .probe: break
                    }
                }
            }
        }
    }

    @Test func persistedMarksAndIntentsSurviveAProcessRestart() throws {
        let dir = TempDir()
        let mappedSectors: UInt64 = 8192
        let deviceSectors = try BlockStore.requiredDeviceSectors(mappedSectors: mappedSectors, chunkBytes: 131072)
        let path = dir.file("sda", bytes: deviceSectors * 512)

        // First life: create, join, enable, map, write.
        let d = Driver(node: Node(host: "stg-rmr0", address: "10.0.1.0", seed: 1), path: path)
        d.apply(.admin(.serverJoinPool(pool: pool, member: 42), token: AdminToken(1), probe: nil))
        d.apply(.admin(.createStore(device: path, pool: pool, mappedSectors: mappedSectors), token: AdminToken(2),
                       probe: BlockStore.probe(path: path)))
        #expect(d.admin == [.ok, .ok], "\(d.storeErrors)")
        #expect(d.store != nil)
        let uuid = PoolUUID(high: 0xfeed, low: 0xbeef)
        let join = JoinRequest(poolUUID: uuid, queueDepth: 16, chunkBytes: 131072, create: true, dirty: false,
                               peers: [PeerInfo(member: 43, clientMapDirty: false)], rejoin: false, fromSyncPool: false)
        d.apply(.received(.request(RequestID(1), pool: pool, .join(join)), from: client))
        d.apply(.received(.request(RequestID(2), pool: pool, .enablePool(true)), from: client))
        d.apply(.received(.request(RequestID(3), pool: pool, .user(.map(mappedSectors: mappedSectors))), from: client))
        #expect(d.node.serverPool(pool)?.state == .normal)
        let data = [UInt8](repeating: 0x5a, count: 4096)
        let io = IORequest(op: .write, offsetBytes: 3 * 131072, lengthBytes: 4096, data: data, slot: 0,
                           mapVersion: MapVersion(raw: 2), failedMembers: [43], target: 42)
        d.apply(.received(.request(RequestID(4), pool: pool, .io(io)), from: client))
        #expect(d.responses.count == 4)
        #expect(Bool(d.responses.allSatisfy { $0.isOK }), "\(d.responses)")
        #expect(d.rejections.isEmpty)
        _ = d.store!.close()  // the process dies; only what the store made durable remains

        // Second life: the operator's recovery.
        let probe = BlockStore.probe(path: path)
        guard case .present(_, let md?) = probe else { Issue.record("no metadata found: \(probe)"); return }
        #expect(md.poolUUID == uuid)
        #expect(md.storeMapped)
        #expect(md.writeIntents == [3])
        #expect(md.map(for: 43)?.runs() == [ChunkRun(start: 3, count: 1)])

        let e = Driver(node: Node(host: "stg-rmr0", address: "10.0.1.0", seed: 2), path: path)
        e.store = try BlockStore(path: path)
        e.apply(.admin(.serverJoinPool(pool: pool, member: 42), token: AdminToken(1), probe: nil))
        e.apply(.admin(.addStore(device: path, pool: pool, mappedSectors: mappedSectors, mode: .add), token: AdminToken(2), probe: probe))
        #expect(e.admin == [.ok, .ok])
        let view = try #require(e.node.serverPool(pool))
        #expect(view.state == .registered)
        #expect(view.writeIntentCount == 1)
        #expect(view.maps.first { $0.member == 43 }?.map.firstDirty(limit: 10) == [3])
        #expect(e.node.store(forPool: pool)?.mapped == true)
        #expect(readFile(path, offset: 16 * 512 + 3 * 131072, count: 4096) == data, "data region starts at sector 16")
        _ = e.store!.close()

        // A create_store on that disk is refused and names add_store.
        let f = Driver(node: Node(host: "stg-rmr0", address: "10.0.1.0", seed: 3), path: path)
        f.apply(.admin(.serverJoinPool(pool: pool, member: 42), token: AdminToken(1), probe: nil))
        f.apply(.admin(.createStore(device: path, pool: pool, mappedSectors: mappedSectors), token: AdminToken(2), probe: probe))
        guard case .failed(let err) = f.admin.last else { Issue.record("create_store accepted a disk with metadata"); return }
        #expect(err.message.contains("add_store"))
    }
}
