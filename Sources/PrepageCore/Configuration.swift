/// The prepaging policy a session runs.
///
/// `dp-plus` (the default) learns the distribution of case sizes (`docs/dp-plus.md`);
/// `dp` and `dp-literal` are the two readings of the paper fixed by `docs/dp.md`;
/// the baselines people use instead live behind the same interface.
public enum PolicyName: String, Sendable, Hashable, CaseIterable {
    /// Dynamic Prepage as `docs/dp.md` fixes it.
    case dp
    /// The paper read to the letter, kept for comparison (`docs/dp.md`, last section).
    case dpLiteral = "dp-literal"
    /// The faulting page only (QEMU's post-copy default).
    case none
    /// A fixed window: `forward_pages` after and `backward_pages` before the fault
    /// (AIST/Yamahata post-copy's prefault).
    case forward
    /// Linux's file readahead ramp: `ra_initial` pages for a new case, growing
    /// ×4, ×2, then to `ra_max` on each continuation.
    case readahead
    /// DP with a learned stall model (`docs/dp-plus.md`), the default: learns the
    /// distribution of case sizes and plans the windows that minimise the expected
    /// stall on the session's link; needs no stream ids.
    case dpPlus = "dp-plus"

    /// Every accepted spelling, for error messages.
    public static var accepted: String {
        allCases.map(\.rawValue).joined(separator: ", ")
    }
}

/// A session's configuration: the table of `docs/dp.md`.
///
/// Build one with the memberwise initialiser (every argument has the
/// documented default) and call ``validated()`` before use: an invalid value
/// is a ``ConfigError`` naming the field and its allowed range. Only
/// `initialPages` is clamped instead of rejected.
public struct PrepageConfig: Sendable, Hashable {
    /// Largest `max_pages` accepted. Default range end: 1,048,576.
    public static let maxPagesLimit = 1_048_576
    /// Largest `k` accepted: records hold at most 64 values.
    public static let maxK = 64
    /// Largest `max_streams` accepted.
    public static let maxStreamsLimit = 1_024

    /// Which policy decides. Default: `dp-plus`.
    public var policy: PolicyName
    /// The floor of the range and the first NMin. Default 1; valid ≥ 1.
    public var minPages: Int
    /// The first NMax and the hard cap of every window. Default 512; valid `minPages` … 1,048,576.
    public var maxPages: Int
    /// Length of MinRecord and MaxRecord (the paper's "five"). Default 5; valid 1 … 64.
    public var k: Int
    /// The guess for the very first fault. Default `nil`, meaning `minPages`;
    /// clamped into [`minPages`, `maxPages`] by ``validated()``.
    public var initialPages: Int?
    /// How far past a window a fault may land and still continue its case. Default 0; valid 0 … `maxPages`.
    public var gap: Int
    /// Guest memory in pages; 0 means unbounded. Default 0; valid ≥ 0.
    /// Faults at or past it are rejected and windows are clipped to it.
    public var memoryPages: Int
    /// How many streams (vCPUs) are tracked at once. Default 64; valid 1 … 1,024.
    public var maxStreams: Int
    /// `forward`: pages fetched after the fault. Default 7; valid 0 … 1,048,575.
    public var forwardPages: Int
    /// `forward`: pages fetched before the fault. Default 0; valid 0 … 1,048,575 − `forwardPages`.
    public var backwardPages: Int
    /// `readahead`: the window of a new case. Default 4; valid 1 … `raMax`.
    public var raInitial: Int
    /// `readahead`: the largest window (Linux's 128 KiB). Default 32; valid 1 … 1,048,576.
    public var raMax: Int
    /// `dp-plus`: recent cases tracked by address (slots). Default 64; valid 1 … 1,024.
    public var maxSlots: Int
    /// `dp-plus`: entries of the transition table (T). Default 64; valid 1 … 256.
    public var transitions: Int
    /// `dp-plus`: half-life of the estimate, in cases (H). Default 22; valid 1 … 1,000,000.
    public var halfLife: Int
    /// `dp-plus`: probe staleness constant (C). Default 1,000; valid 0 … 1e9.
    public var probeStaleness: Double
    /// `dp-plus`: the planner prices a fault at `fault_fee` × RTT (FEE). Default 1.1; valid 0 … 1,000.
    public var faultFee: Double
    /// `dp-plus`: near-miss window for the learned gap, in pages (NEAR). Default 8; valid 0 … 1,048,576.
    public var nearWindow: Int
    /// `dp-plus`: evidence below which a threshold counts as unseen (EVID). Default 0.01; valid 0 … 1e6.
    public var minEvidence: Double
    /// `dp-plus`: the link's round trip in µs (`rtt_us`). Default 100; valid 0.001 … 1e7.
    public var rttMicroseconds: Double
    /// `dp-plus`: one page's transfer time in µs (`page_us`; 4 KiB at 1 Gbit/s is 32.768).
    /// Default 32.768; valid 0.001 … 1e7.
    public var pageMicroseconds: Double

