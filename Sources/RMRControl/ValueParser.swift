import RMRCore

// Checks single values of a written line: numbers with their ranges, booleans, modes, names,
// addresses and device paths. Each error names the key (or attribute) and the offending value.

enum ValueParser {
    /// PATH_MAX including the terminating NUL, as the kernel counts it.
    static let maxDevicePathBytes = 4095
    /// Largest sector count whose byte size still fits a UInt64.
    static let maxSectors: UInt64 = UInt64.max / Limits.sectorBytes

    /// A decimal number inside `range`. Only ASCII digits are accepted (no sign, no 0x):
    /// the guide writes every number in decimal.
    static func decimal(_ text: String, key: String, range: ClosedRange<UInt64>) throws(RMRError) -> UInt64 {
        let rangeText = "must be between \(range.lowerBound) and \(range.upperBound)"
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw RMRError(.EINVAL, "\(key) value '\(text)' is not a decimal number")
        }
        guard let number = UInt64(text) else {
            throw RMRError(.ERANGE, "\(key) value \(text) is out of range: \(rangeText)")
        }
        guard range.contains(number) else {
            throw RMRError(.ERANGE, "\(key) value \(number) is out of range: \(rangeText)")
        }
        return number
    }

    /// `chunk_size`: bytes, a power of two from 4 KiB to 1 MiB.
    static func chunkSize(_ text: String) throws(RMRError) -> UInt64 {
        let bytes = try decimal(text, key: "chunk_size", range: Limits.minChunkBytes...Limits.maxChunkBytes)
        guard bytes.nonzeroBitCount == 1 else {
            throw RMRError(.EINVAL, "chunk_size value \(bytes) is not a power of two")
        }
        return bytes
    }

    /// `member_id`: 1…255 (0 means "no member" in the protocol).
    static func memberID(_ text: String) throws(RMRError) -> MemberID {
        MemberID(try decimal(text, key: "member_id", range: 1...UInt64(MemberID.max)))
    }

    /// `mapped_size` / `size`: sectors of 512 bytes, at least one.
    static func sectors(_ text: String, key: String) throws(RMRError) -> UInt64 {
        try decimal(text, key: key, range: 1...maxSectors)
    }

    /// `sync=`: y/n, 1/0, true/false, in any letter case.
    static func boolean(_ text: String, key: String) throws(RMRError) -> Bool {
        switch text.lowercased() {
        case "y", "1", "true": return true
        case "n", "0", "false": return false
        default:  // fail closed: any other spelling is refused
            throw RMRError(.EINVAL, "\(key) value '\(text)' is not a boolean; expected y, n, 1, 0, true or false")
        }
    }

    /// A `mode=` (or `sync` command) value: one of the raw values of `E`.
    static func choice<E: CaseIterable & RawRepresentable>(
        _ text: String, key: String, attribute: String, as: E.Type
    ) throws(RMRError) -> E where E.RawValue == String {
        if let value = E(rawValue: text) { return value }
        let options = E.allCases.map(\.rawValue).joined(separator: " or ")
        throw RMRError(.EINVAL, "bad \(key) '\(text)' for \(attribute); expected \(options)")
    }

    /// Attributes that only accept `1` (pool_enable, leave_pool, remove_store, ...).
    static func one(_ text: String, attribute: String) throws(RMRError) {
        guard text == "1" else {
            throw RMRError(.EINVAL, "\(attribute) accepts only '1', got '\(text)'")
        }
    }

    /// `enable`: `1` enables (or leaves maintenance), `0` enters maintenance.
    static func zeroOrOne(_ text: String, attribute: String) throws(RMRError) -> Bool {
        switch text {
        case "1": return true
        case "0": return false
        default:  // fail closed: any other text is refused
            throw RMRError(.EINVAL, "\(attribute) accepts only '1' or '0', got '\(text)'")
        }
    }

    /// A pool, session or device name: 1…255 bytes of printable ASCII without '/', '=' or
    /// whitespace, and not `.` or `..` (names become directory names and appear inside
    /// `key=value` lines). `source` says where the name came from, for the message.
    static func name(_ text: String, noun: String, source: String) throws(RMRError) -> String {
        func invalid(_ why: String) -> RMRError {
            RMRError(.EINVAL, "invalid \(noun) '\(text)' in \(source): \(why)")
        }
        guard !text.isEmpty else { throw RMRError(.EINVAL, "empty \(noun) in \(source)") }
        guard text.utf8.count <= Limits.maxPoolNameBytes else {
            throw RMRError(.ENAMETOOLONG,
                           "\(noun) in \(source) is \(text.utf8.count) bytes; the limit is \(Limits.maxPoolNameBytes)")
        }
        for byte in text.utf8 {
            if byte >= 0x80 { throw invalid("must be ASCII") }
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || (byte >= 0x0A && byte <= 0x0D) {
                throw invalid("contains whitespace")
            }
            if byte < 0x20 || byte == 0x7F { throw invalid("contains a control character") }
            if byte == UInt8(ascii: "/") { throw invalid("contains '/'") }
            if byte == UInt8(ascii: "=") { throw invalid("contains '='") }
        }
        guard text != ".", text != ".." else { throw invalid("'.' and '..' are not names") }
        return text
    }

    /// `device=`: an absolute path to a block device (`/dev/sda`), printable ASCII.
    static func devicePath(_ text: String) throws(RMRError) -> String {
        func invalid(_ why: String) -> RMRError { RMRError(.EINVAL, "invalid device '\(text)': \(why)") }
        guard !text.isEmpty else { throw RMRError(.EINVAL, "empty device path in device") }
        guard text.utf8.count <= maxDevicePathBytes else {
            throw RMRError(.ENAMETOOLONG, "device path is \(text.utf8.count) bytes; the limit is \(maxDevicePathBytes)")
        }
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw invalid("must be printable ASCII without whitespace")
        }
        guard text.hasPrefix("/") else { throw invalid("must be an absolute path such as /dev/sda") }
        guard !text.hasSuffix("/") else { throw invalid("names a directory, not a device") }
        return text
    }
}
