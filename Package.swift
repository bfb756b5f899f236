// swift-tools-version: 6.1
import PackageDescription

let settings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "EvidenceLedger",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ledger", targets: ["LedgerCLI"]),
        .library(name: "LedgerFuzzing", targets: ["LedgerFuzzing"]),
        .executable(name: "ledger-bench", targets: ["LedgerBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "LedgerCrypto", dependencies: ["COpenSSL"], swiftSettings: settings),
        .target(name: "LedgerCore", dependencies: ["LedgerCrypto"], swiftSettings: settings),
        .target(name: "LedgerStore", dependencies: ["LedgerCore", "LedgerCrypto", "LedgerMerkle"], swiftSettings: settings),
        .target(
            name: "LedgerProjections", dependencies: ["LedgerCore", "LedgerStore", "LedgerCrypto"], swiftSettings: settings),
        .executableTarget(
            name: "LedgerCLI",
            dependencies: [
                "LedgerProjections", "LedgerStore", "LedgerCore", "LedgerCrypto", "LedgerMerkle",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: settings
        ),
        .testTarget(name: "LedgerStoreTests", dependencies: ["LedgerStore", "LedgerCore", "LedgerCrypto"], swiftSettings: settings),
        .target(name: "LedgerFuzzing", dependencies: ["LedgerCore", "LedgerCrypto", "LedgerStore", "LedgerProjections"], swiftSettings: settings),
        .testTarget(name: "LedgerFuzzingTests", dependencies: ["LedgerFuzzing", "LedgerStore", "LedgerProjections"], swiftSettings: settings),
        .executableTarget(
            name: "LedgerBench",
            dependencies: [
                "LedgerStore", "LedgerCore", "LedgerCrypto", "LedgerMerkle", "LedgerProjections",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Tools/LedgerBench",
            swiftSettings: settings
        ),
        .testTarget(
            name: "LedgerCLITests", dependencies: ["LedgerCLI", "LedgerCore", "LedgerCrypto", "LedgerProjections", "LedgerStore"],
            swiftSettings: settings),
        .testTarget(name: "LedgerCoreTests", dependencies: ["LedgerCore", "LedgerCrypto"], swiftSettings: settings),
        .testTarget(name: "LedgerCryptoTests", dependencies: ["LedgerCrypto", "LedgerCore"], swiftSettings: settings),
        .target(name: "LedgerMerkle", dependencies: ["LedgerCrypto"], swiftSettings: settings),
        .testTarget(name: "LedgerMerkleTests", dependencies: ["LedgerMerkle", "LedgerCrypto", "LedgerCore", "LedgerStore"], swiftSettings: settings),
        .testTarget(
            name: "LedgerProjectionsTests", dependencies: ["LedgerProjections", "LedgerStore", "LedgerCore", "LedgerCrypto"],
            swiftSettings: settings),
    ],
    swiftLanguageModes: [.v6]
)
