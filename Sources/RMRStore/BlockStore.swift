#if canImport(Glibc)
import Glibc
#endif
import CAio
import RMRCore
import RMRFormat

/// A completion the store hands back to its event loop.
public enum StoreCompletion: Hashable, Sendable {
    case store(StoreTag, StoreResult)
    case persist(PersistTag, ok: Bool)

    /// The core input this completion becomes.
    public var input: Input {
        switch self {
        case .store(let tag, let result): return .storeCompleted(tag, result)
        case .persist(let tag, let ok): return .persistCompleted(tag, ok: ok)
        }
    }
}

/// What `/sys/class/brmr-server/stores/<pool>/…` shows for a store.
public struct StoreAttributes: Hashable, Sendable {
    public var isOpen: Bool
    public var isMapped: Bool
    public var mappedSectors: UInt64
    /// `sda` for /dev/sda, the file name for a file.
    public var bdevName: String
    public var deviceSectors: UInt64
    public init(isOpen: Bool, isMapped: Bool, mappedSectors: UInt64, bdevName: String, deviceSectors: UInt64) {
        self.isOpen = isOpen
        self.isMapped = isMapped
        self.mappedSectors = mappedSectors
        self.bdevName = bdevName
        self.deviceSectors = deviceSectors
    }
    /// The `state` attribute: `open|closed` then `mapped|unmapped`, one per line.
    public var stateText: String { "\(isOpen ? "open" : "closed")\n\(isMapped ? "mapped" : "unmapped")" }
}

/// A block store on a regular file or block device: data IO and metadata persists through
/// libaio on O_DIRECT descriptors, driven from one event loop without a thread per IO.
///
/// Event-loop use: `submit` data IO and `persist` records as the core emits the effects, then
/// `poll` (blocking for at least `minEvents`, or with `minEvents: 0` when the `eventFD`
/// registered with epoll became readable) and feed each `StoreCompletion.input` to the core.
/// Persist records given in one turn share journal blocks; they are issued by the next `poll`
/// (or `flushMetadata`). Persists complete in issue order, each only once durable.
///
/// Durability: metadata goes through a second descriptor opened O_DIRECT|O_DSYNC. On such a
/// descriptor the kernel completes an AIO write only after the data is on stable media (a FUA
/// write, or a cache flush when the device has no FUA), so a journal block is durable when its
/// completion arrives, with one round trip and without flushing the data writes' cache. An
/// explicit fdatasync would cost a second round trip per persist and, being synchronous, would
/// block the event loop. Data writes use the plain O_DIRECT descriptor; `.flush` makes them
/// durable (IOCB_CMD_FDSYNC, falling back to fdatasync when the kernel refuses it).
///
/// Not thread-safe: one event loop owns a store.
public final class BlockStore {
    public struct Options: Sendable {
        /// Data IOs in flight; more wait in a FIFO inside the store.
        public var queueDepth: Int = Limits.defaultQueueDepth
        /// Metadata block writes in flight (journal window, checkpoint pieces, header).
        public var metadataDepth: Int = 64
        /// Signal completions on an eventfd (for epoll-driven loops).
        public var useEventFD: Bool = true
        public init(queueDepth: Int = Limits.defaultQueueDepth, metadataDepth: Int = 64, useEventFD: Bool = true) {
            self.queueDepth = queueDepth
            self.metadataDepth = metadataDepth
            self.useEventFD = useEventFD
        }
    }

    public struct Stats: Hashable, Sendable {
        public var dataReads: UInt64 = 0
        public var dataWrites: UInt64 = 0
        public var dataFlushes: UInt64 = 0
        /// io_submit returned EAGAIN and the IO was retried later.
        public var submitRetries: UInt64 = 0
        public var metadata = MetadataWriter.Stats()
    }

    /// Largest data IO accepted (bounds the bounce buffers).
    public static let maxIOBytes: UInt64 = 16 << 20

    public let path: String
    public let bdevName: String
    public let deviceSectors: UInt64
    public let layout: MetadataLayout
    public let options: Options
    public private(set) var isOpen = true
    /// Notes from recovery at open (a torn header copy, a torn journal tail...).
    public let recoveryNotes: [String]
    /// -1 when `useEventFD` is off. Readable when completions are waiting; read it (8 bytes)
    /// to clear it, then `poll(minEvents: 0)`.
    public private(set) var eventFD: Int32 = -1

