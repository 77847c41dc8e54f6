// swift-tools-version:6.0
//
// Coverage-guided fuzzers (libFuzzer, from the Swift toolchain) of the HTTP
// request parser and of the JSON scanner with the request readers built on it.
// Not part of the main build: `make fuzz` builds them with -sanitize=fuzzer
// (and -enable-testing, so the fuzzers reach internal code) and runs them.
import PackageDescription

let package = Package(
    name: "prepage-fuzz",
    dependencies: [.package(name: "prepage", path: "..")],
    targets: [
        .executableTarget(
            name: "fuzz-http", dependencies: [.product(name: "PrepageHTTP", package: "prepage")]),
        .executableTarget(
            name: "fuzz-json", dependencies: [.product(name: "PrepageServer", package: "prepage")]),
    ],
    swiftLanguageModes: [.v6]
)
