// Little-endian fixed-width fields and LEB128 varints, the two encodings of the format.

private let zeroBlock = [UInt8](repeating: 0, count: 4096)

public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]
    public init(capacity: Int = 64) { bytes = []; bytes.reserveCapacity(capacity) }
    public var count: Int { bytes.count }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { for i in 0..<2 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    public mutating func u32(_ v: UInt32) { for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    public mutating func u64(_ v: UInt64) { for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * i))) } }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    /// Unsigned LEB128: 7 bits per byte, high bit = more. At most 10 bytes for a UInt64.
    public mutating func varint(_ v: UInt64) {
        var x = v
        while x >= 0x80 { bytes.append(UInt8(truncatingIfNeeded: x) | 0x80); x >>= 7 }
        bytes.append(UInt8(x))
    }
    public mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    public mutating func raw(_ b: ArraySlice<UInt8>) { bytes.append(contentsOf: b) }
    /// Length-prefixed UTF-8.
    public mutating func string(_ s: String) {
        let utf8 = Array(s.utf8)
        varint(UInt64(utf8.count))
        raw(utf8)
    }
    public mutating func zeros(_ n: Int) {
        // Appending a slice of a zero block is a memcpy, even unoptimized (debug test builds).
        var left = n
        while left > 0 {
            let k = min(left, zeroBlock.count)
            bytes.append(contentsOf: zeroBlock[0..<k])
            left -= k
        }
    }
    /// Pads with zeros to a multiple of `multiple`.
    public mutating func pad(to multiple: Int) {
        let rem = bytes.count % multiple
        if rem != 0 { zeros(multiple - rem) }
    }
}

/// Reads what `ByteWriter` wrote. Every read checks bounds and fails with `.corrupt`, so a
/// checksummed-but-wrong block (a bug or a collision) never traps the process.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public let end: Int
    /// What is being decoded, for error messages ("journal entry at position 3").
    public let context: String

    public init(_ bytes: [UInt8], offset: Int = 0, end: Int? = nil, context: String) {
        self.bytes = bytes
        self.offset = offset
        self.end = end ?? bytes.count
        self.context = context
    }
    public var remaining: Int { end - offset }
    public var isAtEnd: Bool { offset >= end }

    private func truncated(_ what: String) -> FormatError {
        FormatError(.corrupt, "\(context): truncated while reading \(what) at byte \(offset)")
    }
    public mutating func u8(_ what: String = "u8") throws(FormatError) -> UInt8 {
        guard remaining >= 1 else { throw truncated(what) }
        defer { offset += 1 }
        return bytes[offset]
    }
    private mutating func fixed(_ n: Int, _ what: String) throws(FormatError) -> UInt64 {
        guard remaining >= n else { throw truncated(what) }
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(bytes[offset + i]) << (8 * UInt64(i)) }
        offset += n
        return v
    }
    public mutating func u16(_ what: String = "u16") throws(FormatError) -> UInt16 { UInt16(try fixed(2, what)) }
    public mutating func u32(_ what: String = "u32") throws(FormatError) -> UInt32 { UInt32(try fixed(4, what)) }
    public mutating func u64(_ what: String = "u64") throws(FormatError) -> UInt64 { try fixed(8, what) }
    public mutating func bool(_ what: String = "bool") throws(FormatError) -> Bool {
        let b = try u8(what)
        guard b <= 1 else { throw FormatError(.corrupt, "\(context): \(what) is \(b), expected 0 or 1") }
        return b == 1
    }
    public mutating func varint(_ what: String = "varint") throws(FormatError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try u8(what)
            if shift == 63 && b > 1 { throw FormatError(.corrupt, "\(context): \(what) overflows 64 bits") }
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            guard shift <= 63 else { throw FormatError(.corrupt, "\(context): \(what) longer than 10 bytes") }
        }
    }
    /// A varint that is a count of following items; bounded so a corrupt count cannot make us
    /// allocate gigabytes (each item takes at least `minItemBytes`).
    public mutating func count(_ what: String, minItemBytes: Int = 1) throws(FormatError) -> Int {
        let n = try varint(what)
        guard n <= UInt64(remaining / max(1, minItemBytes)) else {
            throw FormatError(.corrupt, "\(context): \(what) \(n) exceeds the \(remaining) bytes left")
        }
        return Int(n)
    }
    public mutating func raw(_ n: Int, _ what: String = "bytes") throws(FormatError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw truncated(what) }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }
    public mutating func string(_ what: String = "string") throws(FormatError) -> String {
        let n = try count(what)
        let b = try raw(n, what)
        guard let s = String(validating: b, as: UTF8.self) else {
            throw FormatError(.corrupt, "\(context): \(what) is not valid UTF-8")
        }
        return s
    }
    public mutating func skip(_ n: Int) throws(FormatError) { _ = try raw(n, "padding") }
}

/// ZigZag: small negative deltas become small unsigned numbers (chunk lists need not be sorted).
enum ZigZag {
    static func encode(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    static func decode(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }
}