    private var data: DeviceHandle
    private var meta: DeviceHandle
    private var writer: MetadataWriter
    private var ctx: io_context_t?
    private let capacity: Int
    private let iocbs: UnsafeMutablePointer<iocb>
    private let iocbPointers: UnsafeMutablePointer<UnsafeMutablePointer<iocb>?>
    private let events: UnsafeMutablePointer<io_event>
    private var slots: [SlotUse]
    private var freeSlots: [Int]
    private var dataInFlight = 0
    private var metaInFlight = 0
    private var dataBacklog: [(StoreTag, StoreOperation)] = []
    private var dataBacklogHead = 0
    private var metaBacklog: [MetadataWrite] = []
    private var metaBacklogHead = 0
    private var ready: [StoreCompletion] = []
    private let buffers = BufferPool()
    private var statsStorage = Stats()

    private enum SlotUse {
        case free
        case read(StoreTag, buffer: UnsafeMutableRawPointer, sizeClass: Int, length: Int)
        case write(StoreTag, buffer: UnsafeMutableRawPointer, sizeClass: Int, length: Int)
        case flush(StoreTag)
        case metadata(MetadataWrite, buffer: UnsafeMutableRawPointer, sizeClass: Int)
    }

    // MARK: - lifecycle (static: probe, format, wipe)

    /// What is on the device at `path`: missing, blank (`metadata: nil`), this format's
    /// metadata, or `.unreadable` with the reason (foreign, corrupt, unsupported version).
    public static func probe(path: String) -> DeviceProbe {
        var st = stat()
        if stat(path, &st) != 0 {
            if errno == ENOENT || errno == ENOTDIR { return .missing }
            return .unreadable(sizeSectors: 0, reason: "stat \(path): \(errnoText(errno))")
        }
        let device: DeviceHandle
        do {
            device = try DeviceHandle.open(path, flags: O_RDONLY | caio_O_DIRECT)
        } catch {
            return .unreadable(sizeSectors: 0, reason: error.message)
        }
        defer { device.close() }
        switch Recovery.recover(deviceSectors: device.sizeSectors, read: device.readBlocks) {
        case .success(let state): return .present(sizeSectors: device.sizeSectors, metadata: state)
        case .failure(let error): return .unreadable(sizeSectors: device.sizeSectors, reason: error.message)
        }
    }

    /// Writes fresh metadata for `state` (`create_store`, `add_store mode=replace`). Nothing
    /// is written when the geometry does not fit (mapped_size larger than the device...) or,
    /// unless `force`, when the two header blocks are not blank: RMR metadata or foreign data
    /// (a file system's superblock) is never overwritten by accident.
    /// `nonce` identifies this format on disk; pass one for a reproducible image.
    public static func format(path: String, state: DurablePoolState, nonce: UInt64? = nil,
                              journalBlocks: UInt32 = MetadataLayout.defaultJournalBlocks,
                              journalWindowBlocks: UInt32 = MetadataLayout.defaultJournalWindowBlocks,
                              force: Bool = false) throws(StoreError) {
        let device = try DeviceHandle.open(path, flags: O_RDWR | caio_O_DIRECT | caio_O_DSYNC)
        defer { device.close() }
        try device.lockExclusive(path)
        let plan: [[MetadataWrite]]
        do {
            plan = try FormatPlan.format(state, deviceSectors: device.sizeSectors, nonce: nonce ?? UInt64.random(in: 1...UInt64.max),
                                         journalBlocks: journalBlocks, journalWindowBlocks: journalWindowBlocks)
        } catch {
            throw StoreError(error)
        }
        if !force {
            let headers: [UInt8]
            switch device.readBlocks(0, MetadataLayout.headerCopies) {
            case .success(let b): headers = b
            case .failure(let e): throw StoreError(e)
            }
            if headers.contains(where: { $0 != 0 }) {
                let what: String
                switch Recovery.recover(deviceSectors: device.sizeSectors, read: device.readBlocks) {
                case .success(let s?): what = "RMR metadata of pool '\(s.poolName)'"
                case .success(nil): what = "data"
                case .failure(let e): what = "unrecognised metadata (\(e.message))"
                }
                throw StoreError(.refused, "\(path) holds \(what) in its header blocks; wipe it first")
            }
        }
        for phase in plan {
            for w in phase { try device.writeBlocks(w.block, w.bytes) }
        }
    }

