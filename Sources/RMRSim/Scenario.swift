import RMRCore
import RMRControl

// Scenario files: the operator's guide as a script, plus world verbs. See Docs/simulator.md.
//
//   # comment
//   host stg-rmr0 storage ip 192.168.122.80
//   stg-rmr0$ echo 'poolname=ionos_pool member_id=42' > /sys/class/rmr-server/ctl/join_pool
//   stg-rmr0$ cat /sys/class/rmr-server/pools/ionos_pool/state
//     normal
//
// Indented lines after a `cat` step are its expected output (`*` matches any text); a `cat`
// without them is printed but not checked. Every other line is one step.

public struct Step: Sendable {
    public var file: String
    public var line: Int
    public var text: String
    public var kind: StepKind
    public var location: String { "\(file):\(line)" }
}

public enum Comparison: String, Sendable { case equal = "==", notEqual = "!=" }

public enum StepKind: Sendable {
    case host(name: String, role: HostRole, address: String)
    case disk(host: String, device: String, sectors: UInt64)
    case linkParameters(a: String?, b: String?, LinkParameters)
    case setOption(key: String, nanos: UInt64)
    /// `set crash-in-flight N%` | `set write-intent-capacity N` (before the hosts it affects).
    case setCount(key: String, value: UInt64)
    case write(host: String, path: String, value: String, command: AdminCommand)
    case read(host: String, path: String, expected: [String])
    case shellNoop(host: String, command: String)
    case workloadStart(WorkloadSpec)
    case workloadStop(name: String)
    case workloadWait(name: String, within: UInt64)
    case linkDown(String, String)
    case linkUp(String, String)
    case partition(String, String, oneWay: Bool)
    case heal
    case crash(String)
    /// `crash HOST during sync|write within D`: arms a crash and returns at once; the host
    /// crashes while its next chunk-sync write (or write) is in flight, or at the end of D if it
    /// makes none.
    case crashDuring(String, CrashTrigger, within: UInt64)
    case restart(String)
    case diskError(host: String, device: String, count: Int?, duration: UInt64?)
    case replaceDisk(host: String, device: String, sectors: UInt64?)
    case advance(UInt64)
    case waitRead(host: String, path: String, comparison: Comparison, value: String, within: UInt64)
    case waitMapsClean(pool: String, within: UInt64)
    case assertLegsIdentical(pool: String)
    case assertMapsClean(pool: String)
    case assertNoDataLost(host: String, device: String)
    case assertWorkloadErrors(name: String, count: UInt64)
    case expectError(Errno)
    case expectRejection(String)
    case note(String)
}

public struct ParseError: Error, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String
    public var description: String { "\(file):\(line): \(message)" }
}

public struct ParseErrors: Error, Sendable, CustomStringConvertible {
    public var errors: [ParseError]
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

public struct Scenario: Sendable {
    public var name: String
    public var steps: [Step]

    /// Reads and parses a scenario file (and its includes).
    public static func load(path: String) -> Result<Scenario, ParseErrors> {
        let text: String
        do { text = try readTextFile(path) } catch { return .failure(ParseErrors(errors: [ParseError(file: path, line: 0, message: error.message)])) }
        return parse(text: text, file: path)
    }

    public static func parse(text: String, file: String, loader: ((String) -> String?)? = nil) -> Result<Scenario, ParseErrors> {
        var parser = ScenarioParser(loader: loader)
        parser.parse(text: text, file: file, depth: 0)
        if !parser.errors.isEmpty { return .failure(ParseErrors(errors: parser.errors)) }
        var name = file
        if let slash = name.lastIndex(of: "/") { name = String(name[name.index(after: slash)...]) }
        return .success(Scenario(name: name, steps: parser.steps))
    }
}

struct ScenarioParser {
    var steps: [Step] = []
    var errors: [ParseError] = []
    var hosts: [String] = []
    var workloads: [String] = []
    var loader: ((String) -> String?)?

    init(loader: ((String) -> String?)?) { self.loader = loader }

