import RMRCore

// A simulated block device: a sparse in-memory data region plus the pool metadata the core
// asked to make durable, with a crash model.
//
// Durability model:
//   * A data write is durable once its completion is delivered (`completeWrite`). Until then it
//     is pending; at a crash each pending write is lost, torn (a random prefix of its 512-byte
//     sectors lands) or lands whole.
//   * Metadata (`formatStore`, `persist`, `wipeStore`) takes effect when its completion is
//     delivered; completions for one disk are delivered in issue order (the world schedules
//     them FIFO). At a crash pending metadata operations are lost.
// Offsets are relative to the store's data region (StoreOperation's convention).

public enum MetadataOperation: Sendable {
    case persist(PersistRecord)
    case format(DurablePoolState)
    case wipe
}

/// What a crash did to the pending operations of one disk.
public struct DiskCrashReport: Sendable, Equatable {
    /// (offset, sectors that landed, sectors in the write) per pending data write, issue order.
    public var writes: [(offset: UInt64, landed: UInt64, total: UInt64)]
    public var lostMetadataOperations: Int
    public static func == (a: DiskCrashReport, b: DiskCrashReport) -> Bool {
        a.lostMetadataOperations == b.lostMetadataOperations && a.writes.count == b.writes.count
            && zip(a.writes, b.writes).allSatisfy { $0.offset == $1.offset && $0.landed == $1.landed && $0.total == $1.total }
    }
}

public final class SimDisk {
    public static let pageBytes: UInt64 = 4096
    public let name: String
    public let sizeSectors: UInt64
    /// The durable RMR metadata (nil: the disk carries none).
    public internal(set) var metadata: DurablePoolState?
    /// Completion latency: base + uniform jitter, per operation.
    public var latencyNanos: UInt64 = 100_000
    public var jitterNanos: UInt64 = 50_000
    /// Injected faults: the next `failNext` data operations fail with EIO; so does every data
    /// operation completing before `failUntil`.
    public var failNext: Int = 0
    public var failUntil: UInt64 = 0
    /// When the last metadata completion is scheduled (keeps them in issue order).
    public var lastMetadataCompletion: UInt64 = 0
    /// Fuzzer fault: at a crash a random prefix of the pending metadata operations lands
    /// (written but not yet acknowledged) instead of all being lost.
    public var metadataPrefixLandsAtCrash = false

    private var pages: [UInt64: [UInt8]] = [:]
    private var pendingWrites: [(id: UInt64, offset: UInt64, data: [UInt8])] = []
    private var pendingMetadata: [(id: UInt64, op: MetadataOperation)] = []

    public init(name: String, sizeSectors: UInt64) {
        self.name = name
        self.sizeSectors = sizeSectors
    }

    // MARK: - Direct access (durable state)

    /// Applies a write immediately (used at completion and for torn writes).
    public func write(offset: UInt64, data: [UInt8]) {
        let pb = SimDisk.pageBytes
        if offset % pb == 0 && UInt64(data.count) == pb {
            // The common 4 KiB case shares the buffer; a page of zeros is stored as absent.
            if SimDisk.isZero(data, 0, Int(pb)) { pages.removeValue(forKey: offset / pb) } else { pages[offset / pb] = data }
            return
        }
        var done: UInt64 = 0
        let total = UInt64(data.count)
        while done < total {
            let at = offset + done
            let page = at / pb
            let inPage = at % pb
            let n = min(pb - inPage, total - done)
            if n == pb {
                // A whole page: a fresh buffer (one copy), or absent if it is zeros.
                if SimDisk.isZero(data, Int(done), Int(pb)) {
                    pages.removeValue(forKey: page)
                } else {
                    pages[page] = data.withUnsafeBufferPointer { src in
                        Array(UnsafeBufferPointer(rebasing: src[Int(done)..<Int(done + n)]))
                    }
                }
                done += n
                continue
            }
            var buf = pages.removeValue(forKey: page) ?? [UInt8](repeating: 0, count: Int(pb))
            buf.withUnsafeMutableBytes { dst in
                data.withUnsafeBytes { src in
                    (dst.baseAddress! + Int(inPage)).copyMemory(from: src.baseAddress! + Int(done), byteCount: Int(n))
                }
            }
            pages[page] = buf
            done += n
        }
    }

