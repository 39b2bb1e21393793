import RMRCore

// Records state transitions, dirty-chunk counts and fault/admin markers over virtual time and
// draws them as a plain SVG: per host one row per state machine (colored bands), a dirty-count
// plot per host, and markers (red: faults, blue: admin and workload events).

public final class TimelineRecorder {
    struct Change { var time: UInt64; var host: String; var machine: String; var from: String; var to: String }
    struct Marker { var time: UInt64; var host: String; var label: String; var fault: Bool }
    struct Sample { var time: UInt64; var host: String; var member: MemberID; var dirty: UInt64 }

    var changes: [Change] = []
    var markers: [Marker] = []
    var samples: [Sample] = []
    public var sampleIntervalNanos: UInt64 = 100_000_000
    var nextSample: UInt64 = 0
    var hostOrder: [String] = []

    public init() {}

    func transition(_ t: UInt64, host: String, _ tr: Transition) {
        changes.append(Change(time: t, host: host, machine: tr.machine.description, from: tr.from, to: tr.to))
    }

    func marker(_ t: UInt64, host: String, _ label: String, fault: Bool) {
        markers.append(Marker(time: t, host: host, label: label, fault: fault))
    }

    func maybeSample(_ world: World) {
        guard world.now >= nextSample else { return }
        nextSample = world.now + sampleIntervalNanos
        sample(world)
    }

    func sample(_ world: World) {
        for h in world.hosts {
            if !hostOrder.contains(h.name) { hostOrder.append(h.name) }
            guard let node = h.node else { continue }
            for pool in node.serverPoolNames {
                guard let v = node.serverPool(pool) else { continue }
                for (member, map) in v.maps {
                    samples.append(Sample(time: world.now, host: h.name, member: member, dirty: map.dirtyCount))
                }
            }
        }
    }

    static func color(_ state: String) -> String {
        switch state {
        case "normal", "ready", "running": return "#4caf50"
        case "no_io", "failed", "disconnected": return "#e53935"
        case "reconnecting", "ready-map", "done": return "#ffa726"
        case "created", "registered": return "#64b5f6"
        case "removing": return "#8d6e63"
        case "stopped", "disabled", "empty": return "#cfd8dc"
        default: return "#ba68c8"
        }
    }

    static func esc(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "&": o += "&amp;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }

    public func svg(world: World, title: String) -> String {
        sample(world)
        let end = max(world.now, 1)
        let left = 260.0, width = 1100.0, rowH = 16.0, plotH = 60.0
        func x(_ t: UInt64) -> Double { left + width * Double(t) / Double(end) }
        func f(_ d: Double) -> String {
            let tenths = Int(d * 10 + (d >= 0 ? 0.5 : -0.5))
            let sign = tenths < 0 ? "-" : ""
            let a = abs(tenths)
            return "\(sign)\(a / 10).\(a % 10)"
        }
        var body = ""
        var y = 40.0
        for host in hostOrder {
            body += "<text x=\"8\" y=\"\(f(y + 12))\" font-weight=\"bold\">\(TimelineRecorder.esc(host))</text>\n"
            y += 18
            var machines: [String] = []
            for c in changes where c.host == host && !machines.contains(c.machine) { machines.append(c.machine) }
            for m in machines {
                body += "<text x=\"16\" y=\"\(f(y + 12))\" font-size=\"11\">\(TimelineRecorder.esc(m))</text>\n"
                let cs = changes.filter { $0.host == host && $0.machine == m }
                var start: UInt64 = 0
                var state = cs.first?.from ?? "?"
                for c in cs + [Change(time: end, host: host, machine: m, from: "", to: "")] {
                    if c.time > start || c.to == "" {
                        body += "<rect x=\"\(f(x(start)))\" y=\"\(f(y + 2))\" width=\"\(f(max(0.5, x(c.time) - x(start))))\" height=\"\(f(rowH - 4))\" fill=\"\(TimelineRecorder.color(state))\"><title>\(TimelineRecorder.esc(m)): \(TimelineRecorder.esc(state)) from \(formatTime(start))</title></rect>\n"
                    }
                    start = c.time
                    state = c.to
                }
                y += rowH
            }
            // Dirty chunk counts per member map held by this host.
            let hs = samples.filter { $0.host == host }
            var members: [MemberID] = []
            for s in hs where !members.contains(s.member) { members.append(s.member) }
            if !members.isEmpty {
                let maxDirty = max(1, hs.map(\.dirty).max() ?? 1)
                body += "<text x=\"16\" y=\"\(f(y + 14))\" font-size=\"11\">dirty chunks (max \(maxDirty))</text>\n"
                body += "<rect x=\"\(f(left))\" y=\"\(f(y))\" width=\"\(f(width))\" height=\"\(f(plotH))\" fill=\"none\" stroke=\"#ddd\"/>\n"
                let palette = ["#1e88e5", "#d81b60", "#43a047", "#fb8c00"]
                for (i, m) in members.enumerated() {
                    let pts = hs.filter { $0.member == m }.map { "\(f(x($0.time))),\(f(y + plotH - plotH * Double($0.dirty) / Double(maxDirty)))" }
                    body += "<polyline fill=\"none\" stroke=\"\(palette[i % palette.count])\" points=\"\(pts.joined(separator: " "))\"><title>member \(m)</title></polyline>\n"
                    body += "<text x=\"\(f(left - 70))\" y=\"\(f(y + 26 + Double(i) * 11))\" font-size=\"10\" fill=\"\(palette[i % palette.count])\">member \(m)</text>\n"
                }
                y += plotH + 4
            }
            for mk in markers where mk.host == host {
                body += "<line x1=\"\(f(x(mk.time)))\" y1=\"30\" x2=\"\(f(x(mk.time)))\" y2=\"\(f(y))\" stroke=\"\(mk.fault ? "#c62828" : "#1565c0")\" stroke-dasharray=\"3,2\" stroke-width=\"0.8\"><title>\(TimelineRecorder.esc(host)): \(TimelineRecorder.esc(mk.label)) at \(formatTime(mk.time))</title></line>\n"
            }
            y += 10
        }
        // Time axis.
        var axis = "<line x1=\"\(f(left))\" y1=\"30\" x2=\"\(f(left + width))\" y2=\"30\" stroke=\"#333\"/>\n"
        for i in 0...10 {
            let t = end / 10 * UInt64(i)
            axis += "<text x=\"\(f(x(t)))\" y=\"25\" font-size=\"10\" text-anchor=\"middle\">\(formatTime(t))</text>\n"
        }
        let h = y + 20
        return """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(left + width + 20))" height="\(f(h))" font-family="monospace" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="8" y="14" font-weight="bold">\(TimelineRecorder.esc(title))</text>
        \(axis)\(body)</svg>

        """
    }
}