    mutating func parse(text: String, file: String, depth: Int) {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var pendingExpectError = false
        for (i, raw) in lines.enumerated() {
            let lineNo = i + 1
            let line = raw.hasSuffix("\r") ? String(raw.dropLast()) : raw
            let trimmed = trim(line)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.first == " " || line.first == "\t" {
                // Expected output of the previous `cat`.
                if let last = steps.last, last.file == file, case .read(let h, let p, var expected) = last.kind {
                    expected.append(trimmed)
                    steps[steps.count - 1].kind = .read(host: h, path: p, expected: expected)
                } else {
                    errors.append(ParseError(file: file, line: lineNo, message: "indented line, but the previous step is not a `cat`: '\(trimmed)'"))
                }
                continue
            }
            if trimmed.hasPrefix("include ") {
                let target = trim(String(trimmed.dropFirst(8)))
                let dir = file.contains("/") ? String(file[..<file.lastIndex(of: "/")!]) + "/" : ""
                let path = target.hasPrefix("/") ? target : dir + target
                guard depth < 8 else {
                    errors.append(ParseError(file: file, line: lineNo, message: "includes nested too deeply"))
                    continue
                }
                let content: String?
                if let loader { content = loader(path) } else { content = try? readTextFile(path) }
                guard let content else {
                    errors.append(ParseError(file: file, line: lineNo, message: "cannot read included file \(path)"))
                    continue
                }
                parse(text: content, file: path, depth: depth + 1)
                continue
            }
            switch parseStep(trimmed) {
            case .success(let kind):
                if case .expectError = kind {
                    pendingExpectError = true
                } else if pendingExpectError {
                    pendingExpectError = false
                    switch kind {
                    case .write, .read: break
                    default:
                        errors.append(ParseError(file: file, line: lineNo, message: "`expect error` must be followed by an `echo` or `cat` step"))
                    }
                }
                steps.append(Step(file: file, line: lineNo, text: trimmed, kind: kind))
            case .failure(let e):
                errors.append(ParseError(file: file, line: lineNo, message: e.message))
            }
        }
        if pendingExpectError {
            errors.append(ParseError(file: file, line: lines.count, message: "`expect error` at the end of the file"))
        }
    }

    mutating func knownHost(_ h: String) throws(SimError) -> String {
        guard hosts.contains(h) else { throw SimError("unknown host '\(h)' (declare it with `host \(h) client|storage ip ADDR`)") }
        return h
    }

    func duration(_ s: String) throws(SimError) -> UInt64 {
        guard let d = parseDuration(s) else { throw SimError("'\(s)' is not a duration (e.g. 10s, 250ms, 40us)") }
        return d
    }

    func number(_ s: String) throws(SimError) -> UInt64 {
        guard let n = UInt64(s) else { throw SimError("'\(s)' is not a number") }
        return n
    }

    mutating func parseStep(_ line: String) -> Result<StepKind, SimError> {
        do throws(SimError) { return .success(try step(line)) } catch { return .failure(error) }
    }

