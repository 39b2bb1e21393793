import RMRCore

// fio-like block IO on a client's mapped device, checked against the reference model.

public enum IOPattern: String, Sendable, CaseIterable {
    case randwrite, randread, randrw, write, read
    /// Internal: read back every region ever written (`assert no data lost`).
    case verify
}

public struct WorkloadSpec: Sendable {
    public var name: String
    public var host: String
    public var device: String
    public var pattern: IOPattern = .randwrite
    public var blockBytes: UInt64 = 4096
    public var iodepth: Int = 8
    public var sizeBytes: UInt64 = 25 << 20
    public var offsetBytes: UInt64 = 0
    /// Stop after this many IOs.
    public var count: UInt64?
    /// Stop issuing after this much virtual time.
    public var runtimeNanos: UInt64?
    /// randrw: percentage of reads.
    public var readPercent: UInt64 = 50
    /// At most this many IOs per virtual second (fio's rate_iops); nil = as fast as iodepth allows.
    public var rateIOPS: UInt64?
    public var seed: UInt64?

    public init(name: String, host: String, device: String) {
        self.name = name
        self.host = host
        self.device = device
    }

    /// Parses `rw=randwrite bs=4k iodepth=8 size=25M offset=0 count=N runtime=10s rwmixread=50 seed=N`.
    public static func parse(name: String, host: String, device: String, options: [String]) -> Result<WorkloadSpec, SimError> {
        var spec = WorkloadSpec(name: name, host: host, device: device)
        for opt in options {
            let parts = opt.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return .failure(SimError("workload option '\(opt)' is not key=value")) }
            let (k, v) = (parts[0], parts[1])
            switch k {
            case "rw":
                guard let p = IOPattern(rawValue: v), p != .verify else { return .failure(SimError("rw=\(v): expected randwrite, randread, randrw, write or read")) }
                spec.pattern = p
            case "bs":
                guard let b = parseSize(v), b >= 512, b % 512 == 0, b.nonzeroBitCount == 1 else { return .failure(SimError("bs=\(v): expected a power of two, multiple of 512")) }
                spec.blockBytes = b
            case "iodepth":
                guard let d = Int(v), d > 0, d <= 1024 else { return .failure(SimError("iodepth=\(v): expected 1...1024")) }
                spec.iodepth = d
            case "size":
                guard let s = parseSize(v), s > 0 else { return .failure(SimError("size=\(v): expected a size such as 25M")) }
                spec.sizeBytes = s
            case "offset":
                guard let o = parseSize(v) else { return .failure(SimError("offset=\(v): expected a size")) }
                spec.offsetBytes = o
            case "count", "number_ios":
                guard let c = UInt64(v) else { return .failure(SimError("\(k)=\(v): expected a number")) }
                spec.count = c
            case "runtime", "duration":
                guard let d = parseDuration(v) else { return .failure(SimError("\(k)=\(v): expected a duration such as 10s")) }
                spec.runtimeNanos = d
            case "rwmixread":
                guard let p = UInt64(v), p <= 100 else { return .failure(SimError("rwmixread=\(v): expected 0...100")) }
                spec.readPercent = p
            case "rate_iops":
                guard let r = UInt64(v), r > 0 else { return .failure(SimError("rate_iops=\(v): expected a positive number")) }
                spec.rateIOPS = r
            case "seed":
                guard let s = UInt64(v) else { return .failure(SimError("seed=\(v): expected a number")) }
                spec.seed = s
            default:
                return .failure(SimError("unknown workload option '\(k)'"))
            }
        }
        if spec.sizeBytes % spec.blockBytes != 0 || spec.offsetBytes % spec.blockBytes != 0 {
            return .failure(SimError("size and offset must be multiples of bs"))
        }
        return .success(spec)
    }
}

