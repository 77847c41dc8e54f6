import ArgumentParser
import PrepageCore
import PrepageSimulator

/// Agent policies driven through a running `prepaged` (filled in when the client library lands).
struct RemotePolicies {
    let url: String
    let pageSize: Int

    init(url: String, pageSize: Int) throws {
        throw ValidationError("--server needs the client library, which this build does not have yet")
    }

    func factory(_ name: String, _ base: PrepageConfig) throws -> any SimulatedPolicy {
        try PolicyCatalog.make(name, base: base)
    }
}
