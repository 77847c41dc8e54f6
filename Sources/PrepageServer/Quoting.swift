extension Inputs {
    /// A value the client sent, for a problem detail: a JSON string (quoted and
    /// escaped), cut to its first 200 characters and `…` when over 200 bytes.
    static func quoted(_ s: String) -> String {
        var w = JSONWriter()
        w.string(s.utf8.count > 200 ? String(s.prefix(200)) + "…" : s)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
