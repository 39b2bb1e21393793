import RMRCore

/// Why metadata could not be encoded, laid out or recovered. `message` is the sentence an
/// operator sees (probe reasons, admin errors); `kind` is for code that must react.
public struct FormatError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The disk carries something that is not RMR metadata.
        case foreign
        /// RMR metadata is present but a checksum, sequence or cross-check failed.
        case corrupt
        /// Written by a format version this code does not read.
        case unsupportedVersion
        /// The requested geometry does not fit the device (or violates a limit).
        case doesNotFit
        /// The metadata belongs to another pool or geometry than the command names.
        case mismatch
        /// A value cannot be represented on disk (too long a name, too many maps...).
        case unencodable
        /// The device could not be read or written.
        case io
    }
    public var kind: Kind
    public var message: String
    public init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
    public var description: String { message }

    /// The errno an admin command answers with for this error.
    public var errno: Errno {
        switch kind {
        case .foreign: return .EINVAL
        case .corrupt: return .EIO
        case .unsupportedVersion: return .EINVAL
        case .doesNotFit: return .ENOSPC
        case .mismatch: return .EINVAL
        case .unencodable: return .EINVAL
        case .io: return .EIO
        }
    }
}
