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

    private var pages = PageTable()
    private var pendingWrites = PendingList<(offset: UInt64, data: [UInt8])>()
    private var pendingMetadata: [(id: UInt64, op: MetadataOperation)] = []

    /// Shared by the disks of one world: lets a disk store the pages a multi-page buffer was
    /// read from on another disk instead of copying it (chunk sync).
    let origins: ReadOrigins

    /// `origins`: shared by the disks of one world (`World.addDisk`); a disk on its own gets one
    /// of its own.
    public init(name: String, sizeSectors: UInt64, origins: ReadOrigins = ReadOrigins()) {
        self.name = name
        self.sizeSectors = sizeSectors
        self.origins = origins
    }

    // MARK: - Direct access (durable state)

    /// Applies a write immediately (used at completion and for torn writes).
    public func write(offset: UInt64, data: [UInt8]) {
        let pb = SimDisk.pageBytes
        if offset % pb == 0 && UInt64(data.count) == pb {
            // The common 4 KiB case shares the buffer; a page of zeros is stored as absent.
            if SimDisk.isZero(data, 0, Int(pb)) { pages.remove(offset / pb) } else { pages.set(offset / pb, data) }
            return
        }
        if offset % pb == 0, data.count > Int(pb), let sources = origins.pages(of: data) {
            // A buffer read whole pages at a time (on this or another disk), unchanged since:
            // store the pages it was read from (no copy; the legs then share page buffers).
            let first = offset / pb
            for (i, source) in sources.enumerated() {
                if let source { pages.set(first + UInt64(i), source) } else { pages.remove(first + UInt64(i)) }
            }
            return
        }
        var done: UInt64 = 0
        let total = UInt64(data.count)
        data.withUnsafeBytes { src in
            while done < total {
                let at = offset + done
                let page = at / pb
                let inPage = at % pb
                let n = min(pb - inPage, total - done)
                if n == pb && SimDisk.isZero(src, Int(done), Int(pb)) {
                    // A whole page of zeros is stored as absent.
                    pages.remove(page)
                } else if n == pb && !pages.contains(page) {
                    // A whole new page: a fresh buffer (one copy).
                    pages.set(page, Array(UnsafeRawBufferPointer(rebasing: src[Int(done)..<Int(done + n)])))
                } else {
                    // Into the page's buffer, in place when nothing else holds it.
                    pages.update(page, pageBytes: Int(pb)) { dst in
                        (dst.baseAddress! + Int(inPage)).copyMemory(from: src.baseAddress! + Int(done), byteCount: Int(n))
                    }
                }
                done += n
            }
        }
    }

    static func isZero(_ data: [UInt8], _ from: Int, _ count: Int) -> Bool {
        data.withUnsafeBytes { raw in isZero(raw, from, count) }
    }

    static func isZero(_ raw: UnsafeRawBufferPointer, _ from: Int, _ count: Int) -> Bool {
        var i = from
        let end = from + count
        while i + 32 <= end {
            let a = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) | raw.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self)
            let b = raw.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self) | raw.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self)
            if a | b != 0 { return false }
            i += 32
        }
        while i + 8 <= end {
            if raw.loadUnaligned(fromByteOffset: i, as: UInt64.self) != 0 { return false }
            i += 8
        }
        while i < end { if raw[i] != 0 { return false }; i += 1 }
        return true
    }

    /// The page a never-written page reads as (shared: arrays copy on write).
    static let zeroPage = [UInt8](repeating: 0, count: Int(pageBytes))

    /// Reads the data region; never-written bytes are zeros.
    public func read(offset: UInt64, length: UInt64) -> [UInt8] {
        let pb = SimDisk.pageBytes
        if offset % pb == 0 && length == pb {
            return pages[offset / pb] ?? SimDisk.zeroPage
        }
        if offset % pb == 0 && length % pb == 0 && length > pb {
            return readPages(first: offset / pb, count: Int(length / pb))
        }
        return [UInt8](unsafeUninitializedCapacity: Int(length)) { out, initialized in
            let dst = UnsafeMutableRawBufferPointer(out)
            var done: UInt64 = 0
            while done < length {
                let at = offset + done
                let page = at / pb
                let inPage = at % pb
                let n = min(pb - inPage, length - done)
                if let buf = pages[page] {
                    buf.withUnsafeBytes { src in
                        (dst.baseAddress! + Int(done)).copyMemory(from: src.baseAddress! + Int(inPage), byteCount: Int(n))
                    }
                } else {
                    (dst.baseAddress! + Int(done)).initializeMemory(as: UInt8.self, repeating: 0, count: Int(n))
                }
                done += n
            }
            initialized = Int(length)
        }
    }

    /// Reads whole pages (a chunk sync's read): one shared zero buffer when none holds data,
    /// else one copy, recorded in `origins` with the pages it was assembled from so that a
    /// disk writing this buffer stores those pages instead of copying it again.
    private func readPages(first: UInt64, count: Int) -> [UInt8] {
        var sources: [[UInt8]?] = []
        sources.reserveCapacity(count)
        var any = false
        for i in 0..<count {
            let p = pages[first + UInt64(i)]
            any = any || p != nil
            sources.append(p)
        }
        let pb = Int(SimDisk.pageBytes)
        guard any else { return origins.zeros(count: count * pb) }
        let out = [UInt8](unsafeUninitializedCapacity: count * pb) { out, initialized in
            let dst = UnsafeMutableRawBufferPointer(out)
            for (i, source) in sources.enumerated() {
                if let source {
                    source.withUnsafeBytes { src in (dst.baseAddress! + i * pb).copyMemory(from: src.baseAddress!, byteCount: pb) }
                } else {
                    (dst.baseAddress! + i * pb).initializeMemory(as: UInt8.self, repeating: 0, count: pb)
                }
            }
            initialized = count * pb
        }
        origins.record(out, sources)
        return out
    }

    /// Indices of pages ever written, ascending.
    public var writtenPages: [UInt64] { pages.sortedPages }

    // MARK: - Pending operations

    public func beginWrite(id: UInt64, offset: UInt64, data: [UInt8]) {
        pendingWrites.append(id, (offset, data))
    }

    /// Makes a pending write durable. False if the write is unknown (lost in a crash).
    @discardableResult
    public func completeWrite(id: UInt64) -> Bool {
        guard let w = pendingWrites.remove(id) else { return false }
        write(offset: w.offset, data: w.data)
        return true
    }

    /// Forgets a pending write that failed (nothing lands).
    public func dropWrite(id: UInt64) {
        _ = pendingWrites.remove(id)
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
        for w in pendingWrites.inOrder {
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

/// Where recent multi-page reads came from, shared by the disks of one world.
///
/// Why: recovery copies a chunk from one leg to another. Server A reads 128 KiB, assembled from
/// its 4 KiB pages (one copy), sends it, and server B writes it. Copying that buffer again into
/// 32 fresh pages on B costs a second copy and new memory, and the "legs identical" check then
/// compares the two legs byte by byte. A buffer found here by identity (same storage, same
/// length) still holds exactly what was read, because arrays are values: the entry keeps the
/// buffer alive, so its storage is never reused, and any change to it would copy. B then stores
/// A's page arrays themselves: no copy, and both legs share the page buffers.
///
/// Reads of pages that hold no data return one shared zero buffer per length (the initial full
/// sync reads the whole device), which a writing disk recognises the same way.
///
/// Only an optimisation: a buffer not found (evicted, or built elsewhere) is copied as before,
/// with the same result. Not thread-safe: one world runs on one thread.
public final class ReadOrigins {
    /// Recent reads, round robin: enough for the chunk syncs in flight at once.
    private static let slots = 64
    private var buffers: [[UInt8]] = []
    private var sources: [[[UInt8]?]] = []
    private var addresses: [UInt] = []
    private var next = 0
    /// Shared zero buffers by length: the first few lengths read (a sync reads one chunk size),
    /// none above `maxZeroBytes`, so odd read sizes cannot pile up zero buffers.
    private var zeroBuffers: [Int: [UInt8]] = [:]
    private static let maxZeroBytes = 1 << 20
    private static let maxZeroLengths = 4

    public init() {}

    @inline(__always) static func address(_ a: [UInt8]) -> UInt {
        UInt(bitPattern: a.withUnsafeBufferPointer { $0.baseAddress })
    }

    /// A buffer of `count` zeros, shared between reads of the same length when small enough.
    func zeros(count: Int) -> [UInt8] {
        if let z = zeroBuffers[count] { return z }
        let z = [UInt8](repeating: 0, count: count)
        if count <= ReadOrigins.maxZeroBytes && zeroBuffers.count < ReadOrigins.maxZeroLengths { zeroBuffers[count] = z }
        return z
    }

    /// Remembers that `buffer` holds the given pages in order (nil: a page of zeros).
    func record(_ buffer: [UInt8], _ pages: [[UInt8]?]) {
        if buffers.count < ReadOrigins.slots {
            buffers.append(buffer)
            sources.append(pages)
            addresses.append(ReadOrigins.address(buffer))
        } else {
            buffers[next] = buffer
            sources[next] = pages
            addresses[next] = ReadOrigins.address(buffer)
            next = (next + 1) % ReadOrigins.slots
        }
    }

    /// The pages `buffer` was read from, if it is a recent read or a shared zero buffer.
    func pages(of buffer: [UInt8]) -> [[UInt8]?]? {
        let a = ReadOrigins.address(buffer)
        if let i = addresses.firstIndex(of: a), buffers[i].count == buffer.count { return sources[i] }
        if let z = zeroBuffers[buffer.count], ReadOrigins.address(z) == a {
            return Array(repeating: nil, count: buffer.count / Int(SimDisk.pageBytes))
        }
        return nil
    }
}

/// The pages of a disk holding data (a page of zeros is absent): a two-level table indexed by
/// page number (leaves of 1024 pages, allocated on first use), so a page costs two array
/// indexings instead of a dictionary lookup, and the pages come out in ascending order.
struct PageTable {
    private static let leafShift: UInt64 = 10
    private static let leafMask: UInt64 = (1 << leafShift) - 1
    private var leaves: [[[UInt8]?]] = []

    subscript(page: UInt64) -> [UInt8]? {
        let l = Int(page >> PageTable.leafShift)
        guard l < leaves.count, !leaves[l].isEmpty else { return nil }
        return leaves[l][Int(page & PageTable.leafMask)]
    }

    func contains(_ page: UInt64) -> Bool {
        let l = Int(page >> PageTable.leafShift)
        guard l < leaves.count, !leaves[l].isEmpty else { return false }
        return leaves[l][Int(page & PageTable.leafMask)] != nil
    }

    private mutating func leaf(_ page: UInt64) -> Int {
        let l = Int(page >> PageTable.leafShift)
        if l >= leaves.count { leaves.append(contentsOf: repeatElement([], count: l + 1 - leaves.count)) }
        if leaves[l].isEmpty { leaves[l] = Array(repeating: nil, count: Int(PageTable.leafMask) + 1) }
        return l
    }

    mutating func set(_ page: UInt64, _ data: [UInt8]) {
        let l = leaf(page)
        leaves[l][Int(page & PageTable.leafMask)] = data
    }

    mutating func remove(_ page: UInt64) {
        let l = Int(page >> PageTable.leafShift)
        guard l < leaves.count, !leaves[l].isEmpty else { return }
        leaves[l][Int(page & PageTable.leafMask)] = nil
    }

    /// Changes a page in place (a page of zeros first if absent).
    mutating func update(_ page: UInt64, pageBytes: Int, _ body: (UnsafeMutableRawBufferPointer) -> Void) {
        let l = leaf(page)
        let i = Int(page & PageTable.leafMask)
        if leaves[l][i] == nil { leaves[l][i] = [UInt8](repeating: 0, count: pageBytes) }
        leaves[l][i]!.withUnsafeMutableBytes(body)
    }

    var sortedPages: [UInt64] {
        var out: [UInt64] = []
        for (l, leaf) in leaves.enumerated() where !leaf.isEmpty {
            for (i, p) in leaf.enumerated() where p != nil { out.append(UInt64(l) << PageTable.leafShift | UInt64(i)) }
        }
        return out
    }
}

/// Operations in flight, in issue order, removed by id in any order: a removed entry leaves a
/// hole (no shifting of the entries behind it), the holes at the front are skipped at once
/// and dropped when they are half the list, like holes behind an entry that stays pending. Completions come back roughly in issue order, so
/// the search from the front is short.
struct PendingList<Value> {
    private var entries: [(id: UInt64, value: Value?)] = []
    private var head = 0
    private(set) var count = 0

    mutating func append(_ id: UInt64, _ value: Value) {
        entries.append((id, value))
        count += 1
    }

    /// Removes and returns the entry `id`, nil if there is none.
    mutating func remove(_ id: UInt64) -> Value? {
        var i = head
        while i < entries.count {
            if entries[i].id == id, entries[i].value != nil { break }
            i += 1
        }
        guard i < entries.count else { return nil }
        let v = entries[i].value.take()
        count -= 1
        if count == 0 {
            entries.removeAll(keepingCapacity: true)
            head = 0
            return v
        }
        while head < entries.count && entries[head].value == nil { head += 1 }
        if entries.count - head > 2 * count + 64 {
            // Holes behind a long-pending entry: keep the live entries, in order.
            entries = entries[head...].filter { $0.value != nil }
            head = 0
        } else if head > 64 && head * 2 > entries.count {
            entries.removeFirst(head)
            head = 0
        }
        return v
    }

    /// The entries still pending, in issue order.
    var inOrder: [Value] { entries[head...].compactMap(\.value) }

    mutating func removeAll() {
        entries.removeAll()
        head = 0
        count = 0
    }
}