    public init(
        policy: PolicyName = .dpPlus,
        minPages: Int = 1,
        maxPages: Int = 512,
        k: Int = 5,
        initialPages: Int? = nil,
        gap: Int = 0,
        memoryPages: Int = 0,
        maxStreams: Int = 64,
        forwardPages: Int = 7,
        backwardPages: Int = 0,
        raInitial: Int = 4,
        raMax: Int = 32,
        maxSlots: Int = 64,
        transitions: Int = 64,
        halfLife: Int = 22,
        probeStaleness: Double = 1_000,
        faultFee: Double = 1.1,
        nearWindow: Int = 8,
        minEvidence: Double = 0.01,
        rttMicroseconds: Double = 100,
        pageMicroseconds: Double = 32.768
    ) {
        self.policy = policy
        self.minPages = minPages
        self.maxPages = maxPages
        self.k = k
        self.initialPages = initialPages
        self.gap = gap
        self.memoryPages = memoryPages
        self.maxStreams = maxStreams
        self.forwardPages = forwardPages
        self.backwardPages = backwardPages
        self.raInitial = raInitial
        self.raMax = raMax
        self.maxSlots = maxSlots
        self.transitions = transitions
        self.halfLife = halfLife
        self.probeStaleness = probeStaleness
        self.faultFee = faultFee
        self.nearWindow = nearWindow
        self.minEvidence = minEvidence
        self.rttMicroseconds = rttMicroseconds
        self.pageMicroseconds = pageMicroseconds
    }

    /// The guess for the first fault once clamped: what the session really uses.
    public var effectiveInitialPages: Int {
        clamp(initialPages ?? minPages, minPages, maxPages)
    }

    /// Checks every field against the table of `docs/dp.md`.
    ///
    /// - Returns: the same configuration with `initialPages` set and clamped.
    /// - Throws: ``ConfigError`` for the first field out of its range, in table order.
    public func validated() throws(ConfigError) -> PrepageConfig {
        guard minPages >= 1 else {
            throw ConfigError(field: "min_pages", value: minPages, allowed: ">= 1")
        }
        guard maxPages >= minPages, maxPages <= Self.maxPagesLimit else {
            throw ConfigError(
                field: "max_pages", value: maxPages,
                allowed: "\(minPages) … \(Self.maxPagesLimit) (min_pages … 1048576)")
        }
        guard (1...Self.maxK).contains(k) else {
            throw ConfigError(field: "k", value: k, allowed: "1 … \(Self.maxK)")
        }
        guard (0...maxPages).contains(gap) else {
            throw ConfigError(field: "gap", value: gap, allowed: "0 … \(maxPages) (0 … max_pages)")
        }
        guard memoryPages >= 0 else {
            throw ConfigError(field: "memory_pages", value: memoryPages, allowed: ">= 0 (0 = unbounded)")
        }
        guard (1...Self.maxStreamsLimit).contains(maxStreams) else {
            throw ConfigError(field: "max_streams", value: maxStreams, allowed: "1 … \(Self.maxStreamsLimit)")
        }
        let window = Self.maxPagesLimit - 1
        guard (0...window).contains(forwardPages) else {
            throw ConfigError(field: "forward_pages", value: forwardPages, allowed: "0 … \(window)")
        }
        guard (0...(window - forwardPages)).contains(backwardPages) else {
            throw ConfigError(
                field: "backward_pages", value: backwardPages,
                allowed: "0 … \(window - forwardPages) (forward_pages + backward_pages + 1 ≤ 1048576)")
        }
        guard (1...Self.maxPagesLimit).contains(raMax) else {
            throw ConfigError(field: "ra_max", value: raMax, allowed: "1 … \(Self.maxPagesLimit)")
        }
        guard (1...raMax).contains(raInitial) else {
            throw ConfigError(field: "ra_initial", value: raInitial, allowed: "1 … \(raMax) (1 … ra_max)")
        }
        for field in Self.fields {
            guard let range = field.range else { continue }
            switch field.value(in: self) {
            case .integer(let v) where !range.contains(Double(v)):
                throw ConfigError(field: field.name, value: v, allowed: field.allowed)
            case .real(let v) where !range.contains(v):
                throw ConfigError(field: field.name, value: v, allowed: field.allowed)
            default: break
            }
        }
        var checked = self
        checked.initialPages = effectiveInitialPages
        return checked
    }
}

/// A configuration value outside its allowed range.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The field, spelled as in the JSON configuration (`max_pages`).
    public var field: String
    /// The rejected value, as written in the message.
    public var value: String
    /// The allowed range, for the message (`1 … 64`).
    public var allowed: String

    public init(field: String, value: Int, allowed: String) {
        self.init(field: field, text: String(value), allowed: allowed)
    }

    public init(field: String, value: Double, allowed: String) {
        self.init(field: field, text: "\(value)", allowed: allowed)
    }

    private init(field: String, text: String, allowed: String) {
        self.field = field
        self.value = text
        self.allowed = allowed
    }

    public var description: String {
        "\(field) = \(value) is out of range; allowed: \(allowed)"
    }
}

/// `max(a, min(x, b))`, as `docs/dp.md` defines it.
@inline(__always)
func clamp(_ x: Int, _ a: Int, _ b: Int) -> Int {
    max(a, min(x, b))
}
