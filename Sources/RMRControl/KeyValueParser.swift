import RMRCore

// Splits a written value into `key=value` tokens (`poolname=p chunk_size=131072 sync=y`).
// Keys may come in any order, separated by runs of ASCII whitespace; every key must be one the
// attribute knows and may appear once. Values are checked later by `ValueParser`.

/// ASCII whitespace, including the "\r\n" grapheme. Non-ASCII spaces are not separators: they
/// stay inside a token and the value checks reject them as non-ASCII.
func isASCIIWhitespace(_ c: Character) -> Bool { c.isASCII && c.isWhitespace }

/// The value as `echo` wrote it, without the surrounding whitespace and trailing newline.
func trimmed(_ text: String) -> String {
    guard let first = text.firstIndex(where: { !isASCIIWhitespace($0) }),
          let last = text.lastIndex(where: { !isASCIIWhitespace($0) }) else { return "" }
    return String(text[first...last])
}

struct KeyValueLine {
    /// The attribute file name, for messages ("in join_pool").
    let attribute: String
    /// The keys this attribute accepts, in the order messages list them.
    let expected: [String]
    /// Lookups only (never iterated).
    private let values: [String: String]

    private var expectedList: String { expected.joined(separator: ", ") }

    /// Parses an already trimmed value.
    static func parse(_ text: String, attribute: String, keys: [String]) throws(RMRError) -> KeyValueLine {
        var values: [String: String] = [:]
        let expectedList = keys.joined(separator: ", ")
        for token in text.split(whereSeparator: isASCIIWhitespace) {
            guard let equals = token.firstIndex(of: "="), equals != token.startIndex else {
                throw RMRError(.EINVAL, "expected key=value in \(attribute), got '\(token)'; keys: \(expectedList)")
            }
            let key = String(token[..<equals])
            let value = String(token[token.index(after: equals)...])
            guard keys.contains(key) else {
                throw RMRError(.EINVAL, "unknown key '\(key)' in \(attribute); expected \(expectedList)")
            }
            guard values[key] == nil else {
                throw RMRError(.EINVAL, "duplicate key '\(key)' in \(attribute)")
            }
            values[key] = value
        }
        return KeyValueLine(attribute: attribute, expected: keys, values: values)
    }

    /// The value of a key the attribute cannot do without.
    func required(_ key: String) throws(RMRError) -> String {
        precondition(expected.contains(key), "\(attribute) does not declare key \(key)")
        guard let value = values[key] else {
            throw RMRError(.EINVAL, "missing key '\(key)' in \(attribute); expected \(expectedList)")
        }
        return value
    }

    /// The value of an optional key, nil when the operator left it out.
    func optional(_ key: String) -> String? {
        precondition(expected.contains(key), "\(attribute) does not declare key \(key)")
        return values[key]
    }
}
