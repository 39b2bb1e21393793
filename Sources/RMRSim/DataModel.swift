import RMRCore

// The reference model a workload checks reads against (per 512-byte sector of one device).
//
// Every written sector carries (LBA, version) in its first 24 bytes; versions come from one
// counter per device and only increase. A read of a sector may return:
//   * the version of the last write acknowledged before the read started,
//   * any version of a write that was in flight at some point during the read,
//   * any indeterminate version (a write that failed or was cut off by a client crash) issued
//     after the last acknowledged one, until a newer write is acknowledged.
// Reads are linearizable: once a read of a sector with no write in flight on it has returned a
// version, that version is the sector's value — an indeterminate write it showed counts as done,
// one it did not show never happened — so a later read may not return anything else until a new
// write (legs left different, read in turn, fail here).
// Version 0 means never written (all zeros).

public struct DataViolation: Sendable, CustomStringConvertible {
    public var device: String
    public var sector: UInt64
    public var expected: [UInt64]
    public var actual: UInt64
    public var actualLBA: UInt64
    public var detail: String
    public var description: String {
        "data violation on \(device) sector \(sector) (byte \(sector * 512), 4k block \(sector / 8)): "
            + "expected version \(expected.map(String.init).joined(separator: " or ")), read version \(actual)"
            + (actualLBA != sector ? " from LBA \(actualLBA)" : "") + (detail.isEmpty ? "" : " (\(detail))")
    }
}

public enum SectorPattern {
    static let magic: UInt64 = 0x524d_5253_494d_0001  // "RMRSIM" + 1

    /// Data for `count` sectors starting at `lba`, all with `version`.
    /// (Written in one pass, header then fill per sector, into uninitialised memory: no memset
    /// of the whole buffer first.)
    public static func make(lba: UInt64, sectors: UInt64, version: UInt64) -> [UInt8] {
        let fill = UInt64(UInt8(truncatingIfNeeded: version)) &* 0x0101_0101_0101_0101
        let bytes = Int(sectors * 512)
        guard bytes > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: bytes) { buffer, initialized in
            let raw = UnsafeMutableRawPointer(buffer.baseAddress!)
            for i in 0..<Int(sectors) {
                let sector = raw + i * 512
                sector.storeBytes(of: (lba + UInt64(i)).littleEndian, as: UInt64.self)
                sector.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt64.self)
                sector.storeBytes(of: (magic ^ version ^ (lba + UInt64(i))).littleEndian, toByteOffset: 16, as: UInt64.self)
                for word in stride(from: 24, to: 512, by: 8) { sector.storeBytes(of: fill, toByteOffset: word, as: UInt64.self) }
            }
            initialized = bytes
        }
    }

    /// (lba, version) of one sector; version 0 for an all-zero sector; nil if unrecognisable.
    public static func decode(_ data: UnsafeRawBufferPointer, at base: Int) -> (lba: UInt64, version: UInt64)? {
        let lba = UInt64(littleEndian: data.loadUnaligned(fromByteOffset: base, as: UInt64.self))
        let version = UInt64(littleEndian: data.loadUnaligned(fromByteOffset: base + 8, as: UInt64.self))
        let check = UInt64(littleEndian: data.loadUnaligned(fromByteOffset: base + 16, as: UInt64.self))
        if lba == 0 && version == 0 && check == 0 {
            return filled(data, base + 24, base + 512, with: 0) ? (0, 0) : nil
        }
        guard check == magic ^ version ^ lba else { return nil }
        return filled(data, base + 24, base + 512, with: UInt8(truncatingIfNeeded: version)) ? (lba, version) : nil
    }

    /// Whether bytes [from, to) all hold `fill`, compared a word at a time (`to - from` is a
    /// multiple of 8).
    @inline(__always)
    static func filled(_ data: UnsafeRawBufferPointer, _ from: Int, _ to: Int, with fill: UInt8) -> Bool {
        precondition(from >= 0 && to <= data.count && (to - from) & 7 == 0, "sector outside the buffer")
        let word = UInt64(fill) &* 0x0101_0101_0101_0101
        // 32 bytes a step in vector registers (the word loop did not vectorise: one load, xor
        // and or per 8 bytes), then the words left over.
        let wide = SIMD4<UInt64>(repeating: word)
        var wideDiff = SIMD4<UInt64>()
        var i = from
        while i + 32 <= to {
            wideDiff |= data.loadUnaligned(fromByteOffset: i, as: SIMD4<UInt64>.self) ^ wide
            i += 32
        }
        var diff = wideDiff[0] | wideDiff[1] | wideDiff[2] | wideDiff[3]
        while i < to {
            diff |= data.loadUnaligned(fromByteOffset: i, as: UInt64.self) ^ word
            i += 8
        }
        return diff == 0
    }
}

