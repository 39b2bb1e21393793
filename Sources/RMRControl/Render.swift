import RMRCore

// The text of each readable attribute, rendered from the core's views exactly as the guide
// prints it (no trailing newline; the caller adds it). Pure: tests call these with hand-built
// views, `ControlTree.read` calls them with a node's.

extension ControlTree {
    /// map_summary lists at most this many dirty chunk indices per member (notes §5.5).
    public static let mapSummaryMaxIndices = 50

    /// `rmr-server/pools/P/state`: `normal`, plus `Maintenance mode: 1` when it is set.
    public static func renderServerState(_ view: ServerPoolView) -> String {
        withMaintenance(view.state.rawValue, view.maintenance)
    }

    /// `rmr-server/pools/P/member_id` and `rmr-client/pools/P/sessions/S/member_id`.
    public static func renderMemberID(_ member: MemberID) -> String { String(member) }

    /// `rmr-server/pools/P/sync`: `running` or `stopped`.
    public static func renderSyncThread(_ view: ServerPoolView) -> String { view.syncThread == .running ? "running" : "stopped" }

    /// `rmr-server/pools/P/map_summary`: one line per map, in the view's order (own first).
    public static func renderMapSummary(_ view: ServerPoolView) -> String {
        view.maps.map { renderMapSummaryLine(member: $0.member, map: $0.map) }.joined(separator: "\n")
    }

    /// `member 43: [12 28 80] 3/800 dirty`; past 50 indices, ` ...` goes before `]`.
    public static func renderMapSummaryLine(member: MemberID, map: DirtyMap) -> String {
        var listed = map.firstDirty(limit: mapSummaryMaxIndices).map(String.init)
        if map.dirtyCount > UInt64(mapSummaryMaxIndices) { listed.append("...") }
        return "member \(member): [\(listed.joined(separator: " "))] \(map.dirtyCount)/\(map.chunkCount) dirty"
    }

    /// `rmr-server/pools/P/map`: every map in full, one line per member.
    public static func renderMap(_ view: ServerPoolView) -> String {
        view.maps.map { renderMapLine(member: $0.member, map: $0.map) }.joined(separator: "\n")
    }

    /// `member 43: 12 28-30 80` (inclusive ranges for runs longer than one); `member 42:` when clean.
    public static func renderMapLine(member: MemberID, map: DirtyMap) -> String {
        let runs = map.runs().map { run in
            run.count == 1 ? String(run.start) : "\(run.start)-\(run.end - 1)"
        }
        return (["member \(member):"] + runs).joined(separator: " ")
    }

    /// `rmr-client/pools/P/sessions/S/state`: `normal`, plus `Maintenance mode: 1` when set.
    public static func renderSessionState(_ leg: LegView) -> String {
        withMaintenance(leg.state.rawValue, leg.maintenance)
    }

    /// `brmr-client/ctl/devices/DEV/state`: `ready` or `disconnected`.
    public static func renderDeviceState(_ device: DeviceView) -> String { device.state.rawValue }

    /// `brmr-client/ctl/devices/DEV/block/size`: sectors.
    public static func renderDeviceSize(_ device: DeviceView) -> String { String(device.sizeSectors) }

    /// `brmr-server/stores/P/state`: `open`/`closed` on one line, `mapped`/`unmapped` on the next.
    public static func renderStoreState(_ store: StoreView) -> String {
        (store.open ? "open" : "closed") + "\n" + (store.mapped ? "mapped" : "unmapped")
    }

    /// `brmr-server/stores/P/mapped_size`: sectors.
    public static func renderStoreMappedSize(_ store: StoreView) -> String { String(store.mappedSectors) }

    /// `brmr-server/stores/P/bdev_name`: the device's basename (`/dev/sda` → `sda`).
    public static func renderStoreBdevName(_ store: StoreView) -> String {
        store.device.split(separator: "/").last.map(String.init) ?? store.device
    }

    /// `brmr-server/stores/P/dev_size`: sectors of the whole device.
    public static func renderStoreDevSize(_ store: StoreView) -> String { String(store.deviceSectors) }

    private static func withMaintenance(_ state: String, _ maintenance: Bool) -> String {
        maintenance ? state + "\nMaintenance mode: 1" : state
    }
}
