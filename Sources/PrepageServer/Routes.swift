import PrepageHTTP

/// Every route the server serves: the table `/openapi.yaml` must match, as data.
public enum Route: Int, Sendable, CaseIterable {
    case livez, healthz, readyz, metrics, version, openapi
    case listSessions, session, resetSession, fault, faults, sessionState, releaseSession

    /// The path template, as spelled in openapi.yaml's `paths`.
    public var template: String {
        switch self {
        case .livez: "/livez"
        case .healthz: "/healthz"
        case .readyz: "/readyz"
        case .metrics: "/metrics"
        case .version: "/version"
        case .openapi: "/openapi.yaml"
        case .listSessions: "/sessions"
        case .session: "/sessions/{id}"
        case .resetSession: "/sessions/{id}/reset"
        case .fault: "/sessions/{id}/fault"
        case .faults: "/sessions/{id}/faults"
        case .sessionState: "/sessions/{id}/state"
        case .releaseSession: "/sessions/{id}/release"
        }
    }

    /// Methods served (HEAD wherever GET is served).
    public var methods: [HTTPMethod] {
        Self.methodTable[rawValue]
    }

    /// The operation of openapi.yaml that `method` names on this route (HEAD names GET's);
    /// `nil` when the method is not served here. Checked on every request, without allocating.
    @inline(__always)
    public func operation(for method: HTTPMethod) -> APIOperation? {
        switch (self, method) {
        case (.livez, .get), (.livez, .head): .livez
        case (.healthz, .get), (.healthz, .head): .healthz
        case (.readyz, .get), (.readyz, .head): .readyz
        case (.metrics, .get), (.metrics, .head): .metrics
        case (.version, .get), (.version, .head): .version
        case (.openapi, .get), (.openapi, .head): .openapiSpec
        case (.listSessions, .get), (.listSessions, .head): .listSessions
        case (.session, .get), (.session, .head): .getSession
        case (.session, .put): .createSession
        case (.session, .delete): .deleteSession
        case (.sessionState, .get), (.sessionState, .head): .getSessionState
        case (.resetSession, .post): .resetSession
        case (.fault, .post): .postFault
        case (.faults, .post): .postFaults
        case (.releaseSession, .post): .releaseSession
        default: nil
        }
    }

    /// Whether `method` is served.
    @inline(__always)
    func serves(_ method: HTTPMethod) -> Bool {
        operation(for: method) != nil
    }

    private static let methodTable: [[HTTPMethod]] = allCases.map { route in
        [HTTPMethod.get, .head, .put, .post, .delete].filter { route.serves($0) }
    }

    /// The `Allow` value of a 405.
    var allow: String {
        methods.map(\.name).joined(separator: ", ")
    }

    /// Whether the route is open without the bearer token (probes).
    var isProbe: Bool {
        self == .livez || self == .healthz || self == .readyz
    }

    /// Index for per-route metrics; `Route.allCases.count` is "no route".
    static let unmatchedIndex = Route.allCases.count
}

/// The operations of openapi.yaml, one per served path and method. Each case is spelled
/// as its `operationId`, and ``API`` answers it with the handler of the same name.
public enum APIOperation: String, Sendable, CaseIterable {
    case livez, healthz, readyz, metrics, version, openapiSpec
    case listSessions, createSession, getSession, deleteSession, getSessionState
    case resetSession, postFault, postFaults, releaseSession

    /// The `operationId` in openapi.yaml.
    public var operationId: String { rawValue }
}

/// A request path resolved against the route table.
struct RouteMatch {
    var route: Route
    /// The raw (still percent-encoded) `{id}` segment, if the template has one.
    var rawID: Substring?

    /// Matches a raw request path; `nil` when no template fits (404).
    static func match(_ path: String) -> RouteMatch? {
        switch path {
        case "/livez": return RouteMatch(route: .livez)
        case "/healthz": return RouteMatch(route: .healthz)
        case "/readyz": return RouteMatch(route: .readyz)
        case "/metrics": return RouteMatch(route: .metrics)
        case "/version": return RouteMatch(route: .version)
        case "/openapi.yaml": return RouteMatch(route: .openapi)
        case "/sessions": return RouteMatch(route: .listSessions)
        default: break
        }
        guard path.hasPrefix("/sessions/") else { return nil }
        let rest = path.dropFirst("/sessions/".count)
        guard !rest.isEmpty else { return nil }
        guard let slash = rest.firstIndex(of: "/") else { return RouteMatch(route: .session, rawID: rest) }
        let id = rest[..<slash]
        guard !id.isEmpty else { return nil }
        switch rest[rest.index(after: slash)...] {
        case "reset": return RouteMatch(route: .resetSession, rawID: id)
        case "fault": return RouteMatch(route: .fault, rawID: id)
        case "faults": return RouteMatch(route: .faults, rawID: id)
        case "state": return RouteMatch(route: .sessionState, rawID: id)
        case "release": return RouteMatch(route: .releaseSession, rawID: id)
        default: return nil
        }
    }

    init(route: Route, rawID: Substring? = nil) {
        self.route = route
        self.rawID = rawID
    }
}

/// Session ids: `[A-Za-z0-9._:-]{1,128}` (a VM name or a UUID).
enum SessionID {
    static let maxLength = 128

    /// Decodes percent-escapes in the path segment and checks the alphabet.
    static func parse(_ raw: Substring) throws(APIProblem) -> String {
        var plain = true
        for c in raw.utf8 where !isAllowed(c) {
            plain = false
            break
        }
        let id = plain ? String(raw) : (FormEncoding.percentDecode(raw) ?? String(raw))
        guard (1...maxLength).contains(id.utf8.count), id.utf8.allSatisfy(isAllowed) else {
            throw APIProblem(
                .invalidSessionID,
                "session id \(Inputs.quoted(id)) is invalid; accepted: 1 … 128 characters of A-Z a-z 0-9 . _ : -")
        }
        return id
    }

    @inline(__always)
    static func isAllowed(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: ":"), UInt8(ascii: "-"):
            true
        default: false
        }
    }
}
