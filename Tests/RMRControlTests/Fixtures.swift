@testable import RMRControl
@testable import RMRCore  // for the views' memberwise initialisers

/// Splits a guide line `echo 'value' > path` (or `echo "value"`, or `echo 1`) into what the
/// shell would write: the path and the value with echo's trailing newline.
func shellEcho(_ line: String) -> (path: String, value: String) {
    precondition(line.hasPrefix("echo "), "not an echo line: \(line)")
    let parts = line.dropFirst(5).split(separator: " > ", maxSplits: 1).map(String.init)
    precondition(parts.count == 2, "no redirection in: \(line)")
    var value = parts[0]
    if let quote = value.first, quote == "'" || quote == "\"" {
        precondition(value.last == quote, "unbalanced quotes in: \(line)")
        value = String(value.dropFirst().dropLast())
    }
    return (parts[1], value + "\n")
}

func dirtyMap(_ indices: [ChunkIndex], chunkCount: UInt64 = 800) -> DirtyMap {
    var map = DirtyMap(chunkCount: chunkCount)
    for index in indices { map.set(index) }
    return map
}

func serverView(
    member: MemberID = 43, state: ServerPoolState = .normal, maintenance: Bool = false,
    syncThread: SyncThreadState = .stopped, maps: [(member: MemberID, map: DirtyMap)] = []
) -> ServerPoolView {
    ServerPoolView(name: "ionos_pool", member: member, state: state, maintenance: maintenance,
                   syncThread: syncThread, mapUpdate: .disabled, mapVersion: .initial, poolUUID: .none,
                   maps: maps, syncPool: nil, writeIntentCount: 0)
}

func legView(state: LegState = .normal, member: MemberID = 42, maintenance: Bool = false) -> LegView {
    LegView(session: "psrv0@stg-rmr0", address: "192.168.122.80", member: member, state: state,
            maintenance: maintenance, wasLastAuthoritative: false)
}

func storeView(device: String = "/dev/sda", open: Bool = true, mapped: Bool = true) -> StoreView {
    StoreView(pool: "ionos_pool", device: device, open: open, mapped: mapped,
              mappedSectors: 204800, deviceSectors: 409600)
}

/// The error of a failed result, or nil when it succeeded.
func failure<T>(_ result: Result<T, RMRError>) -> RMRError? {
    switch result {
    case .success: return nil
    case .failure(let error): return error
    }
}

func success<T>(_ result: Result<T, RMRError>) -> T? {
    switch result {
    case .success(let value): return value
    case .failure: return nil
    }
}
