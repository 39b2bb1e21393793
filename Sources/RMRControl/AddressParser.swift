import RMRCore

// `path=ip:<addr>` of add_sess and reconnect. The guide: "at this stage, username, password,
// portnum, and IPv6 addressing are not supported", so only `ip:` plus an IPv4 dotted quad is
// accepted, and each unsupported form gets its own message.

enum AddressParser {
    /// The dotted quad without the `ip:` prefix (what `HostAddress` holds).
    static func ipv4Path(_ text: String, key: String = "path") throws(RMRError) -> HostAddress {
        let usage = "use \(key)=ip:<IPv4 address>, e.g. ip:192.168.122.80"
        func unsupported(_ what: String) -> RMRError {
            RMRError(.EINVAL, "\(key) '\(text)': \(what) not supported; \(usage)")
        }
        if text.hasPrefix("gid:") { throw unsupported("InfiniBand GID addresses are") }
        guard text.hasPrefix("ip:") else {
            throw RMRError(.EINVAL, "\(key) '\(text)' must start with 'ip:'; \(usage)")
        }
        let address = String(text.dropFirst(3))
        if address.contains("@") { throw unsupported("user names and source addresses ('@') are") }
        let colons = address.filter { $0 == ":" }.count
        if colons >= 2 || address.contains("[") { throw unsupported("IPv6 addresses are") }
        if colons == 1 { throw unsupported("port numbers are") }
        guard isDottedQuad(address) else {
            throw RMRError(.EINVAL, "\(key) '\(text)': '\(address)' is not an IPv4 dotted-quad address; \(usage)")
        }
        return address
    }

    /// Four decimal octets 0…255 without leading zeros (a leading zero reads as octal elsewhere).
    static func isDottedQuad(_ text: String) -> Bool {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return false }
        return octets.allSatisfy { octet in
            guard (1...3).contains(octet.utf8.count),
                  octet.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let value = Int(octet), value <= 255 else { return false }
            return octet == "0" || !octet.hasPrefix("0")
        }
    }
}