    mutating func step(_ line: String) throws(SimError) -> StepKind {
        // HOST$ command
        if let dollar = line.firstIndex(of: "$"), !line[..<dollar].contains(" ") {
            let host = try knownHost(String(line[..<dollar]))
            let command = trim(String(line[line.index(after: dollar)...]))
            return try shell(host: host, command)
        }
        let w = words(line)
        switch w[0] {
        case "host":
            guard w.count == 5, w[3] == "ip", let role = HostRole(rawValue: w[2]) else { throw SimError("usage: host NAME client|storage ip ADDR") }
            guard !hosts.contains(w[1]) else { throw SimError("host '\(w[1])' declared twice") }
            hosts.append(w[1])
            return .host(name: w[1], role: role, address: w[4])
        case "disk":
            if w.count >= 2 && w[1] == "error" {
                guard w.count == 6 else { throw SimError("usage: disk error HOST DEV count N | disk error HOST DEV for DURATION") }
                let h = try knownHost(w[2])
                switch w[4] {
                case "count": return .diskError(host: h, device: w[3], count: Int(try number(w[5])), duration: nil)
                case "for": return .diskError(host: h, device: w[3], count: nil, duration: try duration(w[5]))
                default: throw SimError("usage: disk error HOST DEV count N | disk error HOST DEV for DURATION")
                }
            }
            guard w.count == 5, w[3] == "sectors" else { throw SimError("usage: disk HOST DEV sectors N") }
            return .disk(host: try knownHost(w[1]), device: w[2], sectors: try number(w[4]))
        case "link":
            if w.count == 4 && (w[1] == "down" || w[1] == "up") {
                let a = try knownHost(w[2]), b = try knownHost(w[3])
                return w[1] == "down" ? .linkDown(a, b) : .linkUp(a, b)
            }
            // link A B latency D [jitter D] [bandwidth N]  |  link default latency ...
            var a: String?, b: String?
            var rest: ArraySlice<String>
            if w.count >= 2 && w[1] == "default" { rest = w[2...] } else {
                guard w.count >= 3 else { throw SimError("usage: link down|up A B, or link A B|default latency D [jitter D] [bandwidth BYTES/s]") }
                a = try knownHost(w[1]); b = try knownHost(w[2]); rest = w[3...]
            }
            var p = LinkParameters()
            var it = Array(rest)
            guard it.count % 2 == 0, !it.isEmpty else { throw SimError("link parameters come in pairs: latency D jitter D bandwidth N") }
            while !it.isEmpty {
                let k = it.removeFirst(), v = it.removeFirst()
                switch k {
                case "latency": p.latencyNanos = try duration(v)
                case "jitter": p.jitterNanos = try duration(v)
                case "bandwidth":
                    guard let bw = parseSize(v) else { throw SimError("bandwidth '\(v)' is not a size (bytes per second, e.g. 1G)") }
                    p.bandwidthBytesPerSecond = bw
                default: throw SimError("unknown link parameter '\(k)'")
                }
            }
            return .linkParameters(a: a, b: b, p)
        case "partition":
            if w.count == 4 && w[2] == "->" { return .partition(try knownHost(w[1]), try knownHost(w[3]), oneWay: true) }
            guard w.count == 3 else { throw SimError("usage: partition A B | partition A -> B") }
            return .partition(try knownHost(w[1]), try knownHost(w[2]), oneWay: false)
        case "heal":
            guard w.count == 1 else { throw SimError("usage: heal") }
            return .heal
        case "crash" where w.count > 2:
            guard w.count == 6, w[2] == "during", let trigger = CrashTrigger(rawValue: w[3]), w[4] == "within" else {
                throw SimError("usage: crash HOST | crash HOST during sync|write within DURATION")
            }
            return .crashDuring(try knownHost(w[1]), trigger, within: try duration(w[5]))
        case "crash", "restart":
            guard w.count == 2 else { throw SimError("usage: \(w[0]) HOST") }
            let h = try knownHost(w[1])
            return w[0] == "crash" ? .crash(h) : .restart(h)
        case "replace":
            guard (w.count == 4 || w.count == 6), w[1] == "disk" else { throw SimError("usage: replace disk HOST DEV [sectors N]") }
            var sectors: UInt64?
            if w.count == 6 {
                guard w[4] == "sectors" else { throw SimError("usage: replace disk HOST DEV [sectors N]") }
                sectors = try number(w[5])
            }
            return .replaceDisk(host: try knownHost(w[2]), device: w[3], sectors: sectors)
        case "advance":
            guard w.count == 2 else { throw SimError("usage: advance DURATION") }
            return .advance(try duration(w[1]))
        case "set" where w.count == 3 && ["crash-in-flight", "write-intent-capacity"].contains(w[1]):
            if w[1] == "crash-in-flight" {
                guard w[2].hasSuffix("%"), let n = UInt64(w[2].dropLast()), n <= 100 else {
                    throw SimError("set crash-in-flight: expected a percentage 0%..100%, got '\(w[2])'")
                }
                return .setCount(key: w[1], value: n)
            }
            guard let n = UInt64(w[2]), n >= 2, n <= UInt64(Limits.writeIntentCapacity) else {
                throw SimError("set write-intent-capacity: expected a number of chunks 2..\(Limits.writeIntentCapacity), got '\(w[2])'")
            }
            return .setCount(key: w[1], value: n)
        case "set":
            guard w.count == 3 else { throw SimError("usage: set reconnect-delay|heartbeat-timeout|disk-latency|disk-jitter DURATION") }
            guard ["reconnect-delay", "heartbeat-timeout", "disk-latency", "disk-jitter", "metadata-latency", "connect-delay"].contains(w[1]) else {
                throw SimError("unknown setting '\(w[1])'")
            }
            return .setOption(key: w[1], nanos: try duration(w[2]))
        case "workload":
            guard w.count >= 3 else { throw SimError("usage: workload start|stop|wait NAME ...") }
            switch w[1] {
            case "start":
                guard w.count >= 7, w[3] == "on", w[5] == "dev" else { throw SimError("usage: workload start NAME on HOST dev DEV [rw=.. bs=.. iodepth=.. size=.. offset=.. count=N|runtime=D]") }
                let h = try knownHost(w[4])
                switch WorkloadSpec.parse(name: w[2], host: h, device: w[6], options: Array(w[7...])) {
                case .success(let spec):
                    workloads.append(w[2])
                    return .workloadStart(spec)
                case .failure(let e): throw e
                }
            case "stop", "wait":
                guard workloads.contains(w[2]) else { throw SimError("unknown workload '\(w[2])'") }
                if w[1] == "stop" {
                    guard w.count == 3 else { throw SimError("usage: workload stop NAME") }
                    return .workloadStop(name: w[2])
                }
                var within: UInt64 = 600_000_000_000
                if w.count == 5 && w[3] == "within" { within = try duration(w[4]) } else if w.count != 3 { throw SimError("usage: workload wait NAME [within DURATION]") }
                return .workloadWait(name: w[2], within: within)
            default:
                throw SimError("usage: workload start|stop|wait NAME ...")
            }
        case "wait":
            // wait until HOST: cat PATH == VALUE within D   |   wait until maps clean POOL within D
            guard w.count >= 2, w[1] == "until" else { throw SimError("usage: wait until HOST: cat PATH == VALUE within D") }
            guard let withinAt = w.lastIndex(of: "within"), withinAt == w.count - 2 else { throw SimError("`wait until` needs `within DURATION` at the end") }
            let within = try duration(w[w.count - 1])
            if w.count == 7 && w[2] == "maps" && w[3] == "clean" { return .waitMapsClean(pool: w[4], within: within) }
            guard w.count >= 7, w[2].hasSuffix(":"), w[3] == "cat" else { throw SimError("usage: wait until HOST: cat PATH ==|!= VALUE within D") }
            let h = try knownHost(String(w[2].dropLast()))
            let path = w[4]
            try checkReadPath(path)
            guard let cmp = Comparison(rawValue: w[5]) else { throw SimError("expected == or != after the path, found '\(w[5])'") }
            let value = w[6..<withinAt].joined(separator: " ")
            return .waitRead(host: h, path: path, comparison: cmp, value: value, within: within)
        case "assert":
            let rest = w.dropFirst().joined(separator: " ")
            if w.count == 4 && w[1] == "legs" && w[2] == "identical" { return .assertLegsIdentical(pool: w[3]) }
            if w.count == 4 && w[1] == "maps" && w[2] == "clean" { return .assertMapsClean(pool: w[3]) }
            if w.count == 7 && w[1] == "no" && w[2] == "data" && w[3] == "lost" && w[5] == "dev" {
                return .assertNoDataLost(host: try knownHost(w[4]), device: w[6])
            }
            if w.count == 5 && w[1] == "workload" && w[3] == "errors" {
                guard workloads.contains(w[2]) else { throw SimError("unknown workload '\(w[2])'") }
                return .assertWorkloadErrors(name: w[2], count: try number(w[4]))
            }
            throw SimError("unknown assertion '\(rest)' (legs identical POOL | maps clean POOL | no data lost HOST dev DEV | workload NAME errors N)")
        case "expect":
            if w.count == 3 && w[1] == "error" {
                guard let e = errnoNamed(w[2]) else { throw SimError("unknown errno '\(w[2])'") }
                return .expectError(e)
            }
            if w.count >= 3 && w[1] == "rejection" { return .expectRejection(w[2...].joined(separator: " ")) }
            throw SimError("usage: expect error ERRNO | expect rejection TEXT")
        case "note":
            return .note(w.dropFirst().joined(separator: " "))
        default:
            throw SimError("unknown verb '\(w[0])'")
        }
    }

