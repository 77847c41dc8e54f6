import ArgumentParser

/// `prepage-sim`: replays faults through the policies in-process.
@main
struct PrepageSim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepage-sim",
        abstract: "Drive prepage's policies in-process: decide, simulate, compare.",
        subcommands: [Decide.self, Fig3Command.self, CompareCommand.self, ReplayCommand.self])
}
