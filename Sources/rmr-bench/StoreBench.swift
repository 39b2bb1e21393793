#if canImport(Glibc)
import Glibc
#endif
import RMRCore
import RMRStore

// rmr-bench store: 4 KiB random writes at QD32 through the libaio BlockStore with dirty
// tracking on (the first write to a chunk persists an `.addIntents` record and waits for it, as
// the core does; beyond `Limits.writeIntentCapacity` hot chunks the oldest is evicted in the same
// record), then fio's libaio job on the same file, printed side by side.
//
//   rmr-bench store [--seconds 5] [--size-mib 64] [--qd 32] [--chunk-kib 128] [--runs 1]
//                   [--file /var/tmp/rmr-store-bench.dat] [--no-fio] [--no-eventfd] [--keep]
//
// With several runs the order alternates (store then fio, fio then store) and the median ratio
// is printed: the VM disk varies by about ±15 % from run to run.

private struct StoreBenchOptions {
    var seconds = 5.0
    var sizeMiB: UInt64 = 64
    var queueDepth = 32
    var chunkKiB: UInt64 = 128
    var runs = 1
    var file = "/var/tmp/rmr-store-bench.dat"
    var runFio = true
    var keep = false
    var eventFD = true

    init(_ args: [String]) {
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { benchFail("missing value after \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--seconds": seconds = Double(value()) ?? seconds
            case "--size-mib": sizeMiB = UInt64(value()) ?? sizeMiB
            case "--qd": queueDepth = Int(value()) ?? queueDepth
            case "--chunk-kib": chunkKiB = UInt64(value()) ?? chunkKiB
            case "--runs": runs = max(1, Int(value()) ?? runs)
            case "--file": file = value()
            case "--no-fio": runFio = false
            case "--keep": keep = true
            case "--no-eventfd": eventFD = false
            default: benchFail("unknown option \(args[i])")
            }
            i += 1
        }
    }
}

private func benchFail(_ message: String) -> Never {
    let line = "rmr-bench store: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}

private func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// 1234567 -> "1,234,567".
private func grouped(_ v: Int) -> String {
    let digits = Array(String(v))
    var out = ""
    for (i, d) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(d)
    }
    return out
}

/// Fixed-point text with `places` decimals.
private func fixed(_ v: Double, _ places: Int) -> String {
    var scale = 1.0
    for _ in 0..<places { scale *= 10 }
    let n = Int((v * scale).rounded())
    let whole = n / Int(scale)
    var frac = String(abs(n) % Int(scale))
    while frac.count < places { frac = "0" + frac }
    return places == 0 ? "\(whole)" : "\(n < 0 && whole == 0 ? "-" : "")\(whole).\(frac)"
}

/// Creates the file and writes it through once, so neither run pays for block allocation.
private func prepareFile(_ path: String, bytes: UInt64) {
    unlink(path)
    let fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0o600)
    guard fd >= 0 else { benchFail("create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let piece = 1 << 20
    let zeros = [UInt8](repeating: 0, count: piece)
    var done: UInt64 = 0
    while done < bytes {
        let n = Int(min(UInt64(piece), bytes - done))
        let w = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress!, n, off_t(done)) }
        guard w == n else { benchFail("write \(path): \(String(cString: strerror(errno)))") }
        done += UInt64(n)
    }
    fsync(fd)
}

private struct StoreRun {
    var writes: Int
    var seconds: Double
    var intentRecords: UInt64
    var metadataWrites: UInt64
    var journalWrites: UInt64
    var checkpointWrites: UInt64
    var headerWrites: UInt64
    var iops: Double { Double(writes) / seconds }
}

private func deviceSectors(_ o: StoreBenchOptions) -> UInt64 {
    do {
        return try BlockStore.requiredDeviceSectors(mappedSectors: o.sizeMiB * 2048, chunkBytes: o.chunkKiB * 1024)
    } catch {
        benchFail(error.message)
    }
}