    func shell(host: String, _ command: String) throws(SimError) -> StepKind {
        if command.hasPrefix("echo ") {
            // echo VALUE > PATH   (VALUE: 'single quoted', "double quoted" or bare words)
            let body = trim(String(command.dropFirst(5)))
            guard let gt = body.lastIndex(of: ">") else { throw SimError("echo without `> PATH`") }
            var value = trim(String(body[..<gt]))
            let path = trim(String(body[body.index(after: gt)...]))
            if value.count >= 2, let q = value.first, (q == "'" || q == "\""), value.last == q {
                value = String(value.dropFirst().dropLast())
            }
            switch ControlTree.parseWrite(path: path, value: value) {
            case .success(let cmd): return .write(host: host, path: path, value: value, command: cmd)
            case .failure(let e): throw SimError("\(e.code): \(e.message)")
            }
        }
        if command.hasPrefix("cat ") {
            let path = trim(String(command.dropFirst(4)))
            try checkReadPath(path)
            return .read(host: host, path: path, expected: [])
        }
        let first = command.split(separator: " ").first.map(String.init) ?? ""
        if ["modprobe", "lsblk", "true"].contains(first) { return .shellNoop(host: host, command: command) }
        throw SimError("unsupported command '\(first)' (echo ... > PATH, cat PATH, modprobe, lsblk)")
    }

