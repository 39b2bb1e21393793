// Basic vocabulary of the RMR protocol core. Pure: standard library only.
// See Docs/protocol.md for the protocol these types describe.

/// Virtual or real time in nanoseconds. The core never reads a clock: every input carries one.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanos: UInt64
    public init(nanos: UInt64) { self.nanos = nanos }
    public static let zero = Instant(nanos: 0)
    public static func < (a: Instant, b: Instant) -> Bool { a.nanos < b.nanos }
    public static func + (a: Instant, d: Duration) -> Instant { Instant(nanos: a.nanos &+ d.nanos) }
    public func since(_ earlier: Instant) -> Duration {
        Duration(nanos: nanos >= earlier.nanos ? nanos - earlier.nanos : 0)
    }
    public var description: String {
        let ms = nanos / 1_000_000
        let frac = (nanos / 1_000) % 1_000
        let fracText = String(frac)
        return "\(ms).\(String(repeating: "0", count: 3 - fracText.count))\(fracText)ms"
    }
}

/// A span of time in nanoseconds (our own type: the standard `Duration` brings clocks along).
public struct Duration: Comparable, Hashable, Sendable {
    public var nanos: UInt64
    public init(nanos: UInt64) { self.nanos = nanos }
    public static func milliseconds(_ ms: UInt64) -> Duration { Duration(nanos: ms * 1_000_000) }
    public static func seconds(_ s: UInt64) -> Duration { Duration(nanos: s * 1_000_000_000) }
    public static func < (a: Duration, b: Duration) -> Bool { a.nanos < b.nanos }
}

/// Storage member id inside a pool, set by the admin (`member_id=42`). 0 is "no member".
public typealias MemberID = UInt8
/// Index of a chunk inside the mapped volume (byte offset >> chunk shift).
public typealias ChunkIndex = UInt64
/// Address of a host as written in `path=ip:<addr>`.
public typealias HostAddress = String

/// Pool identity made at creation, besides its name (the reference identifies pools by name only).
public struct PoolUUID: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
    public static let none = PoolUUID(high: 0, low: 0)
    public var description: String {
        func hex(_ v: UInt64, _ digits: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, digits - s.count)) + s
        }
        let h = hex(high, 16), l = hex(low, 16)
        let hc = Array(h), lc = Array(l)
        return String(hc[0..<8]) + "-" + String(hc[8..<12]) + "-" + String(hc[12..<16]) + "-"
            + String(lc[0..<4]) + "-" + String(lc[4..<16])
    }
}

/// The pool's map version: low 63 bits monotonic, the top bit flags "this member's store is
/// being replaced" (notes §2.5, §6.11).
public struct MapVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var raw: UInt64
    public init(raw: UInt64) { self.raw = raw }
    public static let initial = MapVersion(raw: 1)
    public static let replaceBit: UInt64 = 1 << 63
    public var counter: UInt64 { raw & ~MapVersion.replaceBit }
    public var isReplacing: Bool { raw & MapVersion.replaceBit != 0 }
    public func incremented() -> MapVersion { MapVersion(raw: (raw & MapVersion.replaceBit) | (counter + 1)) }
    public func withReplace(_ on: Bool) -> MapVersion {
        MapVersion(raw: on ? raw | MapVersion.replaceBit : raw & ~MapVersion.replaceBit)
    }
    /// Versions are ordered by their counter; the replace flag does not make a map newer.
    public static func < (a: MapVersion, b: MapVersion) -> Bool { a.counter < b.counter }
    public var description: String { isReplacing ? "\(counter)+replace" : "\(counter)" }
}