    static func isZero(_ data: [UInt8], _ from: Int, _ count: Int) -> Bool {
        data.withUnsafeBytes { raw in
            var i = from
            let end = from + count
            while i + 8 <= end {
                if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
                i += 8
            }
            while i < end { if raw[i] != 0 { return false }; i += 1 }
            return true
        }
    }

    /// Reads the data region; never-written bytes are zeros.
    public func read(offset: UInt64, length: UInt64) -> [UInt8] {
        let pb = SimDisk.pageBytes
        if offset % pb == 0 && length == pb {
            return pages[offset / pb] ?? [UInt8](repeating: 0, count: Int(pb))
        }
        var out = [UInt8](repeating: 0, count: Int(length))
        var done: UInt64 = 0
        while done < length {
            let at = offset + done
            let page = at / pb
            let inPage = at % pb
            let n = min(pb - inPage, length - done)
            if let buf = pages[page] {
                out.withUnsafeMutableBytes { dst in
                    buf.withUnsafeBytes { src in
                        (dst.baseAddress! + Int(done)).copyMemory(from: src.baseAddress! + Int(inPage), byteCount: Int(n))
                    }
                }
            }
            done += n
        }
        return out
    }

    /// Indices of pages ever written, ascending.
    public var writtenPages: [UInt64] { pages.keys.sorted() }

    // MARK: - Pending operations

    public func beginWrite(id: UInt64, offset: UInt64, data: [UInt8]) {
        pendingWrites.append((id, offset, data))
    }

    /// Makes a pending write durable. False if the write is unknown (lost in a crash).
    @discardableResult
    public func completeWrite(id: UInt64) -> Bool {
        guard let i = pendingWrites.firstIndex(where: { $0.id == id }) else { return false }
        let w = pendingWrites.remove(at: i)
        write(offset: w.offset, data: w.data)
        return true
    }

    /// Forgets a pending write that failed (nothing lands).
    public func dropWrite(id: UInt64) {
        if let i = pendingWrites.firstIndex(where: { $0.id == id }) { pendingWrites.remove(at: i) }
    }

    public var pendingWriteCount: Int { pendingWrites.count }
    public var pendingMetadataCount: Int { pendingMetadata.count }

    public func beginMetadata(id: UInt64, _ op: MetadataOperation) {
        pendingMetadata.append((id, op))
    }

    /// Applies a pending metadata operation. False if unknown (lost in a crash).
    @discardableResult
    public func completeMetadata(id: UInt64) -> Bool {
        guard let i = pendingMetadata.firstIndex(where: { $0.id == id }) else { return false }
        let m = pendingMetadata.remove(at: i)
        switch m.op {
        case .format(let state):
            metadata = state
        case .wipe:
            metadata = nil
        case .persist(let record):
            if metadata != nil {
                for update in record.updates { metadata!.apply(update) }
            }
        }
        return true
    }

    /// Should the next data operation completing at `now` fail? Consumes one `failNext`.
    public func takeInjectedError(at now: UInt64) -> Bool {
        if now < failUntil { return true }
        if failNext > 0 {
            failNext -= 1
            return true
        }
        return false
    }

    /// Power loss: pending writes are lost or torn, pending metadata operations are lost.
    @discardableResult
    public func crash(random: inout WorldRandom) -> DiskCrashReport {
        var report = DiskCrashReport(writes: [], lostMetadataOperations: pendingMetadata.count)
        if metadataPrefixLandsAtCrash && !pendingMetadata.isEmpty {
            let landed = Int(random.inRange(0, UInt64(pendingMetadata.count)))
            for id in pendingMetadata.prefix(landed).map(\.id) { completeMetadata(id: id) }
            report.lostMetadataOperations = pendingMetadata.count
        }
        for w in pendingWrites {
            let sectors = UInt64(w.data.count) / Limits.sectorBytes
            let landed = random.inRange(0, sectors)
            if landed > 0 {
                write(offset: w.offset, data: Array(w.data[0..<Int(landed * Limits.sectorBytes)]))
            }
            report.writes.append((w.offset, landed, sectors))
        }
        pendingWrites.removeAll()
        pendingMetadata.removeAll()
        lastMetadataCompletion = 0
        return report
    }
}
