import Testing
import RMRCore
@testable import RMRFormat

@Suite struct CRC32CTests {
    @Test func knownVectors() {
        // RFC 3720 B.4 and the common check value.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
        #expect(CRC32C.checksum([UInt8]()) == 0)
    }

    @Test func sliceBy8MatchesBitwise() {
        var rng = SplitMix64(seed: 7)
        for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 4096, 4097] {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(CRC32C.checksum(bytes) == CRC32C.checksumBitwise(bytes), "length \(length)")
            // Unaligned start (a slice not starting at index 0).
            if length > 3 {
                let slice = bytes[3...]
                #expect(CRC32C.checksum(slice) == CRC32C.checksumBitwise(Array(slice)))
            }
        }
    }
}

@Suite struct CodingTests {
    @Test func varintsRoundTrip() throws {
        let values: [UInt64] = [0, 1, 127, 128, 255, 16383, 16384, 1 << 32, UInt64.max - 1, UInt64.max]
        var w = ByteWriter()
        for v in values { w.varint(v) }
        var r = ByteReader(w.bytes, context: "test")
        for v in values { #expect(try r.varint() == v) }
        #expect(r.isAtEnd)
        #expect(ZigZag.decode(ZigZag.encode(-5)) == -5)
        #expect(ZigZag.decode(ZigZag.encode(Int64.min)) == Int64.min)
    }

    @Test func truncatedInputIsAnErrorNotATrap() {
        var w = ByteWriter()
        RecordCoding.encode(PersistRecord([.setDirty(member: 2, chunks: [1, 5, 9])]), into: &w)
        for cut in 0..<w.bytes.count {
            var r = ByteReader(Array(w.bytes.prefix(cut)), context: "cut")
            #expect(throws: FormatError.self) { _ = try RecordCoding.decodeRecord(&r) }
        }
    }

    @Test(arguments: [1, 2, 3, 4, 5] as [UInt64])
    func recordsRoundTrip(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var state = Gen.state(deviceSectors: 4096)
        for _ in 0..<300 {
            let (record, after) = Gen.record(&rng, state)
            let bytes = RecordCoding.encode(record)
            var r = ByteReader(bytes, context: "record")
            #expect(try RecordCoding.decodeRecord(&r) == record)
            #expect(r.isAtEnd)
            state = after
        }
    }

    @Test func unsortedChunkListsAndHeaderRoundTrip() throws {
        var h = Gen.state(deviceSectors: 4096).storeHeader
        h.members = [1, 3, 7]
        h.mapVersion = MapVersion(raw: MapVersion.replaceBit | 42)
        let record = PersistRecord([.setDirty(member: 3, chunks: [9, 2, 2, 63, 0]), .header(h),
                                    .removeIntents([5, 1]), .clearIntents, .dropMap(member: 3), .setAllDirty(member: 4)])
        var r = ByteReader(RecordCoding.encode(record), context: "record")
        #expect(try RecordCoding.decodeRecord(&r) == record)
    }

    @Test(arguments: [11, 12, 13] as [UInt64])
    func checkpointsRoundTrip(seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        let layout = try MetadataLayout(dataSectors: 8192, chunkBytes: 4096)
        var state = Gen.state(mappedSectors: 8192, deviceSectors: 20000)
        for i in 0..<200 {
            state = Gen.record(&rng, state, bigChance: 5).1
            let bytes = try CheckpointCoding.encode(state, layout: layout)
            #expect(UInt64(bytes.count) <= MetadataLayout.maxCheckpointPayloadBytes(chunkCount: layout.chunkCount, maxMembers: layout.maxMembers))
            let back = try CheckpointCoding.decode(bytes, context: "checkpoint \(i)")
            #expect(back == state)
        }
    }

    @Test func denseMapsUseTheBitmapAndStayWithinTheBound() throws {
        // Every other chunk dirty: runs would take ~2 bytes per chunk, the bitmap 1 bit.
        let layout = try MetadataLayout(dataSectors: 8192, chunkBytes: 4096)
        var state = Gen.state(mappedSectors: 8192, deviceSectors: 20000)
        for m: MemberID in 1...4 {
            state.apply(.setDirty(member: m, chunks: stride(from: 0, to: layout.chunkCount, by: 2).map { $0 }))
        }
        state.apply(.addIntents(stride(from: 1, to: layout.chunkCount, by: 2).map { $0 }))
        let bytes = try CheckpointCoding.encode(state, layout: layout)
        #expect(UInt64(bytes.count) <= MetadataLayout.maxCheckpointPayloadBytes(chunkCount: layout.chunkCount, maxMembers: 4))
        #expect(try CheckpointCoding.decode(bytes, context: "dense") == state)
    }

    @Test func headerBlockRoundTripsAndSeals() throws {
        let layout = try MetadataLayout(dataSectors: 204800, chunkBytes: 128 * 1024)
        var store = Gen.state(chunkBytes: 128 * 1024, mappedSectors: 204800, deviceSectors: 409600).storeHeader
        store.storeMapped = true
        store.members = [1, 2]
        let h = HeaderBlock(sequence: 7, nonce: 99, deviceSectors: 409600, layout: layout,
                            committedGeneration: 3, committedSlot: 0, store: store)
        let block = try h.encode()
        #expect(block.count == 4096)
        #expect(BlockSeal.classify(block[...], magic: BlockMagic.header) == .sealed)
        #expect(try HeaderBlock.decode(block[...], copy: 1) == h)
        var torn = block
        torn[300] ^= 1
        #expect(BlockSeal.classify(torn[...], magic: BlockMagic.header) == .checksumMismatch)
        #expect(BlockSeal.classify([UInt8](repeating: 0, count: 4096)[...], magic: BlockMagic.header) == .zero)
    }

    @Test func aPoolNameOfTheLimitFitsAndOneMoreIsRefused() throws {
        let layout = try MetadataLayout(dataSectors: 512, chunkBytes: 4096)
        var store = Gen.state(deviceSectors: 4096).storeHeader
        store.poolName = String(repeating: "p", count: Limits.maxPoolNameBytes)
        let h = HeaderBlock(sequence: 1, nonce: 1, deviceSectors: 4096, layout: layout, committedGeneration: 1, committedSlot: 0, store: store)
        #expect(try HeaderBlock.decode(try h.encode()[...], copy: 0).store.poolName == store.poolName)
        var long = h
        long.store.poolName += "p"
        #expect(throws: FormatError.self) { _ = try long.encode() }
    }
}

@Suite struct LayoutTests {
    @Test func mappedSizeLargerThanTheDeviceIsRefusedByName() {
        #expect(throws: FormatError(.doesNotFit, "mapped_size 409600 larger than device (300000 sectors)")) {
            _ = try MetadataLayout.forDevice(deviceSectors: 300000, mappedSectors: 409600, chunkBytes: 128 * 1024)
        }
    }

