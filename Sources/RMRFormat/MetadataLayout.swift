import RMRCore

/// Where everything lives on a store device, in 4096-byte blocks (Docs/on-disk-format.md):
///
///     block 0                      header copy 0
///     block 1                      header copy 1
///     sector 16 ..                 data region: `dataSectors` sectors (StoreOperation offset 0)
///     metadataStartBlock           checkpoint slot 0: `checkpointSlotBlocks` blocks
///     + checkpointSlotBlocks       checkpoint slot 1
///     + 2 × checkpointSlotBlocks   journal: `journalBlocks` blocks
///     endBlock                     (first block after the metadata)
///
/// The metadata region follows the data region (as in BRMR, notes §7.2), so a device that grows
/// keeps its metadata where it was. The layout is a function of the header's fields alone; the
/// header stores them, so recovery never depends on a size that a journal update may change.
public struct MetadataLayout: Hashable, Sendable {
    public static let blockBytes: UInt64 = 4096
    public static let sectorsPerBlock: UInt64 = 8
    public static let headerCopies = 2
    /// The data region starts after the two header copies.
    public static let dataOffsetSectors: UInt64 = 16
    public static let defaultMaxMembers: UInt32 = 4
    /// 256 blocks = 1 MiB of journal: 256 persists between checkpoints at worst, thousands
    /// when records are batched.
    public static let defaultJournalBlocks: UInt32 = 256
    /// At most this many journal blocks are in flight beyond the first incomplete one; recovery
    /// uses the same bound to tell a crash's torn tail from corruption of acknowledged records.
    public static let defaultJournalWindowBlocks: UInt32 = 32
    /// Fixed part of a checkpoint payload (names, ids, counts) at most this many bytes.
    static let checkpointFixedBytes: UInt64 = 1024
    /// Per encoded chunk set (a map or the intents), besides its bitmap: tag, counts, member.
    static let checkpointPerSetBytes: UInt64 = 32
    /// Longest data region we lay out (2^54 sectors = 8 EiB); keeps the arithmetic in UInt64.
    static let maxDataSectors: UInt64 = 1 << 54

    /// Capacity of the data region: the mapped size at format time.
    public let dataSectors: UInt64
    public let chunkBytes: UInt64
    /// Dirty maps the checkpoint has room for.
    public let maxMembers: UInt32
    public let journalBlocks: UInt32
    public let journalWindowBlocks: UInt32
    public let checkpointSlotBlocks: UInt64

    public init(dataSectors: UInt64, chunkBytes: UInt64,
                maxMembers: UInt32 = MetadataLayout.defaultMaxMembers,
                journalBlocks: UInt32 = MetadataLayout.defaultJournalBlocks,
                journalWindowBlocks: UInt32 = MetadataLayout.defaultJournalWindowBlocks) throws(FormatError) {
        guard dataSectors > 0 else { throw FormatError(.doesNotFit, "mapped_size must be at least one sector") }
        guard dataSectors <= MetadataLayout.maxDataSectors else {
            throw FormatError(.doesNotFit, "mapped_size \(dataSectors) exceeds the largest supported size (\(MetadataLayout.maxDataSectors) sectors)")
        }
        guard chunkBytes.nonzeroBitCount == 1, chunkBytes >= Limits.minChunkBytes, chunkBytes <= Limits.maxChunkBytes else {
            throw FormatError(.doesNotFit, "chunk size \(chunkBytes) is not a power of two between \(Limits.minChunkBytes) and \(Limits.maxChunkBytes)")
        }
        guard maxMembers >= 1, maxMembers <= 16 else {
            throw FormatError(.doesNotFit, "max members \(maxMembers) outside 1...16")
        }
        guard journalBlocks >= 2, journalBlocks <= 1 << 20 else {
            throw FormatError(.doesNotFit, "journal of \(journalBlocks) blocks outside 2...\(1 << 20)")
        }
        guard journalWindowBlocks >= 1, journalWindowBlocks <= journalBlocks else {
            throw FormatError(.doesNotFit, "journal window \(journalWindowBlocks) outside 1...\(journalBlocks)")
        }
        self.dataSectors = dataSectors
        self.chunkBytes = chunkBytes
        self.maxMembers = maxMembers
        self.journalBlocks = journalBlocks
        self.journalWindowBlocks = journalWindowBlocks
        let chunks = (dataSectors * Limits.sectorBytes + chunkBytes - 1) / chunkBytes
        guard chunks <= Limits.maxChunks else {
            throw FormatError(.doesNotFit, "\(chunks) chunks exceed the limit of \(Limits.maxChunks)")
        }
        let payload = MetadataLayout.maxCheckpointPayloadBytes(chunkCount: chunks, maxMembers: maxMembers)
        checkpointSlotBlocks = 1 + (payload + MetadataLayout.blockBytes - 1) / MetadataLayout.blockBytes
    }