    /// Erases the metadata of the device at `path` (both header copies, checkpoints, journal).
    /// Refuses, unless `force`, a device whose header blocks hold foreign data.
    public static func wipe(path: String, force: Bool = false) throws(StoreError) {
        let device = try DeviceHandle.open(path, flags: O_RDWR | caio_O_DIRECT | caio_O_DSYNC)
        defer { device.close() }
        try device.lockExclusive(path)
        var layout: MetadataLayout?
        switch Recovery.recoverDetailed(deviceSectors: device.sizeSectors, read: device.readBlocks) {
        case .success(let r): layout = r?.header.layout
        case .failure(let e):
            if e.kind == .foreign && !force { throw StoreError(.refused, "\(path): \(e.message); not wiping foreign data") }
            // Damaged RMR metadata: a readable header copy still tells where the rest is.
            var notes: [String] = []
            layout = (try? Recovery.readHeader(device.readBlocks, notes: &notes))??.layout
        }
        if let l = layout, l.requiredSectors > device.sizeSectors { layout = nil }
        for phase in FormatPlan.wipe(layout: layout) {
            for w in phase { try device.writeBlocks(w.block, w.bytes) }
        }
    }

    /// The smallest device (sectors) that holds a store of `mappedSectors` with this geometry:
    /// data offset + mapped size + metadata region.
    public static func requiredDeviceSectors(mappedSectors: UInt64, chunkBytes: UInt64,
                                             journalBlocks: UInt32 = MetadataLayout.defaultJournalBlocks) throws(StoreError) -> UInt64 {
        do {
            return try MetadataLayout(dataSectors: mappedSectors, chunkBytes: chunkBytes, journalBlocks: journalBlocks).requiredSectors
        } catch {
            throw StoreError(error)
        }
    }

    // MARK: - open / close

    /// Opens a formatted store: recovers the metadata (checkpoint + journal replay), then sets
    /// up the AIO context. Fails on a blank, foreign or corrupt device.
    public init(path: String, options: Options = Options()) throws(StoreError) {
        precondition(options.queueDepth >= 1 && options.metadataDepth >= 1, "queue depths must be positive")
        self.path = path
        self.options = options
        bdevName = deviceName(path)
        data = try DeviceHandle.open(path, flags: O_RDWR | caio_O_DIRECT)
        do {
            try data.lockExclusive(path)
            meta = try DeviceHandle.open(path, flags: O_RDWR | caio_O_DIRECT | caio_O_DSYNC)
        } catch {
            data.close()
            throw error
        }
        deviceSectors = data.sizeSectors
        let recovered: RecoveredMetadata
        switch Recovery.recoverDetailed(deviceSectors: data.sizeSectors, read: data.readBlocks) {
        case .success(let r?): recovered = r
        case .success(nil):
            data.close(); meta.close()
            throw StoreError(.format(.mismatch), "\(path) has no RMR metadata")
        case .failure(let e):
            data.close(); meta.close()
            throw StoreError(e)
        }
        layout = recovered.header.layout
        recoveryNotes = recovered.notes
        writer = MetadataWriter(recovered: recovered)
        capacity = options.queueDepth + options.metadataDepth
        iocbs = .allocate(capacity: capacity)
        iocbs.initialize(repeating: iocb(), count: capacity)
        iocbPointers = .allocate(capacity: capacity)
        iocbPointers.initialize(repeating: nil, count: capacity)
        events = .allocate(capacity: capacity)
        events.initialize(repeating: io_event(), count: capacity)
        slots = [SlotUse](repeating: .free, count: capacity)
        freeSlots = Array((0..<capacity).reversed())
        do throws(StoreError) {
            // A checkpoint first if the journal tail holds stale blocks (synchronous: open only).
            try runWriterSynchronously()
            let rc = io_setup(Int32(capacity), &ctx)
            if rc < 0 { throw StoreError.system("io_setup(\(capacity))", -rc) }
            if options.useEventFD {
                eventFD = eventfd(0, Int32(caio_EFD_NONBLOCK | caio_EFD_CLOEXEC))
                if eventFD < 0 { throw StoreError.system("eventfd", errno) }
            }
        } catch {
            release()
            throw error
        }
    }

    deinit {
        if isOpen { _ = close() }
        iocbs.deallocate()
        iocbPointers.deallocate()
        events.deallocate()
    }

    /// Waits for every IO and persist in flight, then closes the device. Returns the
    /// completions that arrived meanwhile.
    @discardableResult
    public func close() -> [StoreCompletion] {
        guard isOpen else { return [] }
        let drained = drain()
        release()
        return drained
    }

