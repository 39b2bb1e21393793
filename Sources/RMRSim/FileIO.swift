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
    directoryEntries(dir).filter { $0.name.hasSuffix(suffix) }.map { dir + "/" + $0.name }.sorted()
}

/// The entries of `dir` (without "." and ".."), unsorted; empty if it cannot be read.
public func directoryEntries(_ dir: String) -> [(name: String, isDirectory: Bool)] {
    guard let d = opendir(dir) else { return [] }
    defer { closedir(d) }
    var entries: [(name: String, isDirectory: Bool)] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) { ptr in
            ptr.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name == "." || name == ".." { continue }
        entries.append((name, Int32(e.pointee.d_type) == Int32(DT_DIR)))
    }
    return entries
}
