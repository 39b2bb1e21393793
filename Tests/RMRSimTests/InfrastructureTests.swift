import Testing
import RMRCore
@testable import RMRSim

/// A payload that counts live instances (only `payloadsAreReleasedOnceWhateverHappensToThem`
/// makes them).
private final class Token {
    nonisolated(unsafe) static var alive = 0
    let id: Int
    init(_ id: Int) { self.id = id; Token.alive += 1 }
    deinit { Token.alive -= 1 }
}

@Suite struct EventQueueTests {
    @Test func popsInTimeOrder() {
        var q = EventQueue<Int>()
        let times: [UInt64] = [50, 10, 40, 10, 30, 0, 99, 10]
        for (i, t) in times.enumerated() { q.push(at: t, i) }
        var last: UInt64 = 0
        var popped: [Int] = []
        while let e = q.pop() {
            #expect(e.time >= last)
            last = e.time
            popped.append(e.payload)
        }
        #expect(popped.count == times.count)
        #expect(q.isEmpty == true)
    }

    /// Payloads live in raw storage: each one is released exactly once, whether it is popped,
    /// dropped by `removeAll`, or still queued when the queue goes away; slots are reused.
    @Test func payloadsAreReleasedOnceWhateverHappensToThem() {
        do {
            var q = EventQueue<Token>()
            for i in 0..<300 { q.push(at: UInt64(i % 7), Token(i)) }  // grows the slot storage
            #expect(Token.alive == 300)
            var popped: [Int] = []
            for _ in 0..<100 { popped.append(q.pop()!.payload.id) }
            #expect(Token.alive == 200, "a popped payload belongs to the caller, who dropped it")
            for i in 300..<350 { q.push(at: 3, Token(i)) }  // reuses freed slots
            #expect(Token.alive == 250)
            // Same instant as the last pop: these go to the lane.
            let now = q.earliestTime!
            _ = q.pop()
            for i in 350..<360 { q.push(at: now, Token(i)) }
            #expect(Token.alive == 259)
            q.removeAll()
            #expect(Token.alive == 0)
            #expect(q.pop() == nil)
            for i in 0..<40 { q.push(at: UInt64(i), Token(i)) }
            #expect(Token.alive == 40)
            #expect(q.pop()!.payload.id == 0)
        }
        #expect(Token.alive == 0, "the queue's deinit releases what is still queued")
    }

    @Test func tiesBreakInPushOrder() {
        var q = EventQueue<Int>()
        for i in 0..<100 { q.push(at: 7, i) }
        q.push(at: 3, -1)
        #expect(q.pop()?.payload == -1)
        var got: [Int] = []
        while let e = q.pop() { got.append(e.payload) }
        #expect(got == Array(0..<100))
    }

    /// Pushes mostly at the instant of the last pop (the same-instant lane), some later, some
    /// earlier: every pop is still the minimum (time, sequence) of what is pending.
    @Test func sameInstantLaneKeepsTheHeapOrder() {
        var q = EventQueue<UInt64>()
        var naive: [(UInt64, UInt64)] = []
        var r = WorldRandom(seed: 11)
        var now: UInt64 = 0
        var pops = 0
        for round in 0..<5000 {
            let pick = r.below(10)
            let t = pick < 6 ? now : pick < 9 ? now + r.below(20) : now - min(now, r.below(3))
            let seq = q.push(at: t, UInt64(round))
            naive.append((t, seq))
            if r.below(2) == 0, let e = q.pop() {
                let m = naive.enumerated().min { ($0.1.0, $0.1.1) < ($1.1.0, $1.1.1) }!
                #expect(e.time == m.1.0 && e.seq == m.1.1)
                #expect(e.payload == m.1.1, "payload follows its sequence number")
                naive.remove(at: m.0)
                now = e.time
                pops += 1
            }
            #expect(q.count == naive.count)
            #expect(q.earliestTime == naive.map(\.0).min())
        }
        while let e = q.pop() {
            let m = naive.enumerated().min { ($0.1.0, $0.1.1) < ($1.1.0, $1.1.1) }!
            #expect(e.time == m.1.0 && e.seq == m.1.1)
            naive.remove(at: m.0)
        }
        #expect(naive.isEmpty && q.isEmpty && pops > 1000)
    }