public final class Workload {
    public let spec: WorkloadSpec
    public let index: Int
    let host: Int
    var random: WorldRandom
    let startTime: UInt64
    public internal(set) var issued: UInt64 = 0
    public internal(set) var completed: UInt64 = 0
    public internal(set) var writes: UInt64 = 0
    public internal(set) var reads: UInt64 = 0
    public internal(set) var inflight = 0
    public internal(set) var errors: [(Errno, UInt64)] = []
    public internal(set) var stopped = false
    public internal(set) var crashed = false
    var cursor: UInt64 = 0
    var regions: [UInt64] = []  // verify: region starts (sectors)
    var issuePending = false
    var nextIssueAt: UInt64 = 0
    /// The device's reference model (models are never replaced: looked up once).
    var model: DataModel?

    init(spec: WorkloadSpec, index: Int, host: Int, seed: UInt64, now: UInt64) {
        self.spec = spec
        self.index = index
        self.host = host
        self.random = WorldRandom(seed: seed)
        self.startTime = now
    }

    /// Stopped and nothing in flight.
    public var finished: Bool { stopped && inflight == 0 }
    public var errorCount: UInt64 { errors.reduce(0) { $0 + $1.1 } }
    public var errorSummary: String {
        errors.isEmpty ? "no errors" : errors.map { "\($0.1)×\($0.0)" }.joined(separator: ", ")
    }

    func countError(_ e: Errno) {
        if let i = errors.firstIndex(where: { $0.0 == e }) { errors[i].1 += 1 } else { errors.append((e, 1)) }
    }
}

extension World {
    public func model(host: String, device: String) -> DataModel? { models["\(host)/\(device)"] }

    /// `w`'s model, looked up once (the key is built from strings).
    func modelFor(_ w: Workload) -> DataModel {
        if let m = w.model { return m }
        let m = modelFor(w.spec)
        w.model = m
        return m
    }

    func modelFor(_ spec: WorkloadSpec) -> DataModel {
        let key = "\(spec.host)/\(spec.device)"
        if let m = models[key] { return m }
        var sectors = (spec.offsetBytes + spec.sizeBytes) / 512
        if let dev = host(spec.host)?.node?.device(spec.device) { sectors = max(sectors, dev.sizeSectors) }
        let m = DataModel(device: spec.device, sectors: sectors)
        models[key] = m
        return m
    }

    @discardableResult
    public func startWorkload(_ spec: WorkloadSpec) -> Workload {
        let h = hostByName[spec.host]!
        let seed = spec.seed ?? WorldRandom.subSeed(workloadSeedBase, "\(spec.name)#\(workloads.count)")
        let w = Workload(spec: spec, index: workloads.count, host: h, seed: seed, now: now)
        workloads.append(w)
        _ = modelFor(spec)
        trace.note(now, spec.host, "workload \(spec.name) start \(spec.pattern.rawValue) bs=\(spec.blockBytes) iodepth=\(spec.iodepth)", self)
        timeline?.marker(now, host: spec.host, "workload \(spec.name)", fault: false)
        if !hosts[h].alive { w.stopped = true; w.crashed = true }
        issue(w)
        return w
    }

    /// Reads back every region of `device` that was ever written and checks it.
    @discardableResult
    public func startVerification(host: String, device: String, iodepth: Int = 8) -> Workload {
        var spec = WorkloadSpec(name: "verify-\(device)", host: host, device: device)
        spec.pattern = .verify
        spec.blockBytes = 64 * 1024
        spec.iodepth = iodepth
        let m = modelFor(spec)
        let w = Workload(spec: spec, index: workloads.count, host: hostByName[host]!, seed: 0, now: now)
        w.regions = m.writtenRegions(regionSectors: spec.blockBytes / 512)
        workloads.append(w)
        if !hosts[w.host].alive { w.stopped = true; w.crashed = true }
        issue(w)
        return w
    }

    public func stopWorkload(_ w: Workload) {
        w.stopped = true
        trace.note(now, w.spec.host, "workload \(w.spec.name) stop", self)
    }

