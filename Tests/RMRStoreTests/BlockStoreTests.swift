#if canImport(Glibc)
import Glibc
#endif
import Testing
import RMRCore
import RMRFormat
import RMRStore

// The real libaio store on temp files (and a loop device when the machine allows one).
// Files live in /var/tmp: O_DIRECT needs a real file system (tmpfs refuses it).

final class TempDir {
    let path: String
    init() {
        path = "/var/tmp/rmr-store-tests-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        mkdir(path, 0o700)
    }
    func file(_ name: String, bytes: UInt64) -> String {
        let p = "\(path)/\(name)"
        let fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0o600)
        precondition(fd >= 0, "create \(p): \(errno)")
        precondition(ftruncate(fd, off_t(bytes)) == 0, "ftruncate")
        close(fd)
        return p
    }
    deinit {
        if let d = opendir(path) {
            while let e = readdir(d) {
                let name = withUnsafeBytes(of: e.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink("\(path)/\(name)") }
            }
            closedir(d)
        }
        rmdir(path)
    }
}

func readFile(_ path: String, offset: UInt64, count: Int) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    defer { close(fd) }
    var out = [UInt8](repeating: 0, count: count)
    let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, count, off_t(offset)) }
    return Array(out.prefix(max(0, n)))
}

func writeFile(_ path: String, offset: UInt64, bytes: [UInt8]) {
    let fd = open(path, O_RDWR)
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress!, bytes.count, off_t(offset)) }
    fsync(fd)
}

func allocatedBlocks(_ path: String) -> Int {
    var st = stat()
    stat(path, &st)
    return Int(st.st_blocks)
}

