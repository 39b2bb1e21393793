import Testing
import RMRSim

// The core and the control tree are pure: they import nothing that brings a clock, IO,
// randomness or concurrency. The one module they may import besides each other is CPrefetch,
// a header of cache hints (`__builtin_prefetch`) with no effect on any value.

/// Every `.swift` file under `dir`, recursively.
private func swiftFiles(under dir: String) -> [String] {
    directoryEntries(dir).flatMap { e in
        e.isDirectory ? swiftFiles(under: dir + "/" + e.name) : e.name.hasSuffix(".swift") ? [dir + "/" + e.name] : []
    }.sorted()
}

/// The modules a Swift file imports (`import X`, `@testable import X`, `import struct X.Y`, …).
private func imports(of text: String) -> Set<String> {
    var out = Set<String>()
    for raw in text.split(separator: "\n") {
        let words = raw.split(separator: " ").filter { !$0.hasPrefix("@") }
        guard words.first == "import" || (words.first.map { ["public", "internal", "private", "fileprivate"].contains($0) } == true && words.dropFirst().first == "import") else { continue }
        let rest = words.drop { $0 != "import" }.dropFirst()
        let kinds: Set<Substring> = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
        guard let module = rest.first(where: { !kinds.contains($0) }) else { continue }
        out.insert(String(module.split(separator: ".").first ?? module))
    }
    return out
}

/// C text without its /* ... */ comments.
private func withoutComments(_ text: String) -> String {
    var out: [UInt8] = []
    let b = Array(text.utf8)
    var i = 0, inComment = false
    while i < b.count {
        if !inComment && i + 1 < b.count && b[i] == UInt8(ascii: "/") && b[i + 1] == UInt8(ascii: "*") { inComment = true; i += 2; continue }
        if inComment && i + 1 < b.count && b[i] == UInt8(ascii: "*") && b[i + 1] == UInt8(ascii: "/") { inComment = false; i += 2; continue }
        if !inComment { out.append(b[i]) }
        i += 1
    }
    return String(decoding: out, as: UTF8.self)
}

@Test func coreAndControlImportOnlyPureModules() throws {
    let allowed: [String: Set<String>] = [
        "Sources/RMRCore": ["CPrefetch"],
        "Sources/RMRControl": ["RMRCore"],
    ]
    for (dir, ok) in allowed {
        let files = swiftFiles(under: packageRoot + "/" + dir)
        #expect(files.count > 5, "found the sources of \(dir)")
        for file in files {
            let found = imports(of: try readTextFile(file))
            #expect(found.isSubset(of: ok), "\(file) imports \(found.subtracting(ok).sorted())")
        }
    }
    // CPrefetch is one header of prefetch hints: no includes, nothing but __builtin_prefetch.
    let header = withoutComments(try readTextFile(packageRoot + "/Sources/CPrefetch/prefetch.h"))
    #expect(!header.contains("#include"))
    let calls = header.split(separator: "\n").filter { $0.contains("(") && !$0.contains("static inline") }
    #expect(!calls.isEmpty && calls.allSatisfy { $0.contains("__builtin_prefetch(") }, "\(calls)")
}

@Test func importScannerSeesImports() {
    // The scanner itself: it must find what the test above forbids.
    #expect(imports(of: "import Glibc\n@testable import Foundation\nimport struct Dispatch.DispatchTime\n  // import Nope\nlet x = 1") == ["Glibc", "Foundation", "Dispatch"])
}
