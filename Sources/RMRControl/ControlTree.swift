import RMRCore

// The admin interface of the guide (`echo '...' > /sys/class/...`, `cat /sys/class/...`) as
// pure functions: a write becomes a typed `AdminCommand` for the core to validate against its
// state, a read renders a node's views as text. No IO happens here; drivers (the simulator,
// a FUSE or CLI front end) call these and do the rest. Paths: Paths.swift; values:
// KeyValueParser.swift, ValueParser.swift, AddressParser.swift; meanings: WriteCommands.swift;
// text: Render.swift, ReadAttributes.swift.

public enum ControlTree {
    /// Every attribute path pattern of the tree; operator-chosen names appear as the
    /// placeholders `P` (pool), `S` (session) and `DEV` (brmr-client device).
    public static let attributePaths: [String] = Attribute.allCases.map(\.pattern)

    /// A write of `value` to `path`, as `echo value > path` would do it. Surrounding
    /// whitespace (the newline `echo` appends) is ignored. Fails with ENOENT for an unknown
    /// path, EPERM for a read-only attribute, and EINVAL/ERANGE/ENAMETOOLONG for a bad value,
    /// with a message naming the offending key or value.
    public static func parseWrite(path: String, value: String) -> Result<AdminCommand, RMRError> {
        do throws(RMRError) {
            guard let target = AttributePath.resolve(path) else { throw AttributePath.unknownPathError(path) }
            guard target.attribute.access.isWritable else { throw readOnlyError(target) }
            for (placeholder, name) in target.captured {
                _ = try ValueParser.name(name, noun: placeholder.noun, source: "path '\(path)'")
            }
            return .success(try command(for: target, value: trimmed(value)))
        } catch {
            return .failure(error)
        }
    }

    /// A read of `path` on `node`, as `cat path` shows it, without the trailing newline.
    /// Fails with ENOENT for an unknown path or a pool, session, store or device the node does
    /// not have, and EPERM for a write-only attribute.
    public static func read(path: String, node: Node) -> Result<String, RMRError> {
        reader(path: path)(node)
    }

    /// `read(path:node:)` with the path resolved once, for a caller that reads the same file
    /// again and again (a scenario's `wait until ... cat ...` polls it every virtual
    /// millisecond). The same answers, errors included.
    public static func reader(path: String) -> (Node) -> Result<String, RMRError> {
        guard let target = AttributePath.resolve(path) else {
            let e = AttributePath.unknownPathError(path)
            return { _ in .failure(e) }
        }
        guard target.attribute.access.isReadable else {
            let e = writeOnlyError(target)
            return { _ in .failure(e) }
        }
        return { node in
            do throws(RMRError) {
                return .success(try render(target, node: node))
            } catch {
                return .failure(error)
            }
        }
    }
}
