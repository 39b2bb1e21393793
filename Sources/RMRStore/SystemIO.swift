#if canImport(Glibc)
import Glibc
#endif
import CAio
import RMRCore
import RMRFormat

// Synchronous helpers around the device: open, size, aligned buffers, whole-block pread/pwrite.
// The event-loop IO path is in BlockStore; these serve probe, format, wipe and open (recovery).

/// A store error: what failed, with the errno when the kernel said no.
public struct StoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// A system call failed with this errno (libaio's `-errno` is converted here).
        case system(Int32)
        /// The metadata is not usable (RMRFormat said why).
        case format(FormatError.Kind)
        /// The store refuses to write: it would damage the device's contents.
        case refused
        /// The device is opened by another store (advisory lock held).
        case busy
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }

    /// The errno an admin command or IO answers with.
    public var errno: Errno {
        switch kind {
        case .system(let e): return Errno(rawValue: e) ?? .EIO
        case .format(let k): return FormatError(k, "").errno
        case .refused: return .EEXIST
        case .busy: return .EBUSY
        }
    }

    static func system(_ what: String, _ err: Int32) -> StoreError {
        StoreError(.system(err), "\(what): \(errnoText(err))")
    }
    init(_ error: FormatError) { self.init(.format(error.kind), error.message) }
}

/// "EIO (Input/output error)" style text for an errno.
func errnoText(_ err: Int32) -> String {
    let name = Errno(rawValue: err).map { "\($0)" } ?? "errno \(err)"
    return "\(name) (\(String(cString: strerror(err))))"
}

enum Aligned {
    static let alignment = Int(MetadataLayout.blockBytes)
    static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        var p: UnsafeMutableRawPointer?
        let rc = posix_memalign(&p, alignment, max(bytes, alignment))
        // Out of memory for an IO buffer is not recoverable here.
        precondition(rc == 0 && p != nil, "posix_memalign(\(bytes)) failed: \(rc)")
        return p!
    }
}

/// Aligned IO buffers by size class (powers of two from 4 KiB), reused across IOs.
final class BufferPool {
    /// free[k]: buffers of 4096 << k bytes.
    private var free: [[UnsafeMutableRawPointer]] = Array(repeating: [], count: 24)
    /// Buffers kept per class; more are released.
    private let keepPerClass = 512

    static func sizeClass(_ bytes: Int) -> Int {
        var k = 0
        while Aligned.alignment << k < bytes { k += 1 }
        return k
    }
    /// A buffer of at least `bytes`, and its class (give it back with the class).
    func take(_ bytes: Int) -> (UnsafeMutableRawPointer, Int) {
        let k = BufferPool.sizeClass(bytes)
        precondition(k < free.count, "IO buffer of \(bytes) bytes")
        if let p = free[k].popLast() { return (p, k) }
        return (Aligned.allocate(Aligned.alignment << k), k)
    }
    func give(_ p: UnsafeMutableRawPointer, sizeClass k: Int) {
        if free[k].count < keepPerClass { free[k].append(p) } else { Glibc.free(p) }
    }
    deinit { for list in free { for p in list { Glibc.free(p) } } }
}

/// An open device or file.
struct DeviceHandle {
    var fd: Int32
    var sizeBytes: UInt64
    var isBlockDevice: Bool
    /// O_DIRECT alignment of offsets and lengths (logical block size; 512 for files).
    var logicalBlockBytes: UInt64

    var sizeSectors: UInt64 { sizeBytes / Limits.sectorBytes }

    static func open(_ path: String, flags: Int32) throws(StoreError) -> DeviceHandle {
        let fd = Glibc.open(path, flags | O_CLOEXEC)
        if fd < 0 {
            let e = errno
            if e == EINVAL && flags & caio_O_DIRECT != 0 {
                throw StoreError(.system(e), "open \(path): O_DIRECT not supported by this file system (\(errnoText(e)))")
            }
            throw StoreError.system("open \(path)", e)
        }
        var st = stat()
        if fstat(fd, &st) != 0 { let e = errno; Glibc.close(fd); throw StoreError.system("fstat \(path)", e) }
        let isBlock = st.st_mode & S_IFMT == S_IFBLK
        var size: UInt64 = 0
        var logical: UInt64 = 512
        if isBlock {
            var bytes: UInt64 = 0
            if caio_blkgetsize64(fd, &bytes) != 0 { let e = errno; Glibc.close(fd); throw StoreError.system("BLKGETSIZE64 \(path)", e) }
            size = bytes
            var ss: Int32 = 0
            if caio_blksszget(fd, &ss) == 0 && ss > 0 { logical = UInt64(ss) }
        } else {
            size = UInt64(st.st_size)
        }
        return DeviceHandle(fd: fd, sizeBytes: size, isBlockDevice: isBlock, logicalBlockBytes: logical)
    }

    func close() { _ = Glibc.close(fd) }

    /// Reads whole 4 KiB blocks (O_DIRECT needs the aligned bounce buffer).
    func readBlocks(_ first: UInt64, _ count: Int) -> Result<[UInt8], FormatError> {
        let bytes = count * Aligned.alignment
        guard (first + UInt64(count)) * MetadataLayout.blockBytes <= sizeBytes else {
            return .failure(FormatError(.io, "read of blocks \(first)..<\(first + UInt64(count)) beyond the device end"))
        }
        let buf = Aligned.allocate(bytes)
        defer { free(buf) }
        var done = 0
        while done < bytes {
            let n = pread(fd, buf + done, bytes - done, off_t(first * MetadataLayout.blockBytes) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return .failure(FormatError(.io, "read of blocks \(first)..<\(first + UInt64(count)) failed: \(errnoText(errno))"))
            }
            if n == 0 { return .failure(FormatError(.io, "read of block \(first) hit the end of the device")) }
            done += n
        }
        return .success(Array(UnsafeRawBufferPointer(start: buf, count: bytes)))
    }

    /// Writes whole blocks; on an O_DSYNC descriptor the data is durable when this returns.
    func writeBlocks(_ block: UInt64, _ data: [UInt8]) throws(StoreError) {
        let buf = Aligned.allocate(data.count)
        defer { free(buf) }
        data.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: data.count) }
        var done = 0
        while done < data.count {
            let n = pwrite(fd, buf + done, data.count - done, off_t(block * MetadataLayout.blockBytes) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError.system("write of \(data.count / Aligned.alignment) blocks at block \(block)", errno)
            }
            done += n
        }
    }

    func lockExclusive(_ path: String) throws(StoreError) {
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            if e == EWOULDBLOCK { throw StoreError(.busy, "\(path) is in use by another store") }
            throw StoreError.system("flock \(path)", e)
        }
    }
}

/// `sda` for /dev/sda (symlinks resolved), the file name for a file.
func deviceName(_ path: String) -> String {
    var resolved = path
    if let p = realpath(path, nil) {
        resolved = String(cString: p)
        free(p)
    }
    return resolved.split(separator: "/").last.map(String.init) ?? resolved
}