/// The versions a read in flight may return, per sector of the read: the acknowledged one, then
/// (rarely) versions in doubt or written while the read runs, in the order they became possible.
/// One array per read, not one per sector.
struct AllowedVersions {
    private(set) var acked: [UInt64]
    private var more: [(sector: Int, version: UInt64)] = []

    init(acked: [UInt64]) { self.acked = acked }

    mutating func add(_ sector: Int, _ version: UInt64) { more.append((sector, version)) }

    func contains(_ sector: Int, _ version: UInt64) -> Bool {
        if acked[sector] == version { return true }
        return more.contains { $0.sector == sector && $0.version == version }
    }

    /// Sector `sector`'s allowed versions, in order (for a violation report).
    func versions(_ sector: Int) -> [UInt64] {
        [acked[sector]] + more.filter { $0.sector == sector }.map(\.version)
    }
}

public final class DataModel {
    public let device: String
    public let sectors: UInt64
    public private(set) var nextVersion: UInt64 = 1
    private var acked: [UInt64]
    private var indeterminate: [UInt64: [UInt64]] = [:]
    /// Sectors whose indeterminate writes a read resolved, with the version it showed.
    private var settled: [UInt64: UInt64] = [:]
    // In-flight IOs by workload block tag (sequential integers, one insert and one removal per
    // IO): integer-keyed tables instead of SipHash-hashed dictionaries. Iterations sort the keys.
    private var inflightWrites = IntKeyedTable<UInt64, (first: UInt64, count: UInt64, version: UInt64)>()
    private var inflightReads = IntKeyedTable<UInt64, (first: UInt64, count: UInt64, allowed: AllowedVersions)>()
    public private(set) var writesAcked: UInt64 = 0
    public private(set) var writesFailed: UInt64 = 0
    public private(set) var sectorsVerified: UInt64 = 0
    /// Per sector: the writes in flight (low 31 bits; `hasWriteInFlight` without scanning
    /// `inflightWrites`) and whether it was ever written (`touchedBit`: acked or indeterminate,
    /// for the final verification pass). One array, so a write's bookkeeping touches one cache
    /// line, not two, in a model of a large device.
    private var sectorFlags: [UInt32]
    private static let touchedBit: UInt32 = 1 << 31

    public init(device: String, sectors: UInt64) {
        self.device = device
        self.sectors = sectors
        acked = Array(repeating: 0, count: Int(sectors))
        sectorFlags = Array(repeating: 0, count: Int(sectors))
    }

    /// Starts a write; returns the data to send.
    public func beginWrite(tag: UInt64, firstSector: UInt64, count: UInt64) -> [UInt8] {
        let version = nextVersion
        nextVersion += 1
        inflightWrites[tag] = (firstSector, count, version)
        if !settled.isEmpty { for s in firstSector..<(firstSector + count) { settled[s] = nil } }
        // Reads in flight over these sectors may now see this version.
        // (In place: a copy of the read's entry would make `allowed` copy on write.)
        if !inflightReads.isEmpty { for key in inflightReads.keys.sorted() {
            inflightReads.update(key) { r in
                let lo = max(r.first, firstSector), hi = min(r.first + r.count, firstSector + count)
                guard lo < hi else { return }
                for s in lo..<hi { r.allowed.add(Int(s - r.first), version) }
            }
        } }
        sectorFlags.withUnsafeMutableBufferPointer { n in
            for s in Int(firstSector)..<Int(firstSector + count) { n[s] = (n[s] | DataModel.touchedBit) + 1 }
        }
        return SectorPattern.make(lba: firstSector, sectors: count, version: version)
    }

    public func endWrite(tag: UInt64, ok: Bool) {
        guard let w = inflightWrites.removeValue(forKey: tag) else { return }
        sectorFlags.withUnsafeMutableBufferPointer { n in
            for s in Int(w.first)..<Int(w.first + w.count) { n[s] -= 1 }
        }
        if ok {
            writesAcked += 1
            acked.withUnsafeMutableBufferPointer { a in
                for s in Int(w.first)..<Int(w.first + w.count) where w.version > a[s] { a[s] = w.version }
            }
            if !indeterminate.isEmpty {
                for s in w.first..<(w.first + w.count) {
                    if var list = indeterminate[s] {
                        list.removeAll { $0 < w.version }
                        indeterminate[s] = list.isEmpty ? nil : list
                    }
                }
            }
        } else {
            writesFailed += 1
            for s in w.first..<(w.first + w.count) where w.version > acked[Int(s)] {
                indeterminate[s, default: []].append(w.version)
            }
        }
    }

