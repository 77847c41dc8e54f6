/// What a fault was taken to mean (`docs/dp.md`, "The answer").
public enum Outcome: UInt8, Sendable, Hashable, CaseIterable {
    /// The first fault of a stream (step 0).
    case first
    /// The fault continued its case: the guess was too small (step 2).
    case smaller
    /// The fault started a new case: the guess was large enough (step 3).
    case larger
    /// The case's first window went the wrong way (step 1'').
    case reverse
    /// The fault fell in a window already handed out; nothing changed (step 1).
    case `repeat`

    /// The name used on the wire and in the vectors.
    public var name: String { staticName.description }

    /// ``name`` as a static string, for writers that must not allocate (the fault path).
    public var staticName: StaticString {
        switch self {
        case .first: "first"
        case .smaller: "smaller"
        case .larger: "larger"
        case .reverse: "reverse"
        case .repeat: "repeat"
        }
    }

    /// Parses a wire name; `nil` when unknown.
    public init?(name: String) {
        guard let found = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = found
    }
}

/// The answer to one fault: fetch pages `[start, start + count)`.
///
/// `ntest`, `nmin` and `nmax` are the state after the step, for observability.
public struct Decision: Sendable, Hashable {
    /// First page of the window.
    public var start: Int
    /// Pages in the window, `1 … max_pages` (after clipping).
    public var count: Int
    public var outcome: Outcome
    /// The stream's case guess so far (for a repeat, the stream whose window was hit).
    public var ntest: Int
    public var nmin: Int
    public var nmax: Int

    public init(start: Int, count: Int, outcome: Outcome, ntest: Int, nmin: Int, nmax: Int) {
        self.start = start
        self.count = count
        self.outcome = outcome
        self.ntest = ntest
        self.nmin = nmin
        self.nmax = nmax
    }
}

/// A fault the policy refuses: it changes nothing.
public enum FaultError: Error, Sendable, Hashable, CustomStringConvertible {
    /// `page ≥ memory_pages` while `memory_pages > 0`.
    case beyondMemory(page: Int, memoryPages: Int)
    /// A negative page number.
    case negativePage(Int)

    public var description: String {
        switch self {
        case .beyondMemory(let page, let memoryPages):
            "page \(page) is outside guest memory; accepted: 0 … \(memoryPages - 1) (memory_pages = \(memoryPages))"
        case .negativePage(let page):
            "page \(page) is negative; accepted: 0 … \(Int.max)"
        }
    }
}
