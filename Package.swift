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
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "LedgerCrypto", dependencies: ["COpenSSL"], swiftSettings: settings),
        .testTarget(name: "LedgerCryptoTests", dependencies: ["LedgerCrypto"], swiftSettings: settings),
        .target(name: "LedgerMerkle", dependencies: ["LedgerCrypto"], swiftSettings: settings),
        .testTarget(name: "LedgerMerkleTests", dependencies: ["LedgerMerkle", "LedgerCrypto"], swiftSettings: settings),
    ],
    swiftLanguageModes: [.v6]
)