    @Test func interleavedPushPopMatchesSortedOrder() {
        var q = EventQueue<UInt64>()
        var r = WorldRandom(seed: 9)
        var reference: [(UInt64, UInt64)] = []  // (time, seq)
        var out: [(UInt64, UInt64)] = []
        for round in 0..<2000 {
            let t = r.below(50)
            let seq = q.push(at: t, UInt64(round))
            reference.append((t, seq))
            if r.below(3) == 0, let e = q.pop() { out.append((e.time, e.seq)) }
        }
        while let e = q.pop() { out.append((e.time, e.seq)) }
        #expect(out.count == reference.count)
        #expect(Set(out.map(\.1)).count == out.count)
        // Replay against a naive sorted list: every pop must be its minimum.
        var q2 = EventQueue<UInt64>()
        var naive: [(UInt64, UInt64)] = []
        var r2 = WorldRandom(seed: 9)
        for round in 0..<2000 {
            let t = r2.below(50)
            let seq = q2.push(at: t, UInt64(round))
            naive.append((t, seq))
            if r2.below(3) == 0, let e = q2.pop() {
                let m = naive.enumerated().min { ($0.1.0, $0.1.1) < ($1.1.0, $1.1.1) }!
                #expect(e.time == m.1.0 && e.seq == m.1.1)
                naive.remove(at: m.0)
            }
        }
    }
}

@Suite struct RandomTests {
    @Test func sameSeedSameSequence() {
        var a = WorldRandom(seed: 42), b = WorldRandom(seed: 42)
        for _ in 0..<1000 { #expect(a.next() == b.next()) }
    }

    @Test func differentSeedsDiffer() {
        var a = WorldRandom(seed: 1), b = WorldRandom(seed: 2)
        #expect((0..<10).map { _ in a.next() } != (0..<10).map { _ in b.next() })
    }

    @Test func subSeedsAreStableAndDistinct() {
        #expect(WorldRandom.subSeed(7, "network") == WorldRandom.subSeed(7, "network"))
        #expect(WorldRandom.subSeed(7, "network") != WorldRandom.subSeed(7, "disk"))
        #expect(WorldRandom.subSeed(7, "network") != WorldRandom.subSeed(8, "network"))
    }

    @Test func rangesStayInBounds() {
        var r = WorldRandom(seed: 3)
        for _ in 0..<1000 {
            let v = r.inRange(5, 9)
            #expect(v >= 5 && v <= 9)
            #expect(r.below(10) < 10)
        }
        #expect(r.below(0) == 0)
    }

    @Test func fnvKnownValues() {
        #expect(FNV1a64.hash("") == 0xcbf2_9ce4_8422_2325)
        #expect(FNV1a64.hash("a") == 0xaf63_dc4c_8601_ec8c)
        var h = FNV1a64()
        h.put(UInt64(1234))
        #expect(h.value == FNV1a64.hash("1234"))
    }
}

@Suite struct NetworkTests {
    @Test func deliveryIsFIFOPerDirectionDespiteJitter() {
        var n = Network(seed: 5)
        n.defaults = LinkParameters(latencyNanos: 1000, jitterNanos: 5000)
        var last: UInt64 = 0
        for i in 0..<1000 {
            let t = n.arrivalTime(from: 0, to: 1, bytes: 100, now: UInt64(i) * 10)!
            #expect(t >= last)
            #expect(t >= UInt64(i) * 10 + 1000)
            last = t
        }
    }

    @Test func downDirectionDropsAndOtherDirectionStillWorks() {
        var n = Network(seed: 5)
        n.setUp(from: 0, to: 1, false)
        #expect(n.arrivalTime(from: 0, to: 1, bytes: 10, now: 0) == nil)
        #expect(n.arrivalTime(from: 1, to: 0, bytes: 10, now: 0) != nil)
        #expect(!n.isConnected(0, 1))
        n.setAllUp()
        #expect(n.isConnected(0, 1))
    }

