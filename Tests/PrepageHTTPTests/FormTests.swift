import Testing

@testable import PrepageHTTP

extension FormFields {
    /// The first value of `name` (exact, case-sensitive match), or `nil`.
    func value(_ name: String) -> String? {
        fields.first { $0.name == name }?.value
    }

    /// Every value of `name`, in order.
    func values(_ name: String) -> [String] {
        fields.filter { $0.name == name }.map(\.value)
    }
}

@Suite struct FormTests {
    @Test func splitsFormBodies() throws {
        let f = try FormFields(parsing: bytes("page=123&stream=4"))
        #expect(f.value("page") == "123")
        #expect(f.value("stream") == "4")
        #expect(f.value("addr") == nil)
        #expect(f.fields.count == 2)
    }

    @Test func decodesPlusAndPercent() throws {
        let f = try FormFields(parsing: bytes("a=x+y%20z&b%5B%5D=%2B1&c=caf%C3%A9"))
        #expect(f.value("a") == "x y z")
        #expect(f.value("b[]") == "+1")
        #expect(f.value("c") == "café")
    }

    @Test func skipsEmptyPiecesAndAcceptsNamesWithoutValues() throws {
        let f = try FormFields(parsing: bytes("&&a=1&&flag&b=&"))
        #expect(f.fields.map(\.name) == ["a", "flag", "b"])
        #expect(f.value("flag") == "")
        #expect(f.value("b") == "")
        #expect(try FormFields(parsing: bytes("")).fields.isEmpty)
    }

    @Test func keepsRepeatedNamesInOrder() throws {
        let f = try FormFields(query: "page=1&page=2&page=0x3")
        #expect(f.values("page") == ["1", "2", "0x3"])
        #expect(f.value("page") == "1")
    }

    @Test(arguments: ["a=%", "a=%4", "a=%zz", "%G1=1", "a=%FF"])
    func rejectsBadEscapes(_ s: String) throws {
        let e = #expect(throws: HTTPError.self) { try FormFields(parsing: bytes(s)) }
        #expect(e?.kind == .malformedRequest)
    }

    @Test(arguments: [
        ("a=%", "\"%\""), ("a=%4", "\"%4\""), ("a=%zz", "\"%zz\""), ("%G1=1", "\"%G1\""), ("a=%41%4", "\"%4\""),
        ("a=%%41", "\"%%4\""),
    ])
    func namesTheFieldAndItsBadEscape(form: String, escape: String) throws {
        let e = try #require(#expect(throws: HTTPError.self) { try FormFields(parsing: bytes(form)) })
        #expect(e.detail.hasPrefix("The form field \"\(form)\" has the malformed escape \(escape);"), "\(e.detail)")
    }

    @Test func namesAFieldThatIsNotUTF8() throws {
        let e = try #require(#expect(throws: HTTPError.self) { try FormFields(parsing: bytes("a=1&b=%FF")) })
        #expect(e.detail.contains("\"b=%FF\" does not decode to UTF-8"), "\(e.detail)")
    }

    @Test func percentDecodesStrings() {
        #expect(FormEncoding.percentDecode("a%2Fb+c") == "a/b+c")
        #expect(FormEncoding.percentDecode("a%2Fb+c", plusAsSpace: true) == "a/b c")
        #expect(FormEncoding.percentDecode("%") == nil)
        #expect(FormEncoding.percentDecode(bytes("%41%42")) == bytes("AB"))
    }
}
