// swift-tools-version:6.0
import PackageDescription

// Target graph (README.md, "What is here"):
//   CPrefetch  one C header: the cache hint the dirty map's batch calls use (no effect on values)
//   RMRCore    pure protocol state machine (stdlib and CPrefetch only; Tests/RMRSimTests/PurityTests)
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
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        .target(name: "RMRCore", dependencies: ["CPrefetch"], path: "Sources/RMRCore"),
        .target(name: "RMRControl", dependencies: ["RMRCore"], path: "Sources/RMRControl"),
        .target(name: "RMRFormat", dependencies: ["RMRCore"], path: "Sources/RMRFormat"),
        .systemLibrary(name: "CAio", path: "Sources/CAio", providers: [.apt(["libaio-dev"])]),
        .target(name: "RMRStore", dependencies: ["RMRCore", "RMRFormat", "CAio"], path: "Sources/RMRStore"),
        // The simulator's hot loop pays ~16 dynamic exclusivity checks per event; the core keeps
        // them (only the driver opts out).
        .target(name: "RMRSim", dependencies: ["RMRCore", "RMRControl", "RMRFormat"], path: "Sources/RMRSim",
                swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        .executableTarget(name: "rmr-sim", dependencies: ["RMRSim"], path: "Sources/rmr-sim"),
        .executableTarget(name: "rmr-bench", dependencies: ["CPrefetch", "RMRCore", "RMRSim", "RMRStore"], path: "Sources/rmr-bench"),
        .testTarget(name: "RMRCoreTests", dependencies: ["RMRCore", "RMRControl"], path: "Tests/RMRCoreTests"),
        .testTarget(name: "RMRControlTests", dependencies: ["RMRCore", "RMRControl"], path: "Tests/RMRControlTests"),
        .testTarget(name: "RMRStoreTests", dependencies: ["RMRCore", "RMRFormat", "RMRStore"], path: "Tests/RMRStoreTests"),
        .testTarget(name: "RMRSimTests", dependencies: ["RMRCore", "RMRControl", "RMRSim"], path: "Tests/RMRSimTests"),
    ],
    swiftLanguageModes: [.v6]
)