    @Test func bandwidthSerialisesMessages() {
        var n = Network(seed: 5)
        n.defaults = LinkParameters(latencyNanos: 0, jitterNanos: 0, bandwidthBytesPerSecond: 1_000_000_000)
        let a = n.arrivalTime(from: 0, to: 1, bytes: 4096, now: 0)!
        let b = n.arrivalTime(from: 0, to: 1, bytes: 4096, now: 0)!
        #expect(a == 4096)
        #expect(b == 8192)
    }
}

@Suite struct DiskTests {
    func pattern(_ v: UInt8, _ sectors: Int) -> [UInt8] { [UInt8](repeating: v, count: sectors * 512) }

    @Test func sparseReadsAndWrites() {
        let d = SimDisk(name: "/dev/sda", sizeSectors: 1000)
        #expect(d.read(offset: 0, length: 4096) == [UInt8](repeating: 0, count: 4096))
        d.write(offset: 512, data: pattern(7, 2))
        let r = d.read(offset: 0, length: 2048)
        #expect(r[0..<512].allSatisfy { $0 == 0 })
        #expect(r[512..<1536].allSatisfy { $0 == 7 })
        #expect(r[1536..<2048].allSatisfy { $0 == 0 })
        // Across a page boundary.
        d.write(offset: 4096 - 512, data: pattern(9, 2))
        #expect(d.read(offset: 4096 - 512, length: 1024).allSatisfy { $0 == 9 })
        #expect(d.writtenPages == [0, 1])
        // A page of zeros is stored as absent.
        d.write(offset: 4096, data: pattern(0, 8))
        #expect(d.writtenPages == [0])
    }

