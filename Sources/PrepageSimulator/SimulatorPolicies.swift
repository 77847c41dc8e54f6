import PrepageCore

/// `oracle`: knows each case and fetches exactly the rest of it — one fault per
/// case and nothing wasted. The limit no policy can beat.
public struct OraclePolicy: SimulatedPolicy {
    public let name = "oracle"
    public init() {}

    public mutating func fault(page: Int, stream: UInt32, context: FaultContext) -> (start: Int, count: Int) {
        (context.remainingLow, context.remainingHigh - context.remainingLow)
    }
}

/// `swap-readahead`: Linux's swap VMA readahead (mm/swap_state.c,
/// `__swapin_nr_pages` and `swap_vma_readahead`), given the page-hit feedback
/// the kernel has.
///
/// The window is `hits + 2` rounded up to a power of two (at least 4), one page
/// when there were no hits and the fault is not next to the previous one, at
/// most `maxPages` (8: `page_cluster` 3), never below half the previous window.
/// It is placed forward after an upward neighbour, backward after a downward
/// one, else around the fault.
public struct SwapReadaheadPolicy: SimulatedPolicy {
    public let name = "swap-readahead"
    public let maxPages: Int
    private var last: [UInt32: (page: Int, window: Int)] = [:]

    public init(maxPages: Int = 8) {
        self.maxPages = maxPages
    }

    public mutating func fault(page: Int, stream: UInt32, context: FaultContext) -> (start: Int, count: Int) {
        let previous = last[stream] ?? (page: Int.min, window: 1)
        var pages = context.hits + 2
        if pages == 2 {
            if page != previous.page &+ 1 && page != previous.page &- 1 { pages = 1 }
        } else {
            var roundup = 4
            while roundup < pages { roundup <<= 1 }
            pages = roundup
        }
        pages = max(min(pages, maxPages), previous.window / 2)
        last[stream] = (page, pages)
        let lo: Int
        if page == previous.page &+ 1 {
            lo = page
        } else if page == previous.page &- 1 {
            lo = page - pages + 1
        } else {
            lo = page - (pages - 1) / 2
        }
        let start = max(0, lo)
        return (start, lo + pages - start)
    }
}

/// Every policy the simulator can run, by name.
public enum PolicyCatalog {
    /// Policies an agent can run (in `Prepager`), then the simulator-only ones.
    public static let names = PolicyName.allCases.map(\.rawValue) + ["swap-readahead", "oracle"]

    /// The default comparison set.
    public static let compared = [
        "none", "forward", "readahead", "swap-readahead", "dp", "dp-literal", "dp-plus", "oracle",
    ]

    /// A fresh policy; `base` gives the fields of the agent policies (its `policy` is replaced).
    public static func make(_ name: String, base: PrepageConfig = PrepageConfig()) throws -> any SimulatedPolicy {
        switch name {
        case "oracle": return OraclePolicy()
        case "swap-readahead": return SwapReadaheadPolicy()
        default:
            guard let policy = PolicyName(rawValue: name) else {
                throw ConfigJSONError("unknown policy \"\(name)\"; accepted: \(names.joined(separator: ", "))")
            }
            var config = base
            config.policy = policy
            return try PrepagerPolicy(config)
        }
    }
}