    func checkReadPath(_ path: String) throws(SimError) {
        let comps = path.split(separator: "/")
        for pattern in ControlTree.attributePaths {
            let pc = pattern.split(separator: "/")
            guard pc.count == comps.count else { continue }
            if zip(pc, comps).allSatisfy({ $0 == $1 || ["P", "S", "DEV"].contains($0) }) { return }
        }
        throw SimError("ENOENT: no attribute at \(path)")
    }
}

func trim(_ s: String) -> String {
    var sub = Substring(s)
    while let c = sub.first, c == " " || c == "\t" { sub = sub.dropFirst() }
    while let c = sub.last, c == " " || c == "\t" || c == "\r" { sub = sub.dropLast() }
    return String(sub)
}

func words(_ s: String) -> [String] {
    s.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
}

func errnoNamed(_ name: String) -> Errno? {
    for raw in Int32(1)...Int32(200) {
        if let e = Errno(rawValue: raw), e.description == name { return e }
    }
    return nil
}

/// `*` matches any run of characters.
public func globMatch(_ pattern: String, _ text: String) -> Bool {
    let p = Array(pattern), t = Array(text)
    var pi = 0, ti = 0, star = -1, mark = 0
    while ti < t.count {
        if pi < p.count && p[pi] != "*" && p[pi] == t[ti] {
            pi += 1; ti += 1
        } else if pi < p.count && p[pi] == "*" {
            star = pi; mark = ti; pi += 1
        } else if star >= 0 {
            pi = star + 1; mark += 1; ti = mark
        } else {
            return false
        }
    }
    while pi < p.count && p[pi] == "*" { pi += 1 }
    return pi == p.count
}
