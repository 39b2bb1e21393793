// swift-tools-version:6.0
import PackageDescription

// Target graph (see Docs/architecture.md):
//   RMRCore    pure protocol state machine (stdlib only)
//   RMRControl pure admin control tree: sysfs-style paths -> typed commands, state -> text
//   RMRFormat  pure on-disk metadata encoding (CRC32C, header, metadata ring)
//   CAio       libaio system library;  RMRStore: libaio + O_DIRECT block store
//   RMRSim     deterministic discrete-event simulator driving RMRCore
let package = Package(
    name: "rmr-swift",
    products: [
        .executable(name: "rmr-sim", targets: ["rmr-sim"]),
        .executable(name: "rmr-bench", targets: ["rmr-bench"]),
    ],
    targets: [
        .target(name: "RMRCore", path: "Sources/RMRCore"),
        .target(name: "RMRControl", dependencies: ["RMRCore"], path: "Sources/RMRControl"),
        .target(name: "RMRFormat", dependencies: ["RMRCore"], path: "Sources/RMRFormat"),
        .systemLibrary(name: "CAio", path: "Sources/CAio", providers: [.apt(["libaio-dev"])]),
        .target(name: "RMRStore", dependencies: ["RMRCore", "RMRFormat", "CAio"], path: "Sources/RMRStore"),
        // The simulator's hot loop pays ~16 dynamic exclusivity checks per event; the core keeps
        // them (only the driver opts out).
        .target(name: "RMRSim", dependencies: ["RMRCore", "RMRControl", "RMRFormat"], path: "Sources/RMRSim",
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        .executableTarget(name: "rmr-sim", dependencies: ["RMRSim"], path: "Sources/rmr-sim"),
        .executableTarget(name: "rmr-bench", dependencies: ["RMRCore", "RMRSim", "RMRStore"], path: "Sources/rmr-bench"),
        .testTarget(name: "RMRCoreTests", dependencies: ["RMRCore", "RMRControl"], path: "Tests/RMRCoreTests"),
        .testTarget(name: "RMRControlTests", dependencies: ["RMRCore", "RMRControl"], path: "Tests/RMRControlTests"),
        .testTarget(name: "RMRStoreTests", dependencies: ["RMRCore", "RMRFormat", "RMRStore"], path: "Tests/RMRStoreTests"),
        .testTarget(name: "RMRSimTests", dependencies: ["RMRCore", "RMRControl", "RMRSim"], path: "Tests/RMRSimTests"),
    ],
    swiftLanguageModes: [.v6]
)
