// swift-tools-version: 6.1
// The fuzz target lives in its own package so that ordinary builds of the ledger do not need
// libFuzzer. Build and run it with Tools/fuzz/run.sh.
import PackageDescription

let package = Package(
    name: "LedgerFuzz",
    dependencies: [.package(name: "EvidenceLedger", path: "../..")],
    targets: [
        .executableTarget(
            name: "LedgerFuzz",
            dependencies: [.product(name: "LedgerFuzzing", package: "EvidenceLedger")]
        ),
    ]
)