    /// `delete_store`: waits for IO in flight, erases the metadata (header copies first, then
    /// checkpoints and journal) and closes the store.
    @discardableResult
    public func wipe() throws(StoreError) -> [StoreCompletion] {
        precondition(isOpen, "wipe of a closed store")
        let drained = drain()
        defer { release() }
        for phase in FormatPlan.wipe(layout: layout) {
            for w in phase { try meta.writeBlocks(w.block, w.bytes) }
        }
        return drained
    }

    private func drain() -> [StoreCompletion] {
        var out: [StoreCompletion] = []
        while true {
            out += poll(minEvents: 1)
            let nothingInFlight = dataInFlight == 0 && metaInFlight == 0 && dataBacklogHead == dataBacklog.count
                && metaBacklogHead == metaBacklog.count
            if nothingInFlight && writer.isIdle && ready.isEmpty { return out }
            // With nothing in flight, the poll above issued whatever the writer had left.
            precondition(!nothingInFlight || !ready.isEmpty || writer.writesInFlight > 0,
                         "metadata writer stalled with nothing in flight")
        }
    }

    private func release() {
        guard isOpen else { return }
        isOpen = false
        if ctx != nil { _ = io_destroy(ctx); ctx = nil }
        if eventFD >= 0 { _ = Glibc.close(eventFD); eventFD = -1 }
        // After a drain every slot is free; this only matters for an aborted open.
        for (i, use) in slots.enumerated() {
            switch use {
            case .read(_, let b, let c, _), .write(_, let b, let c, _), .metadata(_, let b, let c): buffers.give(b, sizeClass: c)
            case .flush, .free: break
            }
            slots[i] = .free
        }
        data.close()
        meta.close()
    }

    private func runWriterSynchronously() throws(StoreError) {
        while true {
            let writes = writer.takeWrites()
            if writes.isEmpty {
                precondition(writer.isIdle || writer.failure != nil, "metadata writer stalled with nothing in flight")
                break
            }
            for w in writes {
                var ok = true
                do { try meta.writeBlocks(w.block, w.bytes) } catch { ok = false }
                writer.completed(id: w.id, ok: ok)
            }
            _ = writer.takeCompletions()
        }
        if let f = writer.failure { throw StoreError(f) }
    }

    // MARK: - attributes

    /// The state the metadata will hold once every accepted persist is durable.
    public var metadata: DurablePoolState { writer.state }
    public var stats: Stats {
        var s = statsStorage
        s.metadata = writer.stats
        return s
    }
    public var attributes: StoreAttributes {
        StoreAttributes(isOpen: isOpen, isMapped: writer.state.storeMapped, mappedSectors: writer.state.mappedSectors,
                        bdevName: bdevName, deviceSectors: deviceSectors)
    }
    /// IOs and metadata writes in flight or queued.
    public var outstanding: Int {
        dataInFlight + metaInFlight + (dataBacklog.count - dataBacklogHead) + (metaBacklog.count - metaBacklogHead)
    }
    /// Why the metadata writer stopped (every later persist completes with ok: false).
    public var metadataFailure: FormatError? { writer.failure }

    // MARK: - data IO

    /// Starts a data IO. Offsets are relative to the data region and must be aligned to the
    /// device's logical block size; the completion comes from `poll`.
    public func submit(tag: StoreTag, op: StoreOperation) {
        precondition(isOpen, "submit on a closed store")
        if let error = validate(op) {
            ready.append(.store(tag, .failed(error)))
            return
        }
        if dataInFlight < options.queueDepth && dataBacklogHead == dataBacklog.count {
            start(tag, op)
        } else {
            dataBacklog.append((tag, op))
        }
    }

    private func validate(_ op: StoreOperation) -> Errno? {
        let align = data.logicalBlockBytes
        let limit = writer.state.mappedSectors * Limits.sectorBytes
        func check(_ offset: UInt64, _ length: UInt64) -> Errno? {
            guard length > 0, length <= BlockStore.maxIOBytes, offset % align == 0, length % align == 0 else { return .EINVAL }
            guard offset <= limit, length <= limit - offset else { return .ERANGE }
            return nil
        }
        switch op {
        case .read(let offset, let length): return check(offset, length)
        case .write(let offset, let bytes): return check(offset, UInt64(bytes.count))
        case .flush: return nil
        }
    }

