import Testing

@testable import PrepageHTTP
@testable import PrepageServer

/// The one error vocabulary: the parser's kinds become the API's problems, and
/// the metrics count every problem's status.
@Suite struct ProblemTests {
    @Test func mapsEveryParserErrorKindToItsProblemAndStatus() {
        let expected: [HTTPError.Kind: (ProblemKind, Int)] = [
            .malformedRequest: (.malformedRequest, 400), .bodyTooLarge: (.bodyTooLarge, 413),
            .requestLineTooLong: (.uriTooLong, 414), .headersTooLarge: (.headersTooLarge, 431),
            .unsupportedTransferCoding: (.notImplemented, 501), .unsupportedVersion: (.httpVersionNotSupported, 505),
        ]
        for kind in HTTPError.Kind.allCases {
            let problem = APIProblem(HTTPError(kind, "d"))
            #expect(problem.kind == expected[kind]?.0, "\(kind)")
            #expect(problem.kind.status == expected[kind]?.1, "\(kind)")
            #expect(problem.detail == "d")
            #expect(HTTPStatus.reasonPhrase(problem.kind.status) != "Unknown", "\(kind)")
        }
    }

    @Test func namesEveryProblemStatus() {
        for kind in ProblemKind.allCases {
            #expect((400...599).contains(kind.status), "\(kind)")
            #expect(HTTPStatus.reasonPhrase(kind.status) != "Unknown", "\(kind)")
        }
    }

    @Test func countsEveryProblemStatusInItsOwnSlot() {
        // The successes, then each problem status once, ascending: one slot per status.
        #expect(LoopMetrics.statuses.prefix(2) == [200, 201])
        #expect(LoopMetrics.statuses.dropFirst(2) == ArraySlice(Set(LoopMetrics.statuses.dropFirst(2)).sorted()))
        for kind in ProblemKind.allCases {
            #expect(LoopMetrics.statusSlot(kind.status) < LoopMetrics.statuses.count, "\(kind)")
        }
        #expect(LoopMetrics.statusSlot(418) == LoopMetrics.statuses.count)
    }
}