/// The store run: QD `queueDepth` random 4 KiB writes; a write to a cold chunk waits for its
/// `.addIntents` persist (the core's write-intent rule), writes to hot chunks go straight out.
private func runStore(_ o: StoreBenchOptions) -> StoreRun {
    let chunkBytes = o.chunkKiB * 1024
    let mappedSectors = o.sizeMiB * 2048
    let deviceSectors = deviceSectors(o)
    let state = DurablePoolState(poolName: "bench", poolUUID: PoolUUID(high: 1, low: 1), member: 1, chunkBytes: chunkBytes,
                                 mappedSectors: mappedSectors, deviceSectors: deviceSectors)
    let store: BlockStore
    do {
        // fio overwrites the header blocks of the previous run's store: format over them.
        try BlockStore.format(path: o.file, state: state, nonce: 1, force: true)
        store = try BlockStore(path: o.file, options: .init(queueDepth: o.queueDepth, useEventFD: o.eventFD))
    } catch {
        benchFail(error.message)
    }
    let blocks = mappedSectors / 8
    let chunkCount = (mappedSectors * 512 + chunkBytes - 1) / chunkBytes
    let payload = [UInt8](repeating: 0xA5, count: 4096)
    var rng = SplitMix64(seed: 0x5EED)
    var hot = [Bool](repeating: false, count: Int(chunkCount))
    // Hot chunks in the order they turned hot; past the core's capacity the oldest is evicted
    // in the same record (the core's `writeIntentEvicted`).
    var hotOrder: [Int] = []
    var hotHead = 0
    var waiting = [[UInt64]](repeating: [], count: Int(chunkCount))
    var intentPending = [Bool](repeating: false, count: Int(chunkCount))
    var nextTag: UInt64 = 0
    var completed = 0
    var inFlight = 0

    func issueWrite(_ block: UInt64) {
        store.submit(tag: StoreTag(nextTag), op: .write(offsetBytes: block * 4096, data: payload))
        nextTag += 1
        inFlight += 1
    }
    func newWrite() {
        let block = rng.next(below: blocks)
        let chunk = Int(block * 4096 / chunkBytes)
        if hot[chunk] { issueWrite(block); return }
        inFlight += 1  // counted now: it occupies a queue slot while its intent persists
        waiting[chunk].append(block)
        if !intentPending[chunk] {
            intentPending[chunk] = true
            var updates: [MetadataUpdate] = []
            if hotOrder.count - hotHead >= Limits.writeIntentCapacity {
                let evicted = hotOrder[hotHead]
                hotHead += 1
                hot[evicted] = false
                updates.append(.removeIntents([UInt64(evicted)]))
            }
            updates.append(.addIntents([UInt64(chunk)]))
            store.persist(tag: PersistTag(UInt64(chunk)), record: PersistRecord(updates))
        }
    }

    for _ in 0..<o.queueDepth { newWrite() }
    let start = monotonicNanos()
    let deadline = start + UInt64(o.seconds * 1e9)
    var stopping = false
    while inFlight > 0 {
        for c in store.poll(minEvents: 1) {
            switch c {
            case .store(_, let result):
                guard case .ok = result else { benchFail("write failed: \(result)") }
                inFlight -= 1
                completed += 1
                if !stopping { newWrite() }
            case .persist(let tag, let ok):
                guard ok else { benchFail("intent persist failed: \(store.metadataFailure?.message ?? "?")") }
                let chunk = Int(tag.raw)
                hot[chunk] = true
                hotOrder.append(chunk)
                intentPending[chunk] = false
                for b in waiting[chunk] { inFlight -= 1; issueWrite(b) }
                waiting[chunk] = []
            }
        }
        if !stopping && monotonicNanos() >= deadline { stopping = true }
    }
    let elapsed = Double(monotonicNanos() - start) / 1e9
    let stats = store.stats
    store.close()
    return StoreRun(writes: completed, seconds: elapsed, intentRecords: stats.metadata.recordsAccepted,
                    metadataWrites: stats.metadata.metadataWrites, journalWrites: stats.metadata.journalWrites,
                    checkpointWrites: stats.metadata.checkpointWriteCalls, headerWrites: stats.metadata.headerWrites)
}

