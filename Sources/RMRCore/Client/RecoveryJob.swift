// A recovery run of `try_enable` (notes §6.5): map spread (Case 1), direct enable of the last
// authoritative leg (Case 2), or last-IO reconciliation (Cases 3/4, §6.7). One job per pool at a
// time; each step waits for one answer, so the job is a small explicit state machine.

enum RecoveryKind: Sendable, Hashable {
    /// Case 1: spread the map of a NORMAL `source` to every receiver, enabling them.
    case spread
    /// Case 2: ENABLE_POOL(1) to the leg that was last authoritative, then Case 1.
    case enableAuthoritative
    /// Cases 3/4: no NORMAL and no authoritative leg; every member present.
    case lastIO
}

enum RecoveryPhase: Sendable, Hashable {
    /// IO is frozen; waiting for in-flight IO units to finish.
    case draining
    case enablingAuthoritative(MemberID)
    /// Case 2: chunks whose writes failed everywhere are marked dirty for all but the source.
    case markingIndeterminate(MemberID, chunks: [ChunkIndex])
    case gettingVersions(waitingOn: [MemberID])
    /// Last-IO: reading a participant's maps, then merging them into the source (MAP_MERGE).
    case readingPeerMaps(MemberID)
    case mergingPeerMaps(from: MemberID)
    case spreadReady(receiver: MemberID)
    case spreadSend(receiver: MemberID)
    case spreadDone(receiver: MemberID)
    case lastIOConvert(MemberID)
    case lastIOMark(waitingOn: [MemberID])
    case readingMaps(MemberID)
    case enablingAll(waitingOn: [MemberID])
}

struct RecoveryJob: Sendable, Hashable {
    let id: UInt64
    let kind: RecoveryKind
    var phase: RecoveryPhase = .draining
    /// Map source (NORMAL leg, authoritative leg, or highest map_ver during last-IO).
    var source: MemberID = 0
    /// Receivers still to get the map, in member order.
    var receivers: [MemberID] = []
    /// Whether the current spread admits receivers (MAP_DONE enable=1).
    var enableOnSpread = true
    /// Last-IO: legs still to convert, in member order; every leg of the job.
    var convertOrder: [MemberID] = []
    var participants: [MemberID] = []
    /// Last-IO: participants whose maps are still to be merged into the source.
    var mergeOrder: [MemberID] = []
    /// Last-IO: the best map version seen so far.
    var bestVersion: MapVersion?
}
