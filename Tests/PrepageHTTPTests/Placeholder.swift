import Testing
@testable import PrepageHTTP

@Test func smoke() {
    var p = HTTPParser()
    let r = p.parse(Array("GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Request-ID: abc\r\n\r\nPOST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc".utf8))
    guard case .request(let req, let consumed) = r else { Issue.record("\(r)"); return }
    #expect(req.path == "/a" && req.query == "b=1" && req.requestID == "abc" && consumed == 51)
}
