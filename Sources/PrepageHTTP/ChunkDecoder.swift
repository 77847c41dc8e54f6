/// Decodes a chunked body (RFC 9112 §7.1) incrementally, remembering where it
/// stopped so that every byte is examined once.
struct ChunkDecoder: Sendable {
    enum Phase: Sendable {
        /// Expecting `chunk-size [chunk-ext] CRLF`.
        case size
        /// Inside a chunk's data.
        case data(remaining: Int)
        /// Expecting the CRLF after a chunk's data.
        case dataEnd
        /// After the last chunk: trailer field lines, then an empty line.
        case trailer
    }

    /// Index in the buffer of the next byte to decode.
    var offset: Int
    var phase: Phase = .size
    /// The data decoded so far.
    var body: [UInt8] = []
    /// Index where the trailer section starts.
    var trailerStart = 0
    /// Framing bytes decoded so far: chunk-size lines with their extensions and
    /// CRLFs, the CRLF after each chunk's data, the trailer section.
    var overhead = 0
    /// Trailer field lines seen so far.
    var trailerLines = 0

    init(offset: Int) {
        self.offset = offset
    }

    /// Decodes as much as `buf` holds. Returns the index after the trailer
    /// section's empty line when the body is complete, `nil` when more is needed.
    mutating func decode(_ buf: UnsafeRawBufferPointer, limits: HTTPLimits) throws(HTTPError) -> Int? {
        while true {
            switch phase {
            case .size:
                guard
                    let lineEnd = try Self.lineEnd(
                        buf, from: offset, limit: limits.maxChunkLineBytes, what: "chunk-size line")
                else {
                    return nil
                }
                let size = try Self.chunkSize(buf, offset..<lineEnd, decoded: body.count, limits: limits)
                try countOverhead(lineEnd + 2 - offset, limits)
                offset = lineEnd + 2
                if size == 0 {
                    phase = .trailer
                    trailerStart = offset
                } else {
                    // No reserveCapacity per chunk: it grows to the exact size, and a
                    // body of many small chunks would be copied once per chunk.
                    phase = .data(remaining: size)
                }
            case .data(let remaining):
                let n = min(remaining, buf.count - offset)
                guard n > 0 else { return nil }
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[offset..<(offset + n)]))
                offset += n
                if remaining == n {
                    phase = .dataEnd
                } else {
                    phase = .data(remaining: remaining - n)
                    return nil
                }
            case .dataEnd:
                guard offset < buf.count else { return nil }
                // RFC 9112 §7.1: chunk-data is followed by CRLF.
                guard buf[offset] == Bytes.cr else { throw Self.missingCRLF(offset) }
                guard offset + 1 < buf.count else { return nil }
                guard buf[offset + 1] == Bytes.lf else { throw Self.missingCRLF(offset) }
                try countOverhead(2, limits)
                offset += 2
                phase = .size
            case .trailer:
                // Trailer lines of `maxHeaderBytes` bytes end at most 2 bytes (the empty line) later.
                let room = limits.maxHeaderBytes + 2 - (offset - trailerStart)
                guard let lineEnd = try Self.lineEnd(buf, from: offset, limit: room, what: "trailer section") else {
                    return nil
                }
                if lineEnd == offset {
                    try countOverhead(2, limits)
                    return offset + 2  // the empty line ends the body
                }
                try countOverhead(lineEnd + 2 - offset, limits)
                // RFC 9112 §7.1.2: trailer fields have the syntax of header fields; they are checked and dropped.
                _ = try HTTPParser.checkFieldLine(buf, offset..<lineEnd, section: "trailer")
                trailerLines += 1
                offset = lineEnd + 2
                if trailerLines > limits.maxHeaderCount {
                    throw HTTPError(
                        .headersTooLarge,
                        "The chunked body has more than \(Bytes.grouped(limits.maxHeaderCount)) trailer fields; at most \(Bytes.grouped(limits.maxHeaderCount)) are accepted."
                    )
                }
                if offset - trailerStart > limits.maxHeaderBytes {
                    throw Self.trailersTooLarge(limits)
                }
            }
        }
    }

    /// Adds framing bytes to ``overhead``; past ``HTTPLimits/maxChunkOverheadBytes`` the body is refused (413).
    private mutating func countOverhead(_ n: Int, _ limits: HTTPLimits) throws(HTTPError) {
        overhead += n
        guard overhead <= limits.maxChunkOverheadBytes else {
            throw HTTPError(
                .bodyTooLarge,
                "The chunked body's framing (chunk-size lines, extensions, CRLFs, trailers) passes \(Bytes.grouped(limits.maxChunkOverheadBytes)) bytes; send fewer, larger chunks."
            )
        }
    }

    private static func missingCRLF(_ at: Int) -> HTTPError {
        .malformed(
            "Chunk data is not followed by CRLF at byte \(at); each chunk is its size in hex, CRLF, exactly that many bytes, CRLF (RFC 9112 §7.1)."
        )
    }

    private static func trailersTooLarge(_ limits: HTTPLimits) -> HTTPError {
        HTTPError(
            .headersTooLarge,
            "The chunked body's trailer section is larger than \(Bytes.grouped(limits.maxHeaderBytes)) bytes; at most \(Bytes.grouped(limits.maxHeaderBytes)) are accepted."
        )
    }

    /// The index of the CR of the CRLF ending the line at `start`, or `nil`
    /// when the line is incomplete. Lines longer than `limit` bytes fail.
    private static func lineEnd(
        _ buf: UnsafeRawBufferPointer, from start: Int, limit: Int, what: String
    ) throws(HTTPError) -> Int? {
        var i = start
        while i < buf.count {
            let b = buf[i]
            if b == Bytes.cr {
                guard i + 1 < buf.count else { return nil }
                guard buf[i + 1] == Bytes.lf else {
                    throw .malformed(
                        "A CR not followed by LF was found in the \(what) at byte \(i); lines of a chunked body end in CRLF (RFC 9112 §7.1)."
                    )
                }
                return i
            }
            if b == Bytes.lf {
                throw .malformed(
                    "A bare LF was found in the \(what) at byte \(i); lines of a chunked body end in CRLF (RFC 9112 §7.1)."
                )
            }
            if i - start >= limit {
                if what == "trailer section" {
                    throw HTTPError(
                        .headersTooLarge,
                        "The chunked body's trailer section is larger than the header limit; trailers count against the header byte limit."
                    )
                }
                throw .malformed(
                    "The \(what) is longer than \(Bytes.grouped(limit)) bytes; a chunk-size line is hex digits and optional short extensions."
                )
            }
            i += 1
        }
        return nil
    }

    /// Parses `chunk-size [chunk-ext]` (RFC 9112 §7.1, §7.1.1) and checks the
    /// running body size against the limit before any data is read.
    private static func chunkSize(
        _ buf: UnsafeRawBufferPointer, _ line: Range<Int>, decoded: Int, limits: HTTPLimits
    ) throws(HTTPError) -> Int {
        var i = line.lowerBound
        var size = 0
        while i < line.upperBound, let d = Bytes.hexValue(buf[i]) {
            // Saturate once over the limit: any number of digits, no overflow.
            if size <= limits.maxBodyBytes { size = Bytes.saturatingHexStep(size, d) }
            i += 1
        }
        guard i > line.lowerBound else {
            throw .malformed(
                "The chunk-size line \(Bytes.quoted(buf, line)) does not start with a hexadecimal size (RFC 9112 §7.1)."
            )
        }
        try checkExtensions(buf, i..<line.upperBound)
        guard size <= limits.maxBodyBytes - decoded else {
            throw HTTPError(
                .bodyTooLarge,
                "The chunked body grows past the limit; bodies of at most \(Bytes.grouped(limits.maxBodyBytes)) bytes (decoded) are accepted."
            )
        }
        return size
    }

    /// Checks `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
    /// Extensions are understood by no one here and are ignored once checked.
    private static func checkExtensions(_ buf: UnsafeRawBufferPointer, _ range: Range<Int>) throws(HTTPError) {
        let bad = HTTPError.malformed(
            "The chunk extension \(Bytes.quoted(buf, range)) is malformed; after the size only \";name\" or \";name=value\" (token or quoted string) is accepted (RFC 9112 §7.1.1)."
        )
        var i = range.lowerBound
        let end = range.upperBound
        func skipBWS() { while i < end, Bytes.isOWS(buf[i]) { i += 1 } }
        func token() -> Bool {
            let s = i
            while i < end, Bytes.isTokenByte(buf[i]) { i += 1 }
            return i > s
        }
        while true {
            let beforeSpace = i
            skipBWS()
            if i == end {
                guard i == beforeSpace else { throw bad }  // BWS only before a ';'
                return
            }
            guard buf[i] == 0x3B else { throw bad }  // ';'
            i += 1
            skipBWS()
            guard token() else { throw bad }
            skipBWS()
            if i < end, buf[i] == 0x3D {  // '='
                i += 1
                skipBWS()
                if i < end, buf[i] == 0x22 {  // quoted-string
                    i += 1
                    var closed = false
                    while i < end {
                        let b = buf[i]
                        if b == 0x22 { closed = true; i += 1; break }
                        if b == 0x5C { i += 1; guard i < end else { throw bad } }  // quoted-pair
                        guard Bytes.isFieldValueByte(buf[i]) else { throw bad }
                        i += 1
                    }
                    guard closed else { throw bad }
                } else {
                    guard token() else { throw bad }
                }
            }
        }
    }
}