    private func start(_ tag: StoreTag, _ op: StoreOperation) {
        let slot = freeSlots.removeLast()
        let cb = iocbs + slot
        let base = Int64(layout.dataOffsetBytes)
        switch op {
        case .read(let offset, let length):
            let (buf, cap) = buffers.take(Int(length))
            io_prep_pread(cb, data.fd, buf, Int(length), base + Int64(offset))
            slots[slot] = .read(tag, buffer: buf, sizeClass: cap, length: Int(length))
        case .write(let offset, let bytes):
            let (buf, cap) = buffers.take(bytes.count)
            bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            io_prep_pwrite(cb, data.fd, buf, bytes.count, base + Int64(offset))
            slots[slot] = .write(tag, buffer: buf, sizeClass: cap, length: bytes.count)
        case .flush:
            io_prep_fdsync(cb, data.fd)
            slots[slot] = .flush(tag)
        }
        dataInFlight += 1
        submitSlot(slot)
    }

    /// One io_submit per IO: on a virtio disk this beat batching (machine-feasibility §2).
    private func submitSlot(_ slot: Int) {
        let cb = iocbs + slot
        cb.pointee.data = UnsafeMutableRawPointer(bitPattern: slot + 1)
        if eventFD >= 0 { io_set_eventfd(cb, eventFD) }
        iocbPointers[slot] = cb
        var rc: Int32
        repeat { rc = io_submit(ctx, 1, iocbPointers + slot) } while rc == -EINTR
        if rc == 1 { return }
        // libaio returns -errno and leaves errno alone.
        let err: Int32 = rc < 0 ? -rc : EIO
        if err == EAGAIN {
            // The kernel is out of AIO resources for now: retry after the next reap.
            statsStorage.submitRetries += 1
            requeue(slot)
            return
        }
        fail(slot, err)
    }

    private func requeue(_ slot: Int) {
        switch slots[slot] {
        case .read(let tag, let b, let c, let length):
            let offset = UInt64(iocbs[slot].u.c.offset) - layout.dataOffsetBytes
            buffers.give(b, sizeClass: c)
            dataInFlight -= 1
            dataBacklog.insert((tag, .read(offsetBytes: offset, lengthBytes: UInt64(length))), at: dataBacklogHead)
        case .write(let tag, let b, let c, let length):
            let offset = UInt64(iocbs[slot].u.c.offset) - layout.dataOffsetBytes
            let bytes = Array(UnsafeRawBufferPointer(start: b, count: length))
            buffers.give(b, sizeClass: c)
            dataInFlight -= 1
            dataBacklog.insert((tag, .write(offsetBytes: offset, data: bytes)), at: dataBacklogHead)
        case .flush(let tag):
            dataInFlight -= 1
            dataBacklog.insert((tag, .flush), at: dataBacklogHead)
        case .metadata(let w, let b, let c):
            buffers.give(b, sizeClass: c)
            metaInFlight -= 1
            metaBacklog.insert(w, at: metaBacklogHead)
        case .free:
            preconditionFailure("requeue of a free slot")
        }
        slots[slot] = .free
        freeSlots.append(slot)
    }

    /// Completes the IO in `slot` with `err` without it reaching the kernel.
    private func fail(_ slot: Int, _ err: Int32) {
        if case .flush(let tag) = slots[slot], err == EINVAL {
            // Kernels before 4.18 (and some drivers) refuse IOCB_CMD_FDSYNC: sync inline.
            let rc = fdatasync(data.fd)
            ready.append(.store(tag, rc == 0 ? .ok(data: []) : .failed(Errno(rawValue: errno) ?? .EIO)))
            statsStorage.dataFlushes += 1
            dataInFlight -= 1
            slots[slot] = .free
            freeSlots.append(slot)
            return
        }
        finish(slot, result: -Int(err))
    }

    /// Turns a kernel result (bytes or -errno) into a completion and frees the slot.
    private func finish(_ slot: Int, result res: Int) {
        let use = slots[slot]
        slots[slot] = .free
        freeSlots.append(slot)
        func failure() -> Errno { res < 0 ? (Errno(rawValue: Int32(-res)) ?? .EIO) : .EIO }
        switch use {
        case .read(let tag, let buf, let cap, let length):
            dataInFlight -= 1
            statsStorage.dataReads += 1
            if res == length {
                ready.append(.store(tag, .ok(data: Array(UnsafeRawBufferPointer(start: buf, count: length)))))
            } else {
                ready.append(.store(tag, .failed(failure())))
            }
            buffers.give(buf, sizeClass: cap)
        case .write(let tag, let buf, let cap, let length):
            dataInFlight -= 1
            statsStorage.dataWrites += 1
            ready.append(.store(tag, res == length ? .ok(data: []) : .failed(failure())))
            buffers.give(buf, sizeClass: cap)
        case .flush(let tag):
            dataInFlight -= 1
            statsStorage.dataFlushes += 1
            ready.append(.store(tag, res == 0 ? .ok(data: []) : .failed(failure())))
        case .metadata(let w, let buf, let cap):
            metaInFlight -= 1
            buffers.give(buf, sizeClass: cap)
            writer.completed(id: w.id, ok: res == w.bytes.count)
        case .free:
            preconditionFailure("completion for free slot \(slot)")
        }
    }