    func issue(_ w: Workload) {
        guard !w.stopped else { return }
        let spec = w.spec
        let model = modelFor(w)
        let blocks = spec.sizeBytes / spec.blockBytes
        let sectorsPerBlock = spec.blockBytes / 512
        while w.inflight < spec.iodepth && !w.stopped {
            if let c = spec.count, w.issued >= c { w.stopped = true; break }
            if let r = spec.runtimeNanos, now >= w.startTime + r { w.stopped = true; break }
            if let rate = spec.rateIOPS {
                if now < w.nextIssueAt {
                    if !w.issuePending {
                        w.issuePending = true
                        schedule(w.nextIssueAt, .workloadIssue(w.index))
                    }
                    return
                }
                w.nextIssueAt = max(w.nextIssueAt, now) + 1_000_000_000 / rate
            }
            var isWrite: Bool
            var offset: UInt64
            var length = spec.blockBytes
            switch spec.pattern {
            case .verify:
                guard w.cursor < UInt64(w.regions.count) else { w.stopped = true; continue }
                offset = w.regions[Int(w.cursor)] * 512
                length = min(spec.blockBytes, model.sectors * 512 - offset)
                w.cursor += 1
                isWrite = false
            case .write, .read:
                offset = spec.offsetBytes + (w.cursor % blocks) * spec.blockBytes
                w.cursor += 1
                isWrite = spec.pattern == .write
                if isWrite && model.hasWriteInFlight(overlapping: offset / 512, count: sectorsPerBlock) { return retryLater(w) }
            case .randwrite, .randread, .randrw:
                isWrite = spec.pattern == .randwrite || (spec.pattern == .randrw && w.random.below(100) >= spec.readPercent)
                var pick: UInt64?
                for _ in 0..<8 {
                    let b = w.random.below(blocks)
                    let off = spec.offsetBytes + b * spec.blockBytes
                    if !isWrite || !model.hasWriteInFlight(overlapping: off / 512, count: sectorsPerBlock) { pick = off; break }
                }
                guard let p = pick else { return retryLater(w) }
                offset = p
            }
            let tag = nextBlockTag
            nextBlockTag += 1
            let first = offset / 512, count = length / 512
            var data: [UInt8] = []
            if isWrite {
                data = model.beginWrite(tag: tag, firstSector: first, count: count)
                w.writes += 1
            } else {
                model.beginRead(tag: tag, firstSector: first, count: count)
                w.reads += 1
            }
            blockTags[tag] = (w.index, isWrite)
            w.issued += 1
            w.inflight += 1
            let req = BlockRequest(tag: BlockIOTag(tag), device: spec.device, op: isWrite ? .write : .read,
                                   offsetBytes: offset, lengthBytes: length, data: data)
            deliver(w.host, .blockIO(req))
        }
    }

    /// The next block overlaps a write in flight (the data model allows one writer per sector).
    /// One of this workload's own completions retries; with none in flight, the overlapping
    /// write is another workload's, whose completion does not wake this one: retry in 1 ms of
    /// virtual time (fuzz seed 2014 stalled here with 0 in flight until its wait timed out).
    func retryLater(_ w: Workload) {
        guard w.inflight == 0 && !w.issuePending else { return }
        w.issuePending = true
        schedule(now + 1_000_000, .workloadIssue(w.index))
    }

    func blockIOCompleted(_ tag: UInt64, _ result: BlockIOResult) {
        guard let (wi, isWrite) = blockTags.removeValue(forKey: tag) else { return }
        let w = workloads[wi]
        let model = modelFor(w)
        w.inflight -= 1
        w.completed += 1
        switch result {
        case .ok(let data):
            if isWrite {
                model.endWrite(tag: tag, ok: true)
            } else if let v = model.endRead(tag: tag, data: data) {
                fail("workload \(w.spec.name) on \(w.spec.host): \(v)")
                return
            }
        case .failed(let e):
            w.countError(e)
            if isWrite { model.endWrite(tag: tag, ok: false) } else { _ = model.endRead(tag: tag, data: nil) }
        }
        if !w.stopped && !w.issuePending {
            w.issuePending = true
            schedule(now, .workloadIssue(wi))
        }
    }

    func workloadHostCrashed(_ w: Workload) {
        let model = modelFor(w)
        model.clientCrashed()
        for key in blockTags.keys.sorted() where blockTags[key]!.workload == w.index { blockTags.removeValue(forKey: key) }
        w.inflight = 0
        w.stopped = true
        w.crashed = true
        trace.note(now, w.spec.host, "workload \(w.spec.name) died with its host (in-flight writes are now indeterminate)", self)
    }
}
