// swift-tools-version:6.0
//
// prepage — Dynamic Prepage (DP) for post-copy live migration.
// Layering (arrows point inward, see README "Layout"):
//   prepaged    → PrepageServer → {PrepageCore, PrepageHTTP, PrepageSockets}
//   prepagectl  → PrepageClient → {CPrepageClient → {CCurl, CJansson}, PrepageCore (the config field table)}
//   prepage-sim → PrepageSimulator → PrepageCore
// PrepageCore imports nothing but the Swift standard library.
import PackageDescription

let package = Package(
    name: "prepage",
    products: [
        .library(name: "PrepageCore", targets: ["PrepageCore"]),
        .library(name: "PrepageClient", targets: ["PrepageClient"]),
        // For the fuzzers in Fuzz/ (a package of their own, built by `make fuzz`).
        .library(name: "PrepageHTTP", targets: ["PrepageHTTP"]),
        .library(name: "PrepageServer", targets: ["PrepageServer"]),
        .executable(name: "prepaged", targets: ["prepaged"]),
        .executable(name: "prepage-sim", targets: ["prepage-sim"]),
        .executable(name: "prepagectl", targets: ["prepagectl"]),
    ],
    // Pinned to exact versions: neither package depends on another, so these two
    // lines fix the whole graph. Package.resolved stays out of git because it
    // records commit ids, and the mirror this project's CI builds from has other
    // commit ids than GitHub for the same tags (docs/deploy.md).
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    ],
    targets: [
        // The algorithms. Swift standard library only: no Foundation, no Glibc, no I/O.
        .target(name: "PrepageCore"),
        .target(name: "PrepageHTTP"),
        // epoll and eventfd headers, which the Glibc module map leaves out.
        .systemLibrary(name: "CEpoll"),
        .target(name: "PrepageSockets", dependencies: ["CEpoll"]),
        .target(
            name: "PrepageServer",
            dependencies: [
                "PrepageCore", "PrepageHTTP", "PrepageSockets",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(
            name: "prepaged",
            dependencies: [
                "PrepageServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .systemLibrary(
            name: "CCurl", pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(
            name: "CJansson", pkgConfig: "jansson",
            providers: [.apt(["libjansson-dev"])]),
        .target(
            name: "CPrepageClient",
            dependencies: ["CCurl", "CJansson"]),
        // PrepageCore for the one table of session-config fields the client's SessionConfig is built on.
        .target(name: "PrepageClient", dependencies: ["CPrepageClient", "PrepageCore"]),
        .executableTarget(
            name: "prepagectl",
            dependencies: [
                "PrepageClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(name: "prepage-postcopy", dependencies: ["CPrepageClient"]),
        .target(name: "PrepageSimulator", dependencies: ["PrepageCore"]),
        .executableTarget(
            name: "prepage-sim",
            dependencies: [
                "PrepageSimulator", "PrepageClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Benchmarks are not tests: `make bench-*` runs them in release mode.
        .executableTarget(
            name: "prepage-bench",
            dependencies: ["PrepageCore", "PrepageSimulator", "CAllocationCounter"],
            path: "Benchmarks/prepage-bench"),

        // The spec's vectors, loaded once for every test target that replays them.
        .target(
            name: "PrepageTestSupport", dependencies: ["PrepageCore", "PrepageSimulator"],
            path: "Tests/PrepageTestSupport"),
        .testTarget(
            name: "PrepageCoreTests",
            dependencies: ["PrepageCore", "PrepageSimulator", "PrepageTestSupport", "CAllocationCounter"]),
        .testTarget(name: "PrepageHTTPTests", dependencies: ["PrepageHTTP", "PrepageTestSupport"]),
        .testTarget(
            name: "PrepageServerTests",
            dependencies: [
                "PrepageTestSupport",
                "PrepageServer", "PrepageCore", "PrepageHTTP", "PrepageSockets", "CAllocationCounter",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(name: "PrepageSocketsTests", dependencies: ["PrepageSockets"]),
        // The one malloc interposer: counts the allocations of the calling thread and of the
        // process, for the allocation tests, prepage-bench and (as LD_PRELOAD) bench-client.
        .target(name: "CAllocationCounter", path: "Tests/CAllocationCounter"),
        // prepagectl is a dependency so that `swift test` builds the executable its tests run.
        .testTarget(
            name: "PrepageClientTests",
            dependencies: [
                "PrepageClient", "PrepageCore", "PrepageServer", "PrepageSimulator", "prepagectl", "prepage-sim",
                .product(name: "Logging", package: "swift-log"),
            ]),
        .testTarget(
            name: "PrepageSimulatorTests", dependencies: ["PrepageSimulator", "PrepageTestSupport", "prepage-sim"]),
    ],
    swiftLanguageModes: [.v6]
)
