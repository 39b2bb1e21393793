import Testing
@testable import RMRControl
@testable import RMRCore

// The text of each readable attribute, from hand-built views, against the guide's output.

/// The guide's dirty chunks for member 43 (30 of 800).
let guideDirty43: [ChunkIndex] = [12, 28, 80, 87, 93, 95, 116, 125, 142, 340, 388, 402, 431, 435, 436, 437,
                                  453, 457, 486, 523, 531, 536, 554, 661, 694, 745, 746, 750, 753, 755]

@Test func mapSummaryGuideExample() {
    let view = serverView(maps: [(member: 43, map: dirtyMap(guideDirty43)), (member: 42, map: dirtyMap([]))])
    #expect(ControlTree.renderMapSummary(view) == """
        member 43: [12 28 80 87 93 95 116 125 142 340 388 402 431 435 436 437 453 457 486 523 531 536 554 661 694 745 746 750 753 755] 30/800 dirty
        member 42: [] 0/800 dirty
        """)
}

@Test func mapSummaryEmptyMap() {
    #expect(ControlTree.renderMapSummaryLine(member: 42, map: dirtyMap([])) == "member 42: [] 0/800 dirty")
}

@Test func mapSummaryThirtyDirty() {
    let line = ControlTree.renderMapSummaryLine(member: 43, map: dirtyMap(guideDirty43))
    #expect(line == "member 43: [12 28 80 87 93 95 116 125 142 340 388 402 431 435 436 437 453 457 486 523 531 536 554 661 694 745 746 750 753 755] 30/800 dirty")
}

@Test func mapSummarySixtyDirtyListsFiftyThenEllipsis() {
    let line = ControlTree.renderMapSummaryLine(member: 43, map: dirtyMap(Array(0..<60)))
    let fifty = (0..<50).map(String.init).joined(separator: " ")
    #expect(line == "member 43: [\(fifty) ...] 60/800 dirty")
    #expect(line.hasPrefix("member 43: [0 1 2 "))
    #expect(line.contains(" 48 49 ...] 60/800 dirty"))
}

@Test func mapSummaryAtTheLimitHasNoEllipsis() {
    let fifty = dirtyMap(Array(100..<150))
    #expect(ControlTree.renderMapSummaryLine(member: 1, map: fifty)
            == "member 1: [\((100..<150).map(String.init).joined(separator: " "))] 50/800 dirty")
    let fiftyOne = dirtyMap(Array(100..<151))
    #expect(ControlTree.renderMapSummaryLine(member: 1, map: fiftyOne)
            == "member 1: [\((100..<150).map(String.init).joined(separator: " ")) ...] 51/800 dirty")
}

@Test func mapSummaryWithNoMapsIsEmpty() {
    #expect(ControlTree.renderMapSummary(serverView(maps: [])) == "")
}

@Test func fullMapRangesAndCleanMember() {
    let view = serverView(maps: [(member: 43, map: dirtyMap([12, 28, 29, 30, 80])), (member: 42, map: dirtyMap([]))])
    #expect(ControlTree.renderMap(view) == "member 43: 12 28-30 80\nmember 42:")
}

@Test func fullMapGuideExample() {
    #expect(ControlTree.renderMapLine(member: 43, map: dirtyMap(guideDirty43)) == "member 43: 12 28 80 87 93 95 116 "
            + "125 142 340 388 402 431 435-437 453 457 486 523 531 536 554 661 694 745-746 750 753 755")
}

@Test func fullMapRunToTheLastChunk() {
    #expect(ControlTree.renderMapLine(member: 7, map: dirtyMap([0, 797, 798, 799])) == "member 7: 0 797-799")
    #expect(ControlTree.renderMapLine(member: 7, map: DirtyMap(chunkCount: 800, allDirty: true)) == "member 7: 0-799")
}

@Test(arguments: ServerPoolState.allCases)
func serverStateIsLowerCaseName(_ state: ServerPoolState) {
    #expect(ControlTree.renderServerState(serverView(state: state)) == state.rawValue)
}

@Test func serverStateGuideValues() {
    #expect(ControlTree.renderServerState(serverView(state: .normal)) == "normal")
    #expect(ControlTree.renderServerState(serverView(state: .noIO)) == "no_io")
    #expect(ControlTree.renderServerState(serverView(state: .noIO, maintenance: true)) == "no_io\nMaintenance mode: 1")
}

@Test func serverMemberAndSyncThread() {
    #expect(ControlTree.renderMemberID(serverView(member: 43).member) == "43")
    #expect(ControlTree.renderSyncThread(serverView(syncThread: .running)) == "running")
    #expect(ControlTree.renderSyncThread(serverView(syncThread: .stopped)) == "stopped")
}

@Test(arguments: LegState.allCases)
func sessionStateIsLowerCaseName(_ state: LegState) {
    #expect(ControlTree.renderSessionState(legView(state: state)) == state.rawValue)
}

@Test func sessionStateGuideValuesAndMaintenance() {
    #expect(ControlTree.renderSessionState(legView(state: .normal)) == "normal")
    #expect(ControlTree.renderSessionState(legView(state: .reconnecting)) == "reconnecting")
    #expect(ControlTree.renderSessionState(legView(state: .reconnecting, maintenance: true))
            == "reconnecting\nMaintenance mode: 1")
    #expect(ControlTree.renderMemberID(legView(member: 42).member) == "42")
}

@Test func storeStateLines() {
    #expect(ControlTree.renderStoreState(storeView(open: true, mapped: true)) == "open\nmapped")
    #expect(ControlTree.renderStoreState(storeView(open: true, mapped: false)) == "open\nunmapped")
    #expect(ControlTree.renderStoreState(storeView(open: false, mapped: true)) == "closed\nmapped")
    #expect(ControlTree.renderStoreState(storeView(open: false, mapped: false)) == "closed\nunmapped")
}

@Test func storeSizesAndDeviceName() {
    let store = storeView()
    #expect(ControlTree.renderStoreMappedSize(store) == "204800")
    #expect(ControlTree.renderStoreDevSize(store) == "409600")
    #expect(ControlTree.renderStoreBdevName(store) == "sda")
    #expect(ControlTree.renderStoreBdevName(storeView(device: "/dev/sda_new")) == "sda_new")
    #expect(ControlTree.renderStoreBdevName(storeView(device: "/dev/disk/by-id/nvme-x")) == "nvme-x")
}

@Test func deviceStateAndSize() {
    let device = DeviceView(name: "brmr0", pool: "ionos_pool", state: .ready, sizeSectors: 204800)
    #expect(ControlTree.renderDeviceState(device) == "ready")
    #expect(ControlTree.renderDeviceSize(device) == "204800")
    var lost = device
    lost.state = .disconnected
    #expect(ControlTree.renderDeviceState(lost) == "disconnected")
}