/// Limits. Each is a named constant with a test at the limit (style rule 12).
public enum Limits {
    /// Replication factor: the most legs a pool may have.
    public static let maxLegs = 4
    /// Sector size used by `mapped_size` and `size=` (sectors of 512 bytes).
    public static let sectorBytes: UInt64 = 512
    public static let minChunkBytes: UInt64 = 4096
    public static let maxChunkBytes: UInt64 = 1 << 20
    public static let defaultChunkBytes: UInt64 = 128 * 1024
    /// Largest chunk count a dirty map supports (64 TiB at 128 KiB chunks in the reference;
    /// ours is limited only by UInt64 arithmetic, we keep a generous bound).
    public static let maxChunks: UInt64 = 1 << 40
    /// Per-pool IO queue depth (the reference's RTRS permits).
    public static let defaultQueueDepth = 128
    public static let maxQueueDepth = 512
    /// Background sync in-flight bound (reference `sync_queue_depth`, default 32).
    public static let defaultSyncQueueDepth = 32
    /// Maximum waiters queued on one locked chunk.
    public static let maxWaitersPerChunk = 1024
    /// Map transfer buffer: at most this many runs per SEND_MAP_BUF message.
    public static let maxRunsPerMapBuffer = 4096
    /// Write-intent (activity log) capacity per server pool: hot chunks.
    public static let writeIntentCapacity = 1024
    /// Longest pool name (NAME_MAX in the reference).
    public static let maxPoolNameBytes = 255
}

/// Timing constants of the protocol (notes Appendix A).
public enum Timing {
    public static let recoverInterval = Duration.milliseconds(3000)
    public static let mapCleanDelay = Duration.milliseconds(5000)
    public static let serverCheckMapsInterval = Duration.milliseconds(3000)
    public static let commandTimeout = Duration.milliseconds(30000)
    /// A write-intent (hot) chunk with no write for this long is cleared lazily.
    public static let writeIntentCoolDown = Duration.milliseconds(2000)
}

/// errno values used in answers (Linux numbering, as the sysfs interface reports them).
public enum Errno: Int32, Sendable, Hashable, CustomStringConvertible {
    case EPERM = 1, ENOENT = 2, EIO = 5, EAGAIN = 11, ENOMEM = 12, EBUSY = 16, EEXIST = 17,
         ENODEV = 19, EINVAL = 22, ENOSPC = 28, ERANGE = 34, ENAMETOOLONG = 36, ENOTCONN = 107,
         ETIMEDOUT = 110, EALREADY = 114, ESTALE = 116, ECANCELED = 125
    public var description: String {
        switch self {
        case .EPERM: return "EPERM"
        case .ENOENT: return "ENOENT"
        case .EIO: return "EIO"
        case .EAGAIN: return "EAGAIN"
        case .ENOMEM: return "ENOMEM"
        case .EBUSY: return "EBUSY"
        case .EEXIST: return "EEXIST"
        case .ENODEV: return "ENODEV"
        case .EINVAL: return "EINVAL"
        case .ENOSPC: return "ENOSPC"
        case .ERANGE: return "ERANGE"
        case .ENAMETOOLONG: return "ENAMETOOLONG"
        case .ENOTCONN: return "ENOTCONN"
        case .ETIMEDOUT: return "ETIMEDOUT"
        case .EALREADY: return "EALREADY"
        case .ESTALE: return "ESTALE"
        case .ECANCELED: return "ECANCELED"
        }
    }
}

/// An error answered to an operator or a peer: a code and a sentence naming what is wrong.
public struct RMRError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: Errno
    public var message: String
    public init(_ code: Errno, _ message: String) { self.code = code; self.message = message }
    public var description: String { "\(code): \(message)" }
}

/// Deterministic PRNG owned by a node (style rule 7). Seeded by the driver.
public struct SplitMix64: Sendable, Hashable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0, "SplitMix64.next(below:) needs a positive bound")
        return next() % bound
    }
}

/// Chunk geometry of a pool.
public struct ChunkGeometry: Hashable, Sendable {
    public let chunkBytes: UInt64
    public let chunkShift: UInt64
    public let mappedBytes: UInt64
    public init(chunkBytes: UInt64, mappedBytes: UInt64) {
        precondition(chunkBytes.nonzeroBitCount == 1, "chunk size must be a power of two")
        self.chunkBytes = chunkBytes
        self.chunkShift = UInt64(chunkBytes.trailingZeroBitCount)
        self.mappedBytes = mappedBytes
    }
    public var chunkCount: UInt64 { (mappedBytes + chunkBytes - 1) >> chunkShift }
    public func chunk(ofByte offset: UInt64) -> ChunkIndex { offset >> chunkShift }
    public func firstByte(of chunk: ChunkIndex) -> UInt64 { chunk << chunkShift }
    /// Bytes of `chunk` inside the mapped size (the last chunk may be short).
    public func length(of chunk: ChunkIndex) -> UInt64 {
        let start = firstByte(of: chunk)
        return min(chunkBytes, mappedBytes - start)
    }
}