/// 4 KiB of a pattern unique to (block, seed).
func pattern(block: UInt64, seed: UInt64) -> [UInt8] {
    var rng = SplitMix64(seed: block &* 0x9E37_79B9 ^ seed)
    var out = [UInt8]()
    out.reserveCapacity(4096)
    for _ in 0..<512 { let v = rng.next(); for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
    return out
}

/// Polls until `count` completions arrived (with a generous timeout so a bug fails, not hangs).
func collect(_ store: BlockStore, _ count: Int) -> [StoreCompletion] {
    var out: [StoreCompletion] = []
    var rounds = 0
    while out.count < count && rounds < 100_000 {
        out += store.poll(minEvents: 1, timeoutNanos: 5_000_000_000)
        rounds += 1
    }
    return out
}

func storeState(mappedSectors: UInt64 = 16384, deviceSectors: UInt64, chunkBytes: UInt64 = 128 * 1024) -> DurablePoolState {
    DurablePoolState(poolName: "ionos_pool", poolUUID: PoolUUID(high: 1, low: 2), member: 1, chunkBytes: chunkBytes,
                     mappedSectors: mappedSectors, deviceSectors: deviceSectors)
}

@Suite(.serialized) struct BlockStoreTests {
    @Test func formatOpenWriteReadPersistReopen() throws {
        let dir = TempDir()
        let path = dir.file("store.img", bytes: 24 << 20)
        let state = storeState(deviceSectors: 49152)
        try BlockStore.format(path: path, state: state, nonce: 42)
        #expect(BlockStore.probe(path: path) == .present(sizeSectors: 49152, metadata: state))

        let store = try BlockStore(path: path, options: .init(queueDepth: 32))
        #expect(store.attributes == StoreAttributes(isOpen: true, isMapped: false, mappedSectors: 16384,
                                                    bdevName: "store.img", deviceSectors: 49152))
        #expect(store.attributes.stateText == "open\nunmapped")
        var rng = SplitMix64(seed: 5)
        var blocks: [UInt64] = []
        while blocks.count < 200 {
            let b = rng.next(below: 2048)
            if !blocks.contains(b) { blocks.append(b) }
        }
        var expected = state
        var persists: [UInt64] = []
        for (i, b) in blocks.enumerated() {
            store.submit(tag: StoreTag(UInt64(i)), op: .write(offsetBytes: b * 4096, data: pattern(block: b, seed: 1)))
            if i % 10 == 0 {
                let chunk = b * 4096 / state.chunkBytes
                let record = PersistRecord([.addIntents([chunk]), .setDirty(member: 2, chunks: [chunk])])
                expected = expected.applying(record)
                store.persist(tag: PersistTag(UInt64(i)), record: record)
                persists.append(UInt64(i))
            }
        }
        var hdr = expected.storeHeader
        hdr.storeMapped = true
        expected.apply(.header(hdr))
        store.persist(tag: PersistTag(1000), record: PersistRecord([.header(hdr)]))
        persists.append(1000)
        let done = collect(store, blocks.count + persists.count)
        let storeDone = done.compactMap { if case .store(let t, .ok) = $0 { return t.raw } else { return nil } }
        let persistDone = done.compactMap { if case .persist(let t, let ok) = $0, ok { return t.raw } else { return nil } }
        #expect(Set(storeDone) == Set(0..<UInt64(blocks.count)))
        #expect(persistDone == persists, "persists complete in issue order")
        #expect(store.metadata == expected)
        #expect(store.attributes.stateText == "open\nmapped")

        for (i, b) in blocks.enumerated() {
            store.submit(tag: StoreTag(UInt64(5000 + i)), op: .read(offsetBytes: b * 4096, lengthBytes: 4096))
        }
        var mismatches = 0
        for c in collect(store, blocks.count) {
            guard case .store(let t, .ok(let data)) = c else { Issue.record("read failed: \(c)"); continue }
            if data != pattern(block: blocks[Int(t.raw - 5000)], seed: 1) { mismatches += 1 }
        }
        #expect(mismatches == 0)
        // Data offset 0 of the store is sector 16 of the file.
        #expect(readFile(path, offset: 8192 + blocks[0] * 4096, count: 4096) == pattern(block: blocks[0], seed: 1))
        store.close()
        #expect(!store.attributes.isOpen)
        #expect(store.attributes.stateText == "closed\nmapped")

        #expect(BlockStore.probe(path: path) == .present(sizeSectors: 49152, metadata: expected))
        let again = try BlockStore(path: path)
        #expect(again.metadata == expected)
        again.submit(tag: StoreTag(1), op: .read(offsetBytes: blocks[7] * 4096, lengthBytes: 4096))
        #expect(collect(again, 1) == [.store(StoreTag(1), .ok(data: pattern(block: blocks[7], seed: 1)))])
        again.close()
    }

    @Test func burstsOfPersistsAreBatchedCheckpointedAndRecovered() throws {
        let dir = TempDir()
        let path = dir.file("burst.img", bytes: 16 << 20)
        var expected = storeState(mappedSectors: 8192, deviceSectors: 32768, chunkBytes: 4096)
        try BlockStore.format(path: path, state: expected, nonce: 7, journalBlocks: 8, journalWindowBlocks: 2)
        let store = try BlockStore(path: path)
        var rng = SplitMix64(seed: 77)
        var tag: UInt64 = 0
        var completed: [UInt64] = []
        for _ in 0..<20 {
            for _ in 0..<25 {
                let record = PersistRecord([.addIntents([rng.next(below: 1024)]), .setDirty(member: 3, chunks: [rng.next(below: 1024)])])
                expected = expected.applying(record)
                store.persist(tag: PersistTag(tag), record: record)
                tag += 1
            }
            for c in store.poll(minEvents: 1) {
                guard case .persist(let t, let ok) = c else { continue }
                #expect(ok)
                completed.append(t.raw)
            }
        }
        for c in collect(store, Int(tag) - completed.count) {
            if case .persist(let t, true) = c { completed.append(t.raw) }
        }
        #expect(completed == Array(0..<tag))
        let stats = store.stats
        #expect(stats.metadata.batchedEntries > 0)
        #expect(stats.metadata.journalWrites < tag)
        #expect(stats.metadata.checkpoints > 0)
        #expect(store.metadata == expected)
        store.close()
        let reopened = try BlockStore(path: path)
        #expect(reopened.metadata == expected)
        reopened.close()
    }

    @Test func wipeLeavesABlankDevice() throws {
        let dir = TempDir()
        let path = dir.file("wipe.img", bytes: 16 << 20)
        try BlockStore.format(path: path, state: storeState(mappedSectors: 8192, deviceSectors: 32768), nonce: 3)
        let store = try BlockStore(path: path)
        store.persist(tag: PersistTag(1), record: PersistRecord([.addIntents([3])]))
        let drained = try store.wipe()
        #expect(drained == [.persist(PersistTag(1), ok: true)])
        #expect(!store.attributes.isOpen)
        #expect(BlockStore.probe(path: path) == .present(sizeSectors: 32768, metadata: nil))
        #expect(readFile(path, offset: 0, count: 8192).allSatisfy { $0 == 0 })
        #expect(throws: StoreError.self) { _ = try BlockStore(path: path) }
        // A blank device can be formatted again.
        try BlockStore.format(path: path, state: storeState(mappedSectors: 8192, deviceSectors: 32768), nonce: 4)
        #expect(try BlockStore(path: path).metadata == storeState(mappedSectors: 8192, deviceSectors: 32768))
    }

    @Test func mappedSizeLargerThanTheDeviceWritesNothing() throws {
        let dir = TempDir()
        let path = dir.file("small.img", bytes: 300000 * 512)
        #expect(allocatedBlocks(path) == 0)
        do {
            try BlockStore.format(path: path, state: storeState(mappedSectors: 409600, deviceSectors: 300000))
            Issue.record("format accepted a mapped_size larger than the device")
        } catch {
            #expect(error.message == "mapped_size 409600 larger than device (300000 sectors)")
            #expect(error.errno == .ENOSPC)
        }
        #expect(allocatedBlocks(path) == 0, "nothing may be written")
        #expect(BlockStore.probe(path: path) == .present(sizeSectors: 300000, metadata: nil))
    }

    @Test func foreignDataIsReportedAndNeverOverwritten() throws {
        let dir = TempDir()
        let path = dir.file("foreign.img", bytes: 16 << 20)
        var junk = Array("XFSB-not-rmr".utf8)
        junk += pattern(block: 0, seed: 9).prefix(4000)
        writeFile(path, offset: 0, bytes: junk)
        let before = readFile(path, offset: 0, count: 1 << 20)
        guard case .unreadable(let size, let reason) = BlockStore.probe(path: path) else {
            Issue.record("probe did not report foreign data")
            return
        }
        #expect(size == 32768)
        #expect(reason.hasPrefix("foreign magic 0x"))
        #expect(reason.contains("XFSB-not"))
        #expect(throws: StoreError.self) {
            try BlockStore.format(path: path, state: storeState(mappedSectors: 8192, deviceSectors: 32768))
        }
        #expect(throws: StoreError.self) { try BlockStore.wipe(path: path) }
        #expect(throws: StoreError.self) { _ = try BlockStore(path: path) }
        #expect(readFile(path, offset: 0, count: 1 << 20) == before)
    }

    @Test func existingMetadataIsNotFormattedOver() throws {
        let dir = TempDir()
        let path = dir.file("twice.img", bytes: 16 << 20)
        let state = storeState(mappedSectors: 8192, deviceSectors: 32768)
        try BlockStore.format(path: path, state: state, nonce: 1)
        do {
            try BlockStore.format(path: path, state: state, nonce: 2)
            Issue.record("second format accepted")
        } catch {
            #expect(error.kind == .refused)
            #expect(error.message.contains("holds RMR metadata of pool 'ionos_pool'"))
        }
        #expect(BlockStore.probe(path: path) == .present(sizeSectors: 32768, metadata: state))
    }

    @Test func corruptHeadersAreReportedByProbeAndOpen() throws {
        let dir = TempDir()
        let path = dir.file("corrupt.img", bytes: 16 << 20)
        try BlockStore.format(path: path, state: storeState(mappedSectors: 8192, deviceSectors: 32768), nonce: 1)
        writeFile(path, offset: 100, bytes: [0xFF])
        writeFile(path, offset: 4096 + 100, bytes: [0xFF])
        #expect(BlockStore.probe(path: path) == .unreadable(sizeSectors: 32768, reason: "header checksum mismatch in copy 0 and copy 1"))
        do {
            _ = try BlockStore(path: path)
            Issue.record("open of a corrupt store succeeded")
        } catch {
            #expect(error.kind == .format(.corrupt))
        }
    }

    @Test func badIOIsAnsweredWithErrnoAndFlushWorks() throws {
        let dir = TempDir()
        let path = dir.file("io.img", bytes: 16 << 20)
        try BlockStore.format(path: path, state: storeState(mappedSectors: 8192, deviceSectors: 32768), nonce: 1)
        let store = try BlockStore(path: path)
        store.submit(tag: StoreTag(1), op: .read(offsetBytes: 100, lengthBytes: 4096))
        store.submit(tag: StoreTag(2), op: .write(offsetBytes: 8192 * 512, data: [UInt8](repeating: 1, count: 512)))
        store.submit(tag: StoreTag(3), op: .write(offsetBytes: 8192 * 512 - 512, data: [UInt8](repeating: 1, count: 512)))
        store.submit(tag: StoreTag(4), op: .flush)
        let c = collect(store, 4)
        #expect(c.contains(.store(StoreTag(1), .failed(.EINVAL))))
        #expect(c.contains(.store(StoreTag(2), .failed(.ERANGE))))
        #expect(c.contains(.store(StoreTag(3), .ok(data: []))))
        #expect(c.contains(.store(StoreTag(4), .ok(data: []))))
        store.close()
    }

    @Test func theEventFDSignalsCompletions() throws {
        let dir = TempDir()
        let path = dir.file("efd.img", bytes: 16 << 20)
        try BlockStore.format(path: path, state: storeState(mappedSectors: 8192, deviceSectors: 32768), nonce: 1)
        let store = try BlockStore(path: path)
        #expect(store.eventFD >= 0)
        store.submit(tag: StoreTag(9), op: .write(offsetBytes: 0, data: pattern(block: 0, seed: 2)))
        var p = pollfd(fd: store.eventFD, events: Int16(POLLIN), revents: 0)
        #expect(Glibc.poll(&p, 1, 5000) == 1)
        store.clearEventFD()
        #expect(store.poll(minEvents: 0) == [.store(StoreTag(9), .ok(data: []))])
        store.close()
    }

    @Test func aSecondOpenOfTheSameDeviceIsRefused() throws {
        let dir = TempDir()
        let path = dir.file("busy.img", bytes: 16 << 20)
        try BlockStore.format(path: path, state: storeState(mappedSectors: 8192, deviceSectors: 32768), nonce: 1)
        let store = try BlockStore(path: path)
        do {
            _ = try BlockStore(path: path)
            Issue.record("second open succeeded")
        } catch {
            #expect(error.kind == .busy)
        }
        store.close()
        #expect(BlockStore.probe(path: "\(dir.path)/missing.img") == .missing)
    }

    /// The same lifecycle on a real block device. Loop devices need root and /dev/loop-control;
    /// where that is missing the test says so and passes.
    @Test func loopDevice() throws {
        let dir = TempDir()
        let backing = dir.file("loop.img", bytes: 16 << 20)
        let (loop, output) = shell("losetup -f --show \(backing) 2>&1")
        guard let loop, loop.hasPrefix("/dev/loop") else {
            print("SKIPPED loop-device test: losetup failed: \(output.isEmpty ? "not available" : output)")
            return
        }
        defer { _ = shell("losetup -d \(loop) 2>&1") }
        #expect(BlockStore.probe(path: loop) == .present(sizeSectors: 32768, metadata: nil))
        let state = storeState(mappedSectors: 8192, deviceSectors: 32768)
        try BlockStore.format(path: loop, state: state, nonce: 11)
        let store = try BlockStore(path: loop)
        #expect(store.attributes.bdevName == String(loop.dropFirst("/dev/".count)))
        #expect(store.attributes.deviceSectors == 32768)
        for b: UInt64 in 0..<64 { store.submit(tag: StoreTag(b), op: .write(offsetBytes: b * 4096, data: pattern(block: b, seed: 3))) }
        store.persist(tag: PersistTag(1), record: PersistRecord([.addIntents([0, 1])]))
        #expect(collect(store, 65).count == 65)
        store.submit(tag: StoreTag(100), op: .read(offsetBytes: 63 * 4096, lengthBytes: 4096))
        #expect(collect(store, 1) == [.store(StoreTag(100), .ok(data: pattern(block: 63, seed: 3)))])
        store.close()
        var expected = state
        expected.apply(.addIntents([0, 1]))
        #expect(BlockStore.probe(path: loop) == .present(sizeSectors: 32768, metadata: expected))
        try BlockStore.wipe(path: loop)
        #expect(BlockStore.probe(path: loop) == .present(sizeSectors: 32768, metadata: nil))
    }
}

/// Runs `command` with /bin/sh; the first output line (nil if the command failed) and all output.
func shell(_ command: String) -> (String?, String) {
    guard let f = popen(command, "r") else { return (nil, "popen failed") }
    var output = ""
    var line = [CChar](repeating: 0, count: 4096)
    while fgets(&line, Int32(line.count), f) != nil {
        output += String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    let status = pclose(f)
    let text = output.trimmingCharacters()
    return (status == 0 ? text.split(separator: "\n").first.map(String.init) : nil, text)
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        return String(s)
    }
}