    /// The size check of `create_store`: data offset + mapped size + metadata region must fit.
    /// Nothing is written when this throws.
    public static func forDevice(deviceSectors: UInt64, mappedSectors: UInt64, chunkBytes: UInt64,
                                 maxMembers: UInt32 = defaultMaxMembers,
                                 journalBlocks: UInt32 = defaultJournalBlocks,
                                 journalWindowBlocks: UInt32 = defaultJournalWindowBlocks) throws(FormatError) -> MetadataLayout {
        guard mappedSectors <= deviceSectors else {
            throw FormatError(.doesNotFit, "mapped_size \(mappedSectors) larger than device (\(deviceSectors) sectors)")
        }
        let layout = try MetadataLayout(dataSectors: mappedSectors, chunkBytes: chunkBytes, maxMembers: maxMembers,
                                        journalBlocks: journalBlocks, journalWindowBlocks: journalWindowBlocks)
        guard layout.requiredSectors <= deviceSectors else {
            throw FormatError(.doesNotFit, "mapped_size \(mappedSectors) does not fit the device (\(deviceSectors) sectors): "
                + "data offset \(dataOffsetSectors) + mapped_size \(mappedSectors) + padding and metadata "
                + "\(layout.requiredSectors - dataOffsetSectors - mappedSectors) = \(layout.requiredSectors) sectors needed")
        }
        return layout
    }

    /// Upper bound of an encoded checkpoint: each chunk set is stored as runs or as a bitmap,
    /// whichever is smaller, so a bitmap bounds it; `maxMembers` maps plus the intents.
    public static func maxCheckpointPayloadBytes(chunkCount: UInt64, maxMembers: UInt32) -> UInt64 {
        checkpointFixedBytes + UInt64(maxMembers + 1) * ((chunkCount + 7) / 8 + checkpointPerSetBytes)
    }

    public var chunkCount: UInt64 { (dataSectors * Limits.sectorBytes + chunkBytes - 1) / chunkBytes }
    public var dataOffsetBytes: UInt64 { MetadataLayout.dataOffsetSectors * Limits.sectorBytes }
    public var dataBytes: UInt64 { dataSectors * Limits.sectorBytes }
    /// First metadata block: the end of the data region rounded up to a block.
    public var metadataStartBlock: UInt64 {
        (MetadataLayout.dataOffsetSectors + dataSectors + MetadataLayout.sectorsPerBlock - 1) / MetadataLayout.sectorsPerBlock
    }
    public func checkpointSlotStartBlock(_ slot: Int) -> UInt64 {
        precondition(slot == 0 || slot == 1, "checkpoint slot \(slot)")
        return metadataStartBlock + UInt64(slot) * checkpointSlotBlocks
    }
    public var journalStartBlock: UInt64 { metadataStartBlock + 2 * checkpointSlotBlocks }
    public func journalBlock(_ position: UInt32) -> UInt64 {
        precondition(position < journalBlocks, "journal position \(position) of \(journalBlocks)")
        return journalStartBlock + UInt64(position)
    }
    public var endBlock: UInt64 { journalStartBlock + UInt64(journalBlocks) }
    /// The smallest device (in sectors) that holds this layout.
    public var requiredSectors: UInt64 { endBlock * MetadataLayout.sectorsPerBlock }
    public var metadataBlocks: UInt64 { endBlock - metadataStartBlock }
}