    /// Random multi-page (chunk-sync sized), page and sector writes, zero pages, torn writes at
    /// crashes and reads of any alignment, against a flat byte array.
    @Test func matchesAFlatByteArray() {
        let sectors: UInt64 = 2048  // 1 MiB, 256 pages
        for seed in UInt64(1)...4 {
            let d = SimDisk(name: "/dev/sda", sizeSectors: sectors)
            var model = [UInt8](repeating: 0, count: Int(sectors * 512))
            var r = WorldRandom(seed: seed)
            var nextID: UInt64 = 1
            var pending: [(id: UInt64, offset: Int, data: [UInt8])] = []
            var held: [[UInt8]] = []  // reads kept alive: later writes must not change them
            var heldCopies: [[UInt8]] = []
            for step in 0..<300 {
                let kind = r.below(10)
                let sizeSectors: UInt64 = kind < 3 ? 256 : (kind < 6 ? 8 : 1 + r.below(20))
                let aligned = kind < 6
                let first = aligned ? r.below(sectors / sizeSectors) * sizeSectors : r.below(sectors - sizeSectors)
                let fill = r.below(4) == 0 ? UInt8(0) : UInt8(truncatingIfNeeded: step + 1)
                var data = [UInt8](repeating: fill, count: Int(sizeSectors * 512))
                if fill != 0 { data[0] = UInt8(truncatingIfNeeded: first) }
                switch r.below(6) {
                case 0:
                    // Pending, then lost or torn at a crash (issue order).
                    pending.append((nextID, Int(first * 512), data))
                    d.beginWrite(id: nextID, offset: first * 512, data: data)
                    nextID += 1
                case 1 where !pending.isEmpty:
                    var cr = WorldRandom(seed: seed &* 1000 &+ UInt64(step))
                    var mirror = cr
                    let report = d.crash(random: &cr)
                    for (w, got) in zip(pending, report.writes) {
                        let landed = Int(mirror.inRange(0, UInt64(w.data.count / 512))) * 512
                        #expect(got.landed * 512 == UInt64(landed))
                        model.replaceSubrange(w.offset..<(w.offset + landed), with: w.data[0..<landed])
                    }
                    pending.removeAll()
                default:
                    d.write(offset: first * 512, data: data)
                    model.replaceSubrange(Int(first * 512)..<Int((first + sizeSectors) * 512), with: data)
                }
                // Reads: whole chunks, single pages, arbitrary ranges.
                let readSectors: UInt64 = [256, 8, 1 + r.below(40)][Int(r.below(3))]
                let at = r.below(3) < 2 ? r.below(sectors / readSectors) * readSectors : r.below(sectors - readSectors)
                let got = d.read(offset: at * 512, length: readSectors * 512)
                #expect(got[...] == model[Int(at * 512)..<Int((at + readSectors) * 512)], "seed \(seed) step \(step)")
                if r.below(20) == 0 { held.append(got); heldCopies.append(Array(got)) }
            }
            for (h, c) in zip(held, heldCopies) { #expect(h == c) }
            // Written pages: exactly those holding a non-zero byte (all-zero pages written whole
            // are absent; a page zeroed piecewise may stay).
            let pb = Int(SimDisk.pageBytes)
            let written = Set(d.writtenPages)
            for p in 0..<(model.count / pb) where model[(p * pb)..<((p + 1) * pb)].contains(where: { $0 != 0 }) {
                #expect(written.contains(UInt64(p)), "seed \(seed) page \(p)")
            }
        }
    }

    /// Chunk-sync copies between disks sharing `ReadOrigins` (a multi-page read written on
    /// another disk, or the same one elsewhere, stores the source's pages): against two flat byte
    /// arrays, with partial overwrites of shared pages on either side, zero chunks, torn copies
    /// at crashes, buffers built elsewhere and reads of any alignment spanning copied ranges.
    @Test func chunkCopiesBetweenDisksMatchFlatByteArrays() {
        let sectors: UInt64 = 2048  // 1 MiB, 256 pages
        let origins = ReadOrigins()
        for seed in UInt64(1)...3 {
            let disks = [SimDisk(name: "/dev/sda", sizeSectors: sectors, origins: origins),
                         SimDisk(name: "/dev/sdb", sizeSectors: sectors, origins: origins)]
            var models = [[UInt8]](repeating: [UInt8](repeating: 0, count: Int(sectors * 512)), count: 2)
            var r = WorldRandom(seed: seed)
            var nextID: UInt64 = 1
            var pending: [(disk: Int, id: UInt64, offset: Int, data: [UInt8])] = []
            var held: [([UInt8], [UInt8])] = []  // reads kept alive, with a copy
            func check(_ x: Int, _ at: UInt64, _ n: UInt64, _ why: String) {
                let got = disks[x].read(offset: at * 512, length: n * 512)
                #expect(got[...] == models[x][Int(at * 512)..<Int((at + n) * 512)], "seed \(seed) \(why)")
                if r.below(16) == 0 { held.append((got, Array(got))) }
            }
            for step in 0..<250 {
                let x = Int(r.below(2))
                switch r.below(8) {
                case 0, 1, 2:
                    // A copy: whole pages read from one disk, written on either.
                    let pages = [32, 2, 1 + r.below(40)][Int(r.below(3))]
                    let from = r.below(256 - pages + 1) * 8
                    let y = Int(r.below(2))
                    let to = r.below(3) == 0 ? r.below(256 - pages + 1) * 8 : from
                    let data = disks[x].read(offset: from * 512, length: pages * 4096)
                    #expect(data[...] == models[x][Int(from * 512)..<Int((from + pages * 8) * 512)], "seed \(seed) step \(step)")
                    if r.below(4) == 0 {
                        pending.append((y, nextID, Int(to * 512), data))
                        disks[y].beginWrite(id: nextID, offset: to * 512, data: data)
                        if r.below(2) == 0 {
                            disks[y].completeWrite(id: nextID)
                            models[y].replaceSubrange(Int(to * 512)..<Int(to * 512) + data.count, with: data)
                            pending.removeLast()
                        }
                        nextID += 1
                    } else {
                        disks[y].write(offset: to * 512, data: data)
                        models[y].replaceSubrange(Int(to * 512)..<Int(to * 512) + data.count, with: data)
                    }
                case 3 where !pending.isEmpty:
                    // Power loss on one disk: its pending copies are lost or torn.
                    let mine = pending.filter { $0.disk == x }
                    var cr = WorldRandom(seed: seed &* 1000 &+ UInt64(step))
                    var mirror = cr
                    let report = disks[x].crash(random: &cr)
                    #expect(report.writes.count == mine.count)
                    for w in mine {
                        let landed = Int(mirror.inRange(0, UInt64(w.data.count / 512))) * 512
                        models[x].replaceSubrange(w.offset..<(w.offset + landed), with: w.data[0..<landed])
                    }
                    pending.removeAll { $0.disk == x }
                default:
                    // A fresh write: chunk, page, sectors or unaligned; zeros now and then.
                    let kind = r.below(10)
                    let size: UInt64 = kind < 2 ? 256 : (kind < 6 ? 8 : 1 + r.below(20))
                    let first = kind < 6 ? r.below(sectors / size) * size : r.below(sectors - size)
                    let fill = r.below(4) == 0 ? UInt8(0) : UInt8(truncatingIfNeeded: step + 1)
                    var data = [UInt8](repeating: fill, count: Int(size * 512))
                    if fill != 0 { data[0] = UInt8(truncatingIfNeeded: first) }
                    disks[x].write(offset: first * 512, data: data)
                    models[x].replaceSubrange(Int(first * 512)..<Int((first + size) * 512), with: data)
                }
                let n: UInt64 = [256, 8, 1 + r.below(40)][Int(r.below(3))]
                let at = r.below(3) < 2 ? r.below(sectors / n) * n : r.below(sectors - n)
                check(Int(r.below(2)), at, n, "step \(step)")
            }
            for x in 0..<2 { check(x, 0, sectors, "whole disk \(x)") }
            for (h, c) in held { #expect(h == c, "seed \(seed): a buffer read earlier changed") }
        }
    }

    @Test func aChunkOfZerosIsSharedAndWipesWhatItCovers() {
        let origins = ReadOrigins()
        let a = SimDisk(name: "/dev/sda", sizeSectors: 1024, origins: origins)
        let b = SimDisk(name: "/dev/sdb", sizeSectors: 1024, origins: origins)
        let z1 = a.read(offset: 0, length: 131072)
        let z2 = a.read(offset: 131072, length: 131072)
        #expect(z1.allSatisfy { $0 == 0 } && z1 == z2)
        #expect(z1.withUnsafeBytes { $0.baseAddress } == z2.withUnsafeBytes { $0.baseAddress })
        b.write(offset: 0, data: pattern(3, 512))
        b.write(offset: 131072, data: z1)
        #expect(b.writtenPages == Array(0..<32))
        #expect(b.read(offset: 131072 - 512, length: 1024) == pattern(3, 1) + pattern(0, 1))
    }

    @Test func aCopiedChunkSharesPagesAndStaysPutWhenTheSourceChanges() {
        let origins = ReadOrigins()
        let a = SimDisk(name: "/dev/sda", sizeSectors: 1024, origins: origins)
        let b = SimDisk(name: "/dev/sdb", sizeSectors: 1024, origins: origins)
        for p in 0..<32 where p % 3 != 0 { a.write(offset: UInt64(p) * 4096, data: pattern(UInt8(p), 8)) }
        let chunk = a.read(offset: 0, length: 131072)
        b.write(offset: 0, data: chunk)
        #expect(b.writtenPages == a.writtenPages)
        for p in 0..<32 {
            let pa = a.read(offset: UInt64(p) * 4096, length: 4096)
            let pb = b.read(offset: UInt64(p) * 4096, length: 4096)
            #expect(pa == pb)
            if p % 3 != 0 { #expect(pa.withUnsafeBytes { $0.baseAddress } == pb.withUnsafeBytes { $0.baseAddress }) }
        }
        // Partial overwrites on either side change that side only.
        a.write(offset: 4096 + 512, data: pattern(0xAA, 1))
        b.write(offset: 2 * 4096, data: pattern(0xBB, 2))
        #expect(b.read(offset: 4096, length: 4096) == pattern(1, 8))
        #expect(a.read(offset: 2 * 4096, length: 4096) == pattern(2, 8))
        #expect(a.read(offset: 4096, length: 4096) == pattern(1, 1) + pattern(0xAA, 1) + pattern(1, 6))
        #expect(b.read(offset: 2 * 4096, length: 4096) == pattern(0xBB, 2) + pattern(2, 6))
        #expect(chunk != a.read(offset: 0, length: 131072))
        #expect(Array(chunk[4096..<8192]) == pattern(1, 8))
    }

    @Test func completedWritesSurviveACrash() {
        let d = SimDisk(name: "/dev/sda", sizeSectors: 1000)
        d.beginWrite(id: 1, offset: 0, data: pattern(1, 8))
        #expect(d.completeWrite(id: 1))
        var r = WorldRandom(seed: 1)
        d.crash(random: &r)
        #expect(d.read(offset: 0, length: 4096).allSatisfy { $0 == 1 })
    }

    @Test func pendingWritesAreLostOrTornToASectorPrefix() {
        var sawLost = false, sawTorn = false, sawWhole = false
        for seed in UInt64(0)..<64 {
            let d = SimDisk(name: "/dev/sda", sizeSectors: 1000)
            d.beginWrite(id: 1, offset: 0, data: pattern(5, 8))
            var r = WorldRandom(seed: seed)
            let report = d.crash(random: &r)
            #expect(report.writes.count == 1)
            let landed = Int(report.writes[0].landed)
            let data = d.read(offset: 0, length: 4096)
            #expect(data[0..<(landed * 512)].allSatisfy { $0 == 5 })
            #expect(data[(landed * 512)...].allSatisfy { $0 == 0 })
            if landed == 0 { sawLost = true } else if landed == 8 { sawWhole = true } else { sawTorn = true }
            #expect(d.pendingWriteCount == 0)
            #expect(!d.completeWrite(id: 1))  // its completion never arrives
        }
        #expect(sawLost && sawTorn && sawWhole)
    }

    @Test func metadataAppliesOnCompletionAndPendingIsLostAtCrash() {
        let d = SimDisk(name: "/dev/sda", sizeSectors: 409600)
        let state = DurablePoolState(poolName: "p", poolUUID: PoolUUID(high: 1, low: 2), member: 42, chunkBytes: 131072,
                                     mappedSectors: 204800, deviceSectors: 409600)
        d.beginMetadata(id: 1, .format(state))
        #expect(d.metadata == nil)
        d.completeMetadata(id: 1)
        #expect(d.metadata == state)
        d.beginMetadata(id: 2, .persist(PersistRecord([.setDirty(member: 43, chunks: [3, 5])])))
        d.completeMetadata(id: 2)
        #expect(d.metadata?.map(for: 43)?.dirtyCount == 2)
        d.beginMetadata(id: 3, .persist(PersistRecord([.setDirty(member: 43, chunks: [7])])))
        d.beginMetadata(id: 4, .wipe)
        var r = WorldRandom(seed: 1)
        let report = d.crash(random: &r)
        #expect(report.lostMetadataOperations == 2)
        #expect(d.metadata?.map(for: 43)?.dirtyCount == 2)
        d.beginMetadata(id: 5, .wipe)
        d.completeMetadata(id: 5)
        #expect(d.metadata == nil)
    }

    @Test func injectedErrors() {
        let d = SimDisk(name: "/dev/sda", sizeSectors: 100)
        d.failNext = 2
        #expect(d.takeInjectedError(at: 0))
        #expect(d.takeInjectedError(at: 0))
        #expect(!d.takeInjectedError(at: 0))
        d.failUntil = 100
        #expect(d.takeInjectedError(at: 99))
        #expect(!d.takeInjectedError(at: 100))
    }
}

@Suite struct DataModelTests {
    @Test func patternRoundTrips() {
        let data = SectorPattern.make(lba: 80, sectors: 8, version: 12345)
        data.withUnsafeBytes { raw in
            for i in 0..<8 {
                let d = SectorPattern.decode(raw, at: i * 512)
                #expect(d?.lba == 80 + UInt64(i))
                #expect(d?.version == 12345)
            }
        }
        let zeros = [UInt8](repeating: 0, count: 512)
        zeros.withUnsafeBytes { #expect(SectorPattern.decode($0, at: 0)?.version == 0) }
    }

    /// One changed byte anywhere in a sector (a torn or corrupted sector) makes it
    /// unrecognisable, for a written sector and for a sector of zeros.
    @Test func anyChangedByteMakesASectorUnrecognisable() {
        let written = SectorPattern.make(lba: 3, sectors: 1, version: 77)
        let zeros = [UInt8](repeating: 0, count: 512)
        for sector in [written, zeros] {
            for i in 0..<512 {
                var bad = sector
                bad[i] ^= 0x40
                bad.withUnsafeBytes { #expect(SectorPattern.decode($0, at: 0) == nil, "byte \(i) changed") }
            }
        }
    }

    @Test func readMustReturnLastAcknowledgedWrite() {
        let m = DataModel(device: "brmr0", sectors: 64)
        let v1 = m.beginWrite(tag: 1, firstSector: 8, count: 8)
        m.endWrite(tag: 1, ok: true)
        let v2 = m.beginWrite(tag: 2, firstSector: 8, count: 8)
        m.endWrite(tag: 2, ok: true)
        m.beginRead(tag: 3, firstSector: 8, count: 8)
        #expect(m.endRead(tag: 3, data: v2) == nil)
        m.beginRead(tag: 4, firstSector: 8, count: 8)
        let violation = m.endRead(tag: 4, data: v1)
        #expect(violation != nil)
        #expect(violation?.sector == 8)
        // Never written: zeros.
        m.beginRead(tag: 5, firstSector: 0, count: 8)
        #expect(m.endRead(tag: 5, data: [UInt8](repeating: 0, count: 4096)) == nil)
    }

    @Test func concurrentAndFailedWritesAreAllowedValues() {
        let m = DataModel(device: "brmr0", sectors: 64)
        let old = m.beginWrite(tag: 1, firstSector: 0, count: 8)
        m.endWrite(tag: 1, ok: true)
        m.beginRead(tag: 2, firstSector: 0, count: 8)
        let racing = m.beginWrite(tag: 3, firstSector: 0, count: 8)  // issued during the read
        #expect(m.endRead(tag: 2, data: racing) == nil)
        m.endWrite(tag: 3, ok: false)  // EIO: indeterminate
        m.beginRead(tag: 4, firstSector: 0, count: 8)
        #expect(m.endRead(tag: 4, data: racing) == nil)
        // Linearizable: the failed write was seen, so it counts as done; the old value is gone.
        m.beginRead(tag: 5, firstSector: 0, count: 8)
        let flip = m.endRead(tag: 5, data: old)
        #expect(flip != nil)
        #expect(flip?.detail.contains("the legs disagree") == true)
        let newer = m.beginWrite(tag: 6, firstSector: 0, count: 8)
        m.endWrite(tag: 6, ok: true)
        m.beginRead(tag: 7, firstSector: 0, count: 8)
        #expect(m.endRead(tag: 7, data: racing) != nil)  // superseded by an acknowledged write
        m.beginRead(tag: 8, firstSector: 0, count: 8)
        #expect(m.endRead(tag: 8, data: newer) == nil)
    }

    /// A write already in flight when a read starts may show on the sectors it covers, and only
    /// there: the other sectors must hold the acknowledged version.
    @Test func aWriteInFlightBeforeTheReadIsAllowedOnlyWhereItOverlaps() {
        let m = DataModel(device: "brmr0", sectors: 64)
        let old = m.beginWrite(tag: 1, firstSector: 0, count: 16)
        m.endWrite(tag: 1, ok: true)
        let inFlight = m.beginWrite(tag: 2, firstSector: 4, count: 8)  // sectors 4..<12, not done
        let newVersion = inFlight.withUnsafeBytes { SectorPattern.decode($0, at: 0)!.version }
        let mixed = Array(old[0..<2048]) + inFlight + Array(old[6144..<8192])
        m.beginRead(tag: 3, firstSector: 0, count: 16)
        #expect(m.endRead(tag: 3, data: mixed) == nil)
        m.beginRead(tag: 4, firstSector: 0, count: 16)
        #expect(m.endRead(tag: 4, data: old) == nil)  // or not yet
        // The same version on sector 12, which the write does not cover, is wrong.
        var beyond = mixed
        beyond.replaceSubrange(6144..<6656, with: SectorPattern.make(lba: 12, sectors: 1, version: newVersion))
        m.beginRead(tag: 5, firstSector: 0, count: 16)
        let violation = m.endRead(tag: 5, data: beyond)
        #expect(violation?.sector == 12)
        #expect(violation?.actual == newVersion)
        #expect(violation?.expected.contains(newVersion) == false)
    }

    /// A write in doubt that a read did not show never happened: later reads may not show it.
    @Test func aWriteInDoubtThatAReadDidNotShowNeverHappened() {
        let m = DataModel(device: "brmr0", sectors: 64)
        let old = m.beginWrite(tag: 1, firstSector: 8, count: 8)
        m.endWrite(tag: 1, ok: true)
        let cut = m.beginWrite(tag: 2, firstSector: 8, count: 8)
        m.clientCrashed()  // `cut` reached some legs, maybe
        m.beginRead(tag: 3, firstSector: 8, count: 8)
        #expect(m.endRead(tag: 3, data: old) == nil)
        m.beginRead(tag: 4, firstSector: 8, count: 8)
        #expect(m.endRead(tag: 4, data: cut) != nil)
        m.beginRead(tag: 5, firstSector: 8, count: 8)
        #expect(m.endRead(tag: 5, data: old) == nil)
    }

    @Test func tornSectorsAreCheckedOneByOne() {
        let m = DataModel(device: "brmr0", sectors: 64)
        let a = m.beginWrite(tag: 1, firstSector: 0, count: 8)
        m.endWrite(tag: 1, ok: true)
        let b = m.beginWrite(tag: 2, firstSector: 0, count: 8)
        m.clientCrashed()  // b is now indeterminate
        var torn = b
        torn.replaceSubrange(2048..<4096, with: a[2048..<4096])
        m.beginRead(tag: 3, firstSector: 0, count: 8)
        #expect(m.endRead(tag: 3, data: torn) == nil)
    }
}

@Suite struct HelperTests {
    @Test func durationsAndSizes() {
        #expect(parseDuration("10s") == 10_000_000_000)
        #expect(parseDuration("250ms") == 250_000_000)
        #expect(parseDuration("40us") == 40_000)
        #expect(parseDuration("1.5s") == 1_500_000_000)
        #expect(parseDuration("abc") == nil)
        #expect(parseSize("4k") == 4096)
        #expect(parseSize("25M") == 25 << 20)
        #expect(parseSize("512") == 512)
        #expect(formatTime(1_234_567_890) == "1.234567s")
    }

    @Test func glob() {
        #expect(globMatch("member 43: [*] */800 dirty", "member 43: [1 2 3] 3/800 dirty"))
        #expect(!globMatch("member 43: [] 0/800 dirty", "member 43: [1] 1/800 dirty"))
        #expect(globMatch("*", ""))
        #expect(globMatch("a*c", "abbbc"))
        #expect(!globMatch("a*c", "abbbd"))
    }
}

@Suite struct PendingListTests {
    /// Against an array model: removal by id in random order, the survivors in issue order,
    /// through the front skips and both compactions (one entry stays pending throughout).
    @Test func removalsKeepIssueOrder() {
        var list = PendingList<UInt64>()
        var model: [UInt64] = []
        var r = WorldRandom(seed: 5)
        var next: UInt64 = 0
        list.append(next, next * 10); model.append(next); next += 1  // pending to the end
        for _ in 0..<20_000 {
            if r.below(2) == 0 || model.count < 2 {
                list.append(next, next * 10); model.append(next); next += 1
            } else {
                // Mostly near the front (completions come back roughly in order), never entry 0.
                let i = 1 + Int(r.below(UInt64(min(model.count - 1, r.below(4) == 0 ? model.count - 1 : 4))))
                let id = model.remove(at: i)
                #expect(list.remove(id) == id * 10)
                #expect(list.remove(id) == nil, "removed twice")
            }
            #expect(list.count == model.count)
        }
        #expect(list.inOrder == model.map { $0 * 10 })
        #expect(list.remove(next + 1) == nil)
        list.removeAll()
        #expect(list.count == 0 && list.inOrder.isEmpty)
    }
}