    public func beginRead(tag: UInt64, firstSector: UInt64, count: UInt64) {
        var allowed = AllowedVersions(acked: Array(acked[Int(firstSector)..<Int(firstSector + count)]))
        if !indeterminate.isEmpty {
            for s in firstSector..<(firstSector + count) {
                if let ind = indeterminate[s] { for v in ind { allowed.add(Int(s - firstSector), v) } }
            }
        }
        // (Only when a write in flight overlaps: the per-sector counts say so without a scan.)
        if hasWriteInFlight(overlapping: firstSector, count: count) {
            for key in inflightWrites.keys.sorted() {
                let w = inflightWrites[key]!
                let lo = max(w.first, firstSector), hi = min(w.first + w.count, firstSector + count)
                guard lo < hi else { continue }
                for s in lo..<hi { allowed.add(Int(s - firstSector), w.version) }
            }
        }
        inflightReads[tag] = (firstSector, count, allowed)
    }

    /// Checks a completed read; nil if every sector is allowed.
    public func endRead(tag: UInt64, data: [UInt8]?) -> DataViolation? {
        guard let r = inflightReads.removeValue(forKey: tag) else { return nil }
        guard let data else { return nil }  // a failed read says nothing about the data
        guard UInt64(data.count) == r.count * 512 else {
            return DataViolation(device: device, sector: r.first, expected: r.count > 0 ? r.allowed.versions(0) : [], actual: 0, actualLBA: r.first,
                                 detail: "read returned \(data.count) bytes for \(r.count * 512)")
        }
        return data.withUnsafeBytes { raw -> DataViolation? in
            for i in 0..<Int(r.count) {
                let lba = r.first + UInt64(i)
                guard let (gotLBA, version) = SectorPattern.decode(raw, at: i * 512) else {
                    return DataViolation(device: device, sector: lba, expected: r.allowed.versions(i), actual: 0, actualLBA: lba,
                                         detail: "sector content is not a workload pattern")
                }
                if version == 0 {
                    if !r.allowed.contains(i, 0) {
                        return DataViolation(device: device, sector: lba, expected: r.allowed.versions(i), actual: 0, actualLBA: lba, detail: "zeros")
                    }
                    continue
                }
                if gotLBA != lba || !r.allowed.contains(i, version) {
                    return DataViolation(device: device, sector: lba, expected: r.allowed.versions(i), actual: version, actualLBA: gotLBA,
                                         detail: settled[lba].map { "an earlier read already returned version \($0) after the writes in doubt: the legs disagree" } ?? "")
                }
            }
            sectorsVerified += r.count
            // Settle what this read showed (sectors with no write in flight now: none could have
            // started during the read and still be running).
            if !indeterminate.isEmpty {
                for i in 0..<Int(r.count) {
                    let s = r.first + UInt64(i)
                    guard indeterminate[s] != nil, sectorFlags[Int(s)] & ~DataModel.touchedBit == 0 else { continue }
                    let v = SectorPattern.decode(raw, at: i * 512)!.version
                    guard v >= acked[Int(s)] else { continue }
                    indeterminate[s] = nil
                    acked[Int(s)] = v
                    settled[s] = v
                }
            }
            return nil
        }
    }

    /// The client died: its in-flight writes become indeterminate, its reads are forgotten.
    public func clientCrashed() {
        for key in inflightWrites.keys.sorted() { endWrite(tag: key, ok: false) }
        inflightReads.removeAll()
    }

    /// Every aligned `regionSectors` region that holds a written sector, ascending.
    public func writtenRegions(regionSectors: UInt64) -> [UInt64] {
        var out: [UInt64] = []
        var s: UInt64 = 0
        while s < sectors {
            let end = min(s + regionSectors, sectors)
            var any = false
            for i in s..<end where sectorFlags[Int(i)] & DataModel.touchedBit != 0 { any = true; break }
            if any { out.append(s) }
            s = end
        }
        return out
    }

    public func hasWriteInFlight(overlapping first: UInt64, count: UInt64) -> Bool {
        let end = min(first + count, sectors)
        guard first < end else { return false }
        return sectorFlags.withUnsafeBufferPointer { n in
            for s in Int(first)..<Int(end) where n[s] & ~DataModel.touchedBit != 0 { return true }
            return false
        }
    }

    public var inflightCount: Int { inflightWrites.count + inflightReads.count }
}
