#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Plain file access for scenario files and the timeline (no Foundation).

public func readTextFile(_ path: String) throws(SimError) -> String {
    guard let f = fopen(path, "r") else { throw SimError("\(path): cannot open file") }
    defer { fclose(f) }
    var out = ""
    var line: UnsafeMutablePointer<CChar>?
    var cap = 0
    while getline(&line, &cap, f) > 0 {
        if let line { out += String(cString: line) }
    }
    free(line)
    return out
}

public func writeTextFile(_ path: String, _ text: String) throws(SimError) {
    guard let f = fopen(path, "w") else { throw SimError("\(path): cannot create file") }
    defer { fclose(f) }
    _ = text.utf8CString.withUnsafeBufferPointer { buf in fwrite(buf.baseAddress, 1, buf.count - 1, f) }
}

/// Files in `dir` whose name ends in `suffix`, sorted.
public func listFiles(_ dir: String, suffix: String) -> [String] {
    guard let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) { ptr in
            ptr.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name.hasSuffix(suffix) { names.append(dir + "/" + name) }
    }
    return names.sorted()
}
