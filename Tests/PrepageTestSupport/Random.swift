import PrepageSimulator

/// The project's one seeded generator (SplitMix64, in PrepageSimulator), for
/// every test that draws random inputs: each run can be reproduced from its seed.
public typealias SplitMix64 = PrepageSimulator.SplitMix64