/// Runs `command` through /bin/sh and returns its output, nil if it could not run or failed.
private func capture(_ command: String) -> String? {
    guard let f = popen(command, "r") else { return nil }
    var out = ""
    var buf = [CChar](repeating: 0, count: 65536)
    while fgets(&buf, Int32(buf.count), f) != nil {
        out += String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    return pclose(f) == 0 ? out : nil
}

/// fio's libaio job on the same file: write IOPS from the terse (v3) output, field 48.
private func runFio(_ o: StoreBenchOptions) -> Double? {
    let command = "fio --name=randw --filename=\(o.file) --size=\(o.sizeMiB)M --rw=randwrite --bs=4k --ioengine=libaio "
        + "--iodepth=\(o.queueDepth) --direct=1 --time_based --runtime=\(Int(o.seconds.rounded())) --output-format=terse 2>&1"
    guard let out = capture(command) else { return nil }
    for line in out.split(separator: "\n") where line.hasPrefix("3;") {
        let fields = line.split(separator: ";", omittingEmptySubsequences: false)
        if fields.count > 48, let iops = Double(fields[48]) { return iops }
    }
    return nil
}

func runStoreBench(_ args: [String]) {
    let o = StoreBenchOptions(args)
    let haveFio = o.runFio && capture("command -v fio") != nil
    print("store bench: \(o.sizeMiB) MiB data region in \(o.file), 4 KiB random writes, QD\(o.queueDepth), "
          + "\(fixed(o.seconds, 1)) s per run, chunk \(o.chunkKiB) KiB, write intents on")
    if o.runFio && !haveFio { print("fio not found (apt-get install -y fio): printing the store numbers only") }
    prepareFile(o.file, bytes: deviceSectors(o) * 512)
    var ratios: [Double] = []
    var storeIOPS: [Double] = []
    var fioIOPS: [Double] = []
    for run in 1...o.runs {
        // Even runs measure fio first, so neither side always runs on a warmer device.
        let fioFirst = haveFio && run % 2 == 0
        let f0 = fioFirst ? runFio(o) : nil
        let s = runStore(o)
        let f = fioFirst ? f0 : (haveFio ? runFio(o) : nil)
        storeIOPS.append(s.iops)
        let overhead = 100 * Double(s.metadataWrites) / Double(max(1, s.writes))
        print("run \(run)\(fioFirst ? " (fio first)" : ""): store \(grouped(Int(s.iops.rounded()))) IOPS (\(grouped(s.writes)) writes in \(fixed(s.seconds, 2)) s)")
        print("        metadata: \(s.intentRecords) intent records -> \(s.journalWrites) journal + \(s.checkpointWrites) checkpoint + "
              + "\(s.headerWrites) header writes = \(s.metadataWrites) metadata IOs, \(fixed(overhead, 3)) % of data IOs")
        guard haveFio else { continue }
        if let f {
            let ratio = s.iops / f
            ratios.append(ratio)
            fioIOPS.append(f)
            print("        fio   \(grouped(Int(f.rounded()))) IOPS (libaio, same file, same job)")
            print("        ratio store/fio = \(fixed(ratio, 3))x (target >= 0.90x, stretch 0.95x)")
        } else {
            print("        fio failed to run")
        }
    }
    func median(_ v: [Double]) -> Double { let s = v.sorted(); return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2 }
    if o.runs > 1 {
        var line = "median of \(o.runs) runs: store \(grouped(Int(median(storeIOPS).rounded()))) IOPS"
        if !ratios.isEmpty {
            line += ", fio \(grouped(Int(median(fioIOPS).rounded()))) IOPS, ratio \(fixed(median(ratios), 3))x"
        }
        print(line)
    }
    if !o.keep { unlink(o.file) }
}