    // MARK: - metadata

    /// Queues a persist record; it completes (in order) once durable.
    public func persist(tag: PersistTag, record: PersistRecord) {
        precondition(isOpen, "persist on a closed store")
        writer.append(tag: tag, record: record)
    }

    /// Issues the journal writes for the persists queued so far (`poll` does this first).
    public func flushMetadata() {
        guard isOpen else { return }
        for w in writer.takeWrites() { issueMetadata(w) }
        drainBacklogs()
    }

    private func issueMetadata(_ w: MetadataWrite) {
        guard metaInFlight < options.metadataDepth, metaBacklogHead == metaBacklog.count else {
            metaBacklog.append(w)
            return
        }
        startMetadata(w)
    }

    private func startMetadata(_ w: MetadataWrite) {
        let slot = freeSlots.removeLast()
        let (buf, cap) = buffers.take(w.bytes.count)
        w.bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: w.bytes.count) }
        io_prep_pwrite(iocbs + slot, meta.fd, buf, w.bytes.count, Int64(w.block * MetadataLayout.blockBytes))
        slots[slot] = .metadata(w, buffer: buf, sizeClass: cap)
        metaInFlight += 1
        submitSlot(slot)
    }

    private func drainBacklogs() {
        while metaBacklogHead < metaBacklog.count && metaInFlight < options.metadataDepth {
            let w = metaBacklog[metaBacklogHead]
            metaBacklogHead += 1
            startMetadata(w)
        }
        if metaBacklogHead == metaBacklog.count { metaBacklog.removeAll(keepingCapacity: true); metaBacklogHead = 0 }
        while dataBacklogHead < dataBacklog.count && dataInFlight < options.queueDepth {
            let (tag, op) = dataBacklog[dataBacklogHead]
            dataBacklogHead += 1
            start(tag, op)
        }
        if dataBacklogHead == dataBacklog.count { dataBacklog.removeAll(keepingCapacity: true); dataBacklogHead = 0 }
    }

    // MARK: - completions

    /// Reaps completions. Waits for at least `minEvents` (fewer if fewer are in flight, none if
    /// some are ready already) up to `timeoutNanos` (nil: no limit).
    public func poll(minEvents: Int = 1, timeoutNanos: UInt64? = nil) -> [StoreCompletion] {
        guard isOpen else { return takeReady() }
        flushMetadata()
        collectPersistCompletions()
        let inFlight = dataInFlight + metaInFlight
        if inFlight > 0 {
            let want = ready.isEmpty ? min(max(0, minEvents), inFlight) : 0
            var ts = timespec(tv_sec: Int(timeoutNanos.map { $0 / 1_000_000_000 } ?? 0),
                              tv_nsec: Int(timeoutNanos.map { $0 % 1_000_000_000 } ?? 0))
            var rc: Int32
            repeat {
                if timeoutNanos == nil && want > 0 {
                    rc = io_getevents(ctx, want, capacity, events, nil)
                } else {
                    rc = io_getevents(ctx, want, capacity, events, &ts)
                }
            } while rc == -EINTR
            // io_getevents fails only for a bad context or pointer: a bug here.
            precondition(rc >= 0, "io_getevents: \(errnoText(-rc))")
            for i in 0..<Int(rc) {
                let ev = events[i]
                let slot = Int(bitPattern: ev.data) - 1
                finish(slot, result: Int(bitPattern: ev.res))
            }
            collectPersistCompletions()
            flushMetadata()
            collectPersistCompletions()
        }
        return takeReady()
    }

    private func collectPersistCompletions() {
        for c in writer.takeCompletions() { ready.append(.persist(c.tag, ok: c.ok)) }
    }

    private func takeReady() -> [StoreCompletion] {
        defer { ready.removeAll(keepingCapacity: true) }
        return ready
    }

    /// Clears the eventfd counter (after epoll reported it readable).
    public func clearEventFD() {
        guard eventFD >= 0 else { return }
        var counter: UInt64 = 0
        _ = read(eventFD, &counter, 8)
    }
}