    @Test func metadataMustFitAfterTheMappedRegion() throws {
        let layout = try MetadataLayout(dataSectors: 204800, chunkBytes: 128 * 1024)
        // Exactly enough: accepted. One sector less: refused, and the message names the sum.
        let fits = try MetadataLayout.forDevice(deviceSectors: layout.requiredSectors, mappedSectors: 204800, chunkBytes: 128 * 1024)
        #expect(fits == layout)
        do {
            _ = try MetadataLayout.forDevice(deviceSectors: layout.requiredSectors - 1, mappedSectors: 204800, chunkBytes: 128 * 1024)
            Issue.record("a device one sector short was accepted")
        } catch {
            #expect(error.kind == .doesNotFit)
            #expect(error.message.contains("data offset 16 + mapped_size 204800"))
            #expect(error.message.contains("= \(layout.requiredSectors) sectors needed"))
        }
    }

    @Test func offsetsAreOrderedAndAligned() throws {
        let l = try MetadataLayout(dataSectors: 204801, chunkBytes: 128 * 1024)
        #expect(l.dataOffsetBytes == 8192)
        #expect(l.metadataStartBlock * 8 >= 16 + 204801)
        #expect(l.checkpointSlotStartBlock(1) == l.checkpointSlotStartBlock(0) + l.checkpointSlotBlocks)
        #expect(l.journalStartBlock == l.checkpointSlotStartBlock(1) + l.checkpointSlotBlocks)
        #expect(l.endBlock == l.journalStartBlock + 256)
        // 100 MiB at 128 KiB chunks: 801 chunks, bitmaps of 101 bytes: a one-block payload.
        #expect(l.checkpointSlotBlocks == 2)
    }

    @Test func badGeometryIsRefused() {
        #expect(throws: FormatError.self) { _ = try MetadataLayout(dataSectors: 0, chunkBytes: 4096) }
        #expect(throws: FormatError.self) { _ = try MetadataLayout(dataSectors: 8, chunkBytes: 3000) }
        #expect(throws: FormatError.self) { _ = try MetadataLayout(dataSectors: 8, chunkBytes: 4096, journalBlocks: 1) }
        #expect(throws: FormatError.self) { _ = try MetadataLayout(dataSectors: 8, chunkBytes: 4096, journalBlocks: 8, journalWindowBlocks: 9) }
    }
}
