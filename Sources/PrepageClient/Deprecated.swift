// The names of 1.1 and before, kept so that code written against them still
// builds (with a deprecation warning); they go in the next MAJOR version.
// Renamed because the module PrepageClient had a type PrepageClient (so
// `PrepageClient.X` could not name the module's X), and because Session,
// SessionConfig, Decision and Outcome were also public names in PrepageServer or
// PrepageCore, which a program importing both could not tell apart.

@available(*, deprecated, renamed: "PrepageConnection")
public typealias PrepageClient = PrepageConnection

@available(*, deprecated, renamed: "RemoteSession")
public typealias Session = RemoteSession

@available(*, deprecated, renamed: "RemoteSessionConfig")
public typealias SessionConfig = RemoteSessionConfig

@available(*, deprecated, renamed: "RemoteDecision")
public typealias Decision = RemoteDecision

@available(*, deprecated, renamed: "RemoteOutcome")
public typealias Outcome = RemoteOutcome
